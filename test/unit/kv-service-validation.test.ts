// The client service is the edge: malformed or out-of-limit requests get INVALID_ARGUMENT and never
// reach the backend; overload gets RESOURCE_EXHAUSTED; the call's deadline reaches the backend.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition } from '../../src/api/kv-proto.js';
import type { KvMethodName } from '../../src/api/kv-proto.js';
import { ERROR_NAME_KEY } from '../../src/api/grpc-status.js';
import { DEFAULT_KV_LIMITS } from '../../src/server/kv-service.js';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

interface RawResult {
  error?: grpc.ServiceError;
  response?: Buffer;
}

/** A unary call with hand-made request bytes (so tests can send what no well-behaved client would). */
function rawCall(client: grpc.Client, method: KvMethodName, body: Buffer, deadlineMs = 5_000): Promise<RawResult> {
  const def = kvServiceDefinition()[method];
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      def.path,
      (b) => b,
      (b) => b,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error, response) => resolve(error ? { error } : { response: response! }),
    );
  });
}

function encode(method: KvMethodName, request: object): Buffer {
  return kvServiceDefinition()[method].requestSerialize(request) as Buffer;
}

let node: FakeNode;
let client: grpc.Client;

test.before(async () => {
  node = await startFakeNode('n1', { maxInFlight: 4 });
  client = new grpc.Client(node.address, grpc.credentials.createInsecure());
});

test.after.always(async () => {
  client?.close();
  await node?.server.close();
});

const session = { clientId: 'c1', seq: 1, firstUnacked: 1 };
const big = (n: number) => Buffer.alloc(n, 0x61);

const rejected: [string, KvMethodName, () => Buffer, string][] = [
  ['empty key', 'Put', () => encode('Put', { key: Buffer.alloc(0), value: Buffer.from('v'), ...session }), 'key'],
  ['key of 4 KiB + 1', 'Put', () => encode('Put', { key: big(4097), value: Buffer.from('v'), ...session }), 'key'],
  ['value of 1 MiB + 1', 'Put', () => encode('Put', { key: Buffer.from('k'), value: big(1024 * 1024 + 1), ...session }), 'value'],
  // field 1 (key) = "a", field 6 (durability) = 7: not a Durability
  ['unknown durability enum', 'Put', () => Buffer.from([0x0a, 0x01, 0x61, 0x30, 0x07]), 'durability'],
  // field 1 (key) = "a", field 2 (consistency) = 99
  ['unknown consistency enum', 'Get', () => Buffer.from([0x0a, 0x01, 0x61, 0x10, 0x63]), 'consistency'],
  ['undecodable bytes', 'Put', () => Buffer.from([0xff, 0xff, 0xff]), 'request'],
  ['truncated field', 'Get', () => Buffer.from([0x0a, 0x05, 0x61]), 'request'],
  ['empty get key', 'Get', () => encode('Get', { key: Buffer.alloc(0) }), 'key'],
  ['empty delete key', 'Delete', () => encode('Delete', { key: Buffer.alloc(0), ...session }), 'key'],
  ['delete-range without a range', 'DeleteRange', () => encode('DeleteRange', { ...session }), 'prefix'],
  ['prefix and start together', 'Scan', () => encode('Scan', { prefix: Buffer.from('a'), start: Buffer.from('b') }), 'prefix'],
  ['end before start', 'Scan', () => encode('Scan', { start: Buffer.from('b'), end: Buffer.from('a') }), 'end'],
  ['scan limit above the maximum', 'Scan', () => encode('Scan', { prefix: Buffer.from('a'), limit: 10_001 }), 'limit'],
  ['continuation outside the range', 'Scan', () => encode('Scan', { prefix: Buffer.from('a'), continueFrom: Buffer.from('b') }), 'continueFrom'],
  ['seq 0 with a client id', 'Put', () => encode('Put', { key: Buffer.from('k'), value: Buffer.from('v'), clientId: 'c1', seq: 0 }), 'seq'],
  [
    'firstUnacked above seq',
    'Put',
    () => encode('Put', { key: Buffer.from('k'), value: Buffer.from('v'), clientId: 'c1', seq: 2, firstUnacked: 3 }),
    'firstUnacked',
  ],
  [
    'txn compare without a target',
    'Txn',
    () => encode('Txn', { compares: [{ key: Buffer.from('k'), result: 'RESULT_EQ' }], ...session }),
    'compares[0].target',
  ],
  [
    'txn value compare with LT',
    'Txn',
    () => encode('Txn', { compares: [{ key: Buffer.from('k'), target: 'TARGET_VALUE', result: 'RESULT_LT' }], ...session }),
    'compares[0].result',
  ],
  ['txn op with nothing set', 'Txn', () => encode('Txn', { success: [{}], ...session }), 'success[0]'],
  [
    'txn put with an empty key',
    'Txn',
    () => encode('Txn', { success: [{ put: { key: Buffer.alloc(0), value: Buffer.from('v') } }], ...session }),
    'success[0].put.key',
  ],
  [
    'txn with too many ops',
    'Txn',
    () => encode('Txn', { success: Array.from({ length: 129 }, () => ({ delete: { key: Buffer.from('k') } })), ...session }),
    'txn',
  ],
  ['waitFor index 0', 'WaitFor', () => encode('WaitFor', { term: 1, index: 0 }), 'index'],
  ['transfer to nobody', 'TransferLeadership', () => encode('TransferLeadership', { to: '' }), 'to'],
];

