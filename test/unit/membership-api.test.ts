// Membership through the client API against the fake backend: the service rejects malformed
// AddMember/RemoveMember requests with INVALID_ARGUMENT before the backend sees them; the SDK's
// addMember/promote/removeMember reach the leader (following NotLeader hints) and return the
// resulting members; refusals arrive as typed errors; the CLI `member` commands print and exit right.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvServiceDefinition } from '../../src/api/kv-proto.js';
import type { KvMethodName } from '../../src/api/kv-proto.js';
import { ClientUsageError, ConfChangeRejectedError, connect, InvalidArgumentError } from '../../src/index.js';
import type { KvClient } from '../../src/index.js';
import { ERROR_NAME_KEY } from '../../src/api/grpc-status.js';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

const nodes: FakeNode[] = [];
const clients: KvClient[] = [];
const grpcClients: grpc.Client[] = [];

async function fakeNode(id: string): Promise<FakeNode> {
  const n = await startFakeNode(id);
  nodes.push(n);
  return n;
}

async function client(endpoints: string[]): Promise<KvClient> {
  const kv = await connect({ endpoints, deadlineMs: 3_000 });
  clients.push(kv);
  return kv;
}

test.after.always(async () => {
  for (const c of clients) await c.close();
  for (const c of grpcClients) c.close();
  for (const n of nodes) await n.server.close(100);
});

function rawCall(address: string, method: KvMethodName, request: object): Promise<grpc.ServiceError | undefined> {
  const def = kvServiceDefinition()[method];
  const c = new grpc.Client(address, grpc.credentials.createInsecure());
  grpcClients.push(c);
  return new Promise((resolve) => {
    c.makeUnaryRequest(
      def.path,
      (r: object) => def.requestSerialize(r) as Buffer,
      (b: Buffer) => b,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (error) => resolve(error ?? undefined),
    );
  });
}

const good = { id: 'n4', raftAddress: '127.0.0.1:7004', clientAddress: '127.0.0.1:8004', learner: true };
const rejected: [string, KvMethodName, object, string][] = [
  ['empty id', 'AddMember', { ...good, id: '' }, 'id'],
  ['id with a space', 'AddMember', { ...good, id: 'n 4' }, 'id'],
  ['id of 257 characters', 'AddMember', { ...good, id: 'n'.repeat(257) }, 'id'],
  ['raft address without a port', 'AddMember', { ...good, raftAddress: '127.0.0.1' }, 'raftAddress'],
  ['raft address with port 0', 'AddMember', { ...good, raftAddress: '127.0.0.1:0' }, 'raftAddress'],
  ['client address with port 70000', 'AddMember', { ...good, clientAddress: 'host:70000' }, 'clientAddress'],
  ['client address that is a URL', 'AddMember', { ...good, clientAddress: 'http://h:1' }, 'clientAddress'],
  ['a learner without addresses', 'AddMember', { id: 'n4', learner: true }, 'raftAddress'],
  ['only one address', 'AddMember', { id: 'n4', raftAddress: '127.0.0.1:7004' }, 'clientAddress'],
  ['remove with an empty id', 'RemoveMember', { id: '' }, 'id'],
];

for (const [name, method, request, field] of rejected) {
  test.serial(`${method}: ${name} is INVALID_ARGUMENT naming ${field}; the backend sees nothing`, async (t) => {
    const n = nodes[0] ?? (await fakeNode('n1'));
    const before = n.backend.calls.length;
    const error = await rawCall(n.address, method, request);
    t.truthy(error, 'the call must fail');
    t.is(error!.code, grpc.status.INVALID_ARGUMENT, error!.details);
    t.is(error!.metadata.get(ERROR_NAME_KEY)[0], 'InvalidArgumentError');
    t.is(decodeURIComponent(String(error!.metadata.get('quorumkv-field')[0])), field);
    t.is(n.backend.calls.length, before, 'nothing reached the backend');
    t.is(n.backend.members.size, 0, 'membership unchanged');
  });
}

test.serial('SDK: add a learner, promote it, remove it; each call returns the resulting members', async (t) => {
  const n = await fakeNode('m1');
  const kv = await client([n.address]);
  const added = await kv.addMember({ id: 'm4', raftAddress: '127.0.0.1:7004', clientAddress: '127.0.0.1:8004', learner: true });
  t.deepEqual(added, [
    { id: 'm1', clientAddress: n.address, voter: true, raftAddress: '127.0.0.1:1' },
    { id: 'm4', clientAddress: '127.0.0.1:8004', voter: false, raftAddress: '127.0.0.1:7004' },
  ]);
  const call = n.backend.callsOf('addMember')[0]!;
  t.deepEqual(call.member, { id: 'm4', raftAddress: '127.0.0.1:7004', clientAddress: '127.0.0.1:8004', learner: true });
  t.true(call.deadline! > Date.now(), 'the call deadline reaches the backend');

  const promoted = await kv.promote('m4');
  t.deepEqual(
    promoted.find((m) => m.id === 'm4'),
    { id: 'm4', clientAddress: '127.0.0.1:8004', voter: true, raftAddress: '127.0.0.1:7004' },
  );
  t.deepEqual(n.backend.callsOf('addMember')[1]!.member, { id: 'm4', raftAddress: '', clientAddress: '', learner: false }, 'promotion sends the id alone');
  t.is(n.backend.members.get('m4')!.raftAddress, '127.0.0.1:7004', 'promotion keeps the raft address');
  t.deepEqual(await kv.members(), promoted);

  const removed = await kv.removeMember('m4');
  t.deepEqual(removed, [{ id: 'm1', clientAddress: n.address, voter: true, raftAddress: '127.0.0.1:1' }]);
  t.deepEqual(n.backend.callsOf('removeMember')[0]!.member, { id: 'm4' });
});

