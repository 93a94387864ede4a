// Node errors cross the wire as a gRPC status plus `quorumkv-*` trailers and come back as the same
// class with the same typed fields (src/api/grpc-status.ts is the one place doing both).
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { EndpointPool } from '../../src/client/endpoint-pool.js';
import {
  ConfChangeRejectedError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  ProposalDroppedError,
  ReceiptTooOldError,
  ReplicaCorruptedError,
  ShuttingDownError,
  StaleReadError,
  StaleSequenceError,
} from '../../src/api/errors.js';
import { errorToStatus, statusToError } from '../../src/api/grpc-status.js';
import type { StatusLike } from '../../src/api/grpc-status.js';
import { RemoteError } from '../../src/api/errors.js';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

let node: FakeNode;
let pool: EndpointPool;

test.before(async () => {
  node = await startFakeNode('n2');
  pool = new EndpointPool([node.address]);
});

test.after.always(async () => {
  pool?.close();
  await node?.server.close();
});

/** Make the backend throw `err` on the next status() call and return what the client rebuilt. */
async function roundTrip(err: Error): Promise<{ rebuilt: Error; code: number }> {
  node.backend.failNext(1, () => err, { methods: ['status'] });
  try {
    await pool.call(node.address, 'Status', {}, Date.now() + 5_000);
  } catch (e) {
    return { rebuilt: statusToError(e as StatusLike, 5_000), code: (e as grpc.ServiceError).code };
  }
  throw new Error('the call should have failed');
}

const cases: [string, () => Error, number, (e: Error) => Record<string, unknown>][] = [
  [
    'NotLeaderError',
    () => new NotLeaderError('n2', 'n1', '127.0.0.1:7001'),
    grpc.status.FAILED_PRECONDITION,
    (e) => {
      const x = e as NotLeaderError;
      return { nodeId: x.nodeId, leaderId: x.leaderId, leaderAddress: x.leaderAddress };
    },
  ],
  [
    'InvalidArgumentError',
    () => new InvalidArgumentError('key', 'must not be empty'),
    grpc.status.INVALID_ARGUMENT,
    (e) => ({ field: (e as InvalidArgumentError).field }),
  ],
  [
    'DeadlineExceededError',
    () => new DeadlineExceededError(750, 'put'),
    grpc.status.DEADLINE_EXCEEDED,
    (e) => ({ deadlineMs: (e as DeadlineExceededError).deadlineMs }),
  ],
  [
    'OverloadedError',
    () => new OverloadedError('proposals', 10_000),
    grpc.status.RESOURCE_EXHAUSTED,
    (e) => {
      const x = e as OverloadedError;
      return { queue: x.queue, limit: x.limit };
    },
  ],
  [
    'StaleReadError',
    () => new StaleReadError('n3', 1200, 500),
    grpc.status.FAILED_PRECONDITION,
    (e) => {
      const x = e as StaleReadError;
      return { nodeId: x.nodeId, lagMs: x.lagMs, maxLagMs: x.maxLagMs };
    },
  ],
  ['ShuttingDownError', () => new ShuttingDownError('n2'), grpc.status.UNAVAILABLE, (e) => ({ nodeId: (e as ShuttingDownError).nodeId })],
  [
    'StaleSequenceError',
    () => new StaleSequenceError('client-é/1', 42),
    grpc.status.ABORTED,
    (e) => {
      const x = e as StaleSequenceError;
      return { clientId: x.clientId, seq: x.seq };
    },
  ],
  [
    'ReceiptTooOldError',
    () => new ReceiptTooOldError(3, 17, 900),
    grpc.status.OUT_OF_RANGE,
    (e) => {
      const x = e as ReceiptTooOldError;
      return { term: x.term, index: x.index, snapshotIndex: x.snapshotIndex };
    },
  ],
  [
    'ProposalDroppedError',
    () => new ProposalDroppedError('leadership transfer in progress'),
    grpc.status.UNAVAILABLE,
    (e) => ({ reason: (e as ProposalDroppedError).reason }),
  ],
  [
    'ConfChangeRejectedError',
    () => new ConfChangeRejectedError('another change is pending'),
    grpc.status.FAILED_PRECONDITION,
    (e) => ({ reason: (e as ConfChangeRejectedError).reason }),
  ],
  [
    'ReplicaCorruptedError',
    () => new ReplicaCorruptedError('n3', 'state machine in /data/n3/kv is corrupted at key 6b'),
    grpc.status.DATA_LOSS,
    (e) => ({ nodeId: (e as ReplicaCorruptedError).nodeId }),
  ],
];

for (const [name, make, code, fields] of cases) {
  test.serial(`${name} round-trips over gRPC with its class, code, message and typed fields`, async (t) => {
    const original = make();
    const { rebuilt, code: got } = await roundTrip(original);
    t.is(got, code);
    t.is(rebuilt.constructor, original.constructor);
    t.is(rebuilt.name, name);
    t.is(rebuilt.message, original.message);
    t.deepEqual(fields(rebuilt), fields(original));
  });
}

test.serial('an unexpected backend error is INTERNAL with its message, rebuilt as RemoteError', async (t) => {
  const { rebuilt, code } = await roundTrip(new RangeError('disk on fire'));
  t.is(code, grpc.status.INTERNAL);
  t.true(rebuilt instanceof RemoteError);
  t.is((rebuilt as RemoteError).remoteName, 'RangeError');
  t.regex(rebuilt.message, /disk on fire/);
});

test('a bare status without quorumkv metadata maps by code', (t) => {
  const deadline = statusToError({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }, 300);
  t.true(deadline instanceof DeadlineExceededError);
  t.is((deadline as DeadlineExceededError).deadlineMs, 300);
  const unavailable = statusToError({ code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED' });
  t.true(unavailable instanceof RemoteError);
  t.is((unavailable as RemoteError).code, grpc.status.UNAVAILABLE);
  t.is((unavailable as RemoteError).remoteName, '');
});

test('errorToStatus never sends a stack trace', (t) => {
  const st = errorToStatus(new Error('secret'));
  t.is(st.code, grpc.status.INTERNAL);
  t.false(st.details.includes('    at '));
});