for (const [name, method, body, field] of rejected) {
  test.serial(`${method}: ${name} is INVALID_ARGUMENT naming ${field}, and the backend sees nothing`, async (t) => {
    const before = node.backend.calls.length;
    const { error } = await rawCall(client, method, body());
    t.truthy(error, 'the call must fail');
    t.is(error!.code, grpc.status.INVALID_ARGUMENT, error!.details);
    t.is(error!.metadata.get(ERROR_NAME_KEY)[0], 'InvalidArgumentError');
    t.is(decodeURIComponent(String(error!.metadata.get('quorumkv-field')[0])), field);
    t.is(node.backend.calls.length, before, 'nothing reached the backend');
    t.is(node.backend.data.size, 0, 'nothing was written');
  });
}

test.serial('the limits are inclusive: a 4 KiB key and a 1 MiB value are accepted', async (t) => {
  const key = big(DEFAULT_KV_LIMITS.maxKeyBytes);
  const { error } = await rawCall(client, 'Put', encode('Put', { key, value: big(DEFAULT_KV_LIMITS.maxValueBytes), ...session, seq: 99, firstUnacked: 99 }));
  t.is(error, undefined);
  t.is(node.backend.data.get(key.toString('hex'))?.value.length, DEFAULT_KV_LIMITS.maxValueBytes);
  node.backend.data.clear();
});

test.serial('requests beyond the in-flight limit get RESOURCE_EXHAUSTED, then service resumes', async (t) => {
  node.backend.gate('get');
  const held = Array.from({ length: 4 }, () => rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') })));
  // Wait (bounded) until all four are inside the backend.
  for (let i = 0; i < 100 && node.backend.callsOf('get').length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(node.server.inFlight(), 4);
  const over = await rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') }));
  t.is(over.error?.code, grpc.status.RESOURCE_EXHAUSTED);
  t.is(over.error?.metadata.get(ERROR_NAME_KEY)[0], 'OverloadedError');
  node.backend.release();
  const results = await Promise.all(held);
  t.true(results.every((r) => r.error === undefined));
  const after = await rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') }));
  t.is(after.error, undefined);
  t.is(node.server.inFlight(), 0);
});

test.serial("the call's gRPC deadline becomes the backend deadline; no deadline gets the default", async (t) => {
  const t0 = Date.now();
  await rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') }), 1_234);
  const withDeadline = node.backend.callsOf('get').at(-1)!.deadline!;
  t.true(withDeadline <= Date.now() + 1_234 && withDeadline >= t0 + 1_000, `deadline ${withDeadline - t0} ms after start`);

  const def = kvServiceDefinition().Get;
  await new Promise<void>((resolve) =>
    client.makeUnaryRequest(
      def.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      encode('Get', { key: Buffer.from('k') }),
      () => resolve(),
    ),
  );
  const defaulted = node.backend.callsOf('get').at(-1)!.deadline! - Date.now();
  t.true(defaulted > 4_000 && defaulted <= DEFAULT_KV_LIMITS.defaultDeadlineMs, `default deadline ${defaulted} ms away`);
});

test.serial('a backend bug becomes INTERNAL and the server keeps serving', async (t) => {
  node.backend.failNext(1, () => new TypeError('boom'), { methods: ['get'] });
  const bad = await rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') }));
  t.is(bad.error?.code, grpc.status.INTERNAL);
  t.regex(bad.error!.details, /boom/);
  const good = await rawCall(client, 'Get', encode('Get', { key: Buffer.from('k') }));
  t.is(good.error, undefined);
});

test.serial('Ping answers without touching the backend', async (t) => {
  const before = node.backend.calls.length;
  const { error } = await rawCall(client, 'Ping', Buffer.alloc(0));
  t.is(error, undefined);
  t.is(node.backend.calls.length, before);
});