test.serial('SDK: membership changes follow the NotLeader hint to the leader; the follower changes nothing', async (t) => {
  const leader = await fakeNode('l1');
  const follower = await fakeNode('l2');
  follower.backend.follower = { leaderId: 'l1', leaderAddress: leader.address };
  const kv = await connect({ endpoints: [follower.address], discover: false, deadlineMs: 3_000 });
  clients.push(kv);
  const members = await kv.addMember({ id: 'l4', raftAddress: '127.0.0.1:7004', clientAddress: '127.0.0.1:8004' });
  t.true(members.some((m) => m.id === 'l4' && m.voter));
  t.is(leader.backend.members.size, 1);
  t.is(follower.backend.members.size, 0);
  t.is(follower.backend.callsOf('addMember').length, 1, 'the follower was asked once and refused');
});

test.serial('SDK: a refused change is a ConfChangeRejectedError (not retried); bad arguments never leave the client', async (t) => {
  const n = await fakeNode('r1');
  const kv = await client([n.address]);
  await kv.addMember({ id: 'r2', raftAddress: '127.0.0.1:7002', clientAddress: '127.0.0.1:8002' });
  const err = await t.throwsAsync(kv.addMember({ id: 'r2', raftAddress: '127.0.0.1:7002', clientAddress: '127.0.0.1:8002', learner: true }));
  t.true(err instanceof ConfChangeRejectedError, `${err?.name}: ${err?.message}`);
  t.regex(err!.message, /remove it before re-adding it as a learner/);
  t.is(n.backend.callsOf('addMember').length, 2, 'no retry of a refusal');
  t.true(n.backend.members.get('r2')!.voter, 'unchanged');

  const promoteUnknown = await t.throwsAsync(kv.promote('nobody'));
  t.true(promoteUnknown instanceof InvalidArgumentError, promoteUnknown?.message);

  const calls = n.backend.calls.length;
  await t.throwsAsync(kv.removeMember(''), { instanceOf: ClientUsageError });
  await t.throwsAsync(kv.addMember({ id: 'x', raftAddress: '', clientAddress: 'h:1' }), { instanceOf: ClientUsageError });
  t.is(n.backend.calls.length, calls, 'nothing was sent');
});

// ---- CLI ----

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = path.join(ROOT, 'src/process/main.ts');

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, QUORUMKV_ENDPOINTS: '' } },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

test.serial('CLI: member add/promote/list/remove print the members and exit 0; misuse exits 2, a refusal 4', async (t) => {
  const n = await fakeNode('c1');
  const ep = ['--endpoints', n.address];
  const add = await cli('member', 'add', 'c4', '--raft-address', '127.0.0.1:7004', '--client-address', '127.0.0.1:8004', '--learner', ...ep, '--json');
  t.is(add.code, 0, add.stderr);
  t.deepEqual(JSON.parse(add.stdout).members, [
    { id: 'c1', clientAddress: n.address, voter: true, raftAddress: '127.0.0.1:1' },
    { id: 'c4', clientAddress: '127.0.0.1:8004', voter: false, raftAddress: '127.0.0.1:7004' },
  ]);

  const promote = await cli('member', 'promote', 'c4', ...ep);
  t.is(promote.code, 0, promote.stderr);
  t.regex(promote.stdout, /promoted c4/);
  t.regex(promote.stdout, /\| c4 +\| voter +\| 127\.0\.0\.1:7004 +\| 127\.0\.0\.1:8004 +\|/);

  const list = await cli('member', 'list', ...ep, '--json');
  t.is(list.code, 0, list.stderr);
  t.deepEqual(
    JSON.parse(list.stdout).map((m: { id: string; voter: boolean }) => [m.id, m.voter]),
    [
      ['c1', true],
      ['c4', true],
    ],
  );

  const refused = await cli('member', 'add', 'c4', '--raft-address', '127.0.0.1:7004', '--client-address', '127.0.0.1:8004', '--learner', ...ep, '--json');
  t.is(refused.code, 4, refused.stderr);
  t.is(JSON.parse(refused.stdout).error.name, 'ConfChangeRejectedError');

  const remove = await cli('member', 'remove', 'c4', ...ep);
  t.is(remove.code, 0, remove.stderr);
  t.notRegex(remove.stdout, /\| c4 /);
  t.false(n.backend.members.has('c4'));

  for (const argv of [
    ['member', ...ep],
    ['member', 'frob', 'x', ...ep],
    ['member', 'add', 'c5', '--raft-address', '127.0.0.1:7005', ...ep],
    ['member', 'remove', ...ep],
    ['member', 'promote', 'c5', '--learner', ...ep],
    ['member', 'add', 'c5', '--raft-address', 'nope', '--client-address', '127.0.0.1:8005', ...ep],
  ]) {
    const r = await cli(...argv);
    t.is(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
  }
  t.false(n.backend.members.has('c5'));
  // add c4, promote c4, the refused re-add, remove c4: the misused commands sent nothing.
  t.is(n.backend.callsOf('addMember').length + n.backend.callsOf('removeMember').length, 4, 'only the valid requests reached the backend');
});
