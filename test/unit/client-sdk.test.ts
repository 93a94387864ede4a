// The SDK against real KV gRPC servers backed by the fake backend: the API surface, leader
// redirects, safe retries (same seq), deadlines, follower-read balancing and lost async writes.
import test from 'ava';
import net from 'node:net';
import {
  ClusterUnavailableError,
  connect,
  DeadlineExceededError,
  InvalidArgumentError,
  KvItem,
  LostWriteError,
  NotLeaderError,
  ShuttingDownError,
  StaleReadError,
} from '../../src/index.js';
import type { KvClient } from '../../src/index.js';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

const nodes: FakeNode[] = [];
const clients: KvClient[] = [];

async function fakeNode(id: string): Promise<FakeNode> {
  const n = await startFakeNode(id);
  nodes.push(n);
  return n;
}

async function client(
  endpoints: string[],
  options: { deadlineMs?: number; discover?: boolean; clientId?: string; attemptTimeoutMs?: number } = {},
): Promise<KvClient> {
  const kv = await connect({ endpoints, ...options });
  clients.push(kv);
  return kv;
}

/** An address where nothing listens (bound once, then released). */
async function deadAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

test.after.always(async () => {
  for (const c of clients) await c.close();
  for (const n of nodes) await n.server.close(100);
});

test('put, get, delete, scan, deleteRange, cas and txn work end to end', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address]);
  const w = await kv.put('user:1', 'alice');
  t.true(w.applied);
  t.deepEqual(w.result, { op: 'put', prevExisted: false });
  t.true(w.index > 0 && w.term > 0);
  await kv.put(new TextEncoder().encode('user:2'), new Uint8Array([0, 1, 2]));
  await kv.put('other', 'x');

  const got = await kv.get('user:1');
  t.true(got instanceof KvItem);
  t.is(got!.text(), 'alice');
  t.is(got!.keyText(), 'user:1');
  t.is(got!.version, 1);
  t.is(got!.servedBy, 'n1');
  t.true(got!.appliedIndex >= got!.modIndex);
  t.deepEqual([...(await kv.get('user:2'))!.value], [0, 1, 2]);
  t.is(await kv.get('missing'), undefined, 'not found is undefined, not an error');
  const detail = await kv.getDetail('missing');
  t.is(detail.item, undefined);
  t.is(detail.servedBy, 'n1');

  const page = await kv.scan({ prefix: 'user:', limit: 1 });
  t.deepEqual(
    page.items.map((i) => i.keyText()),
    ['user:1'],
  );
  t.true(page.more);
  const rest = await kv.scan({ prefix: 'user:', continueFrom: page.continueFrom! });
  t.deepEqual(
    rest.items.map((i) => i.keyText()),
    ['user:2'],
  );
  t.false(rest.more);
  const all: string[] = [];
  for await (const item of kv.scanAll({ limit: 1 })) all.push(item.keyText());
  t.deepEqual(all, ['other', 'user:1', 'user:2']);

  t.false((await kv.cas('user:1', 'bob', 'carol')).succeeded, 'cas with a wrong expectation fails');
  t.true((await kv.cas('user:1', 'alice', 'carol')).succeeded);
  t.is((await kv.get('user:1'))!.text(), 'carol');
  t.true((await kv.cas('fresh', null, 'v')).succeeded, 'cas from absent');
  t.false((await kv.cas('fresh', null, 'w')).succeeded, 'cas from absent fails once present');

  const txn = await kv.txn({
    compares: [{ key: 'fresh', target: 'version', result: 'eq', number: 1 }],
    success: [
      { op: 'put', key: 'txn', value: 'yes' },
      { op: 'delete', key: 'fresh' },
    ],
    failure: [{ op: 'put', key: 'txn', value: 'no' }],
  });
  t.true(txn.succeeded);
  t.is(txn.results?.length, 2);
  t.is((await kv.get('txn'))!.text(), 'yes');

  t.is((await kv.delete('other')).deleted, 1);
  t.is((await kv.delete('other')).deleted, 0);
  t.is((await kv.deleteRange({ prefix: 'user:' })).deleted, 2);
  t.is((await kv.scan({ prefix: 'user:' })).items.length, 0);

  const writes = n.backend.callsOf('write');
  t.true(
    writes.every((c) => c.write!.command.clientId === kv.clientId),
    'every write carries the session',
  );
  const seqs = writes.map((c) => c.write!.command.seq);
  t.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'seqs increase',
  );
  t.is(new Set(seqs).size, seqs.length, 'one seq per write');
});

test('a write to a follower is redirected to the hinted leader', async (t) => {
  const leader = await fakeNode('n1');
  const follower = await fakeNode('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: leader.address };
  const kv = await client([follower.address], { discover: false });
  await kv.put('k', 'v');
  t.is(follower.backend.callsOf('write').length, 1, 'the follower was asked once');
  t.is(follower.backend.data.size, 0);
  t.is(leader.backend.data.size, 1, 'the leader applied it');
  t.is(kv.leaderHint(), leader.address);
  await kv.put('k2', 'v');
  t.is(follower.backend.callsOf('write').length, 1, 'later writes go straight to the leader');
});

test('connect discovers the leader through Status', async (t) => {
  const leader = await fakeNode('n1');
  const follower = await fakeNode('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: leader.address };
  const kv = await client([follower.address, leader.address]);
  t.is(kv.leaderHint(), leader.address);
  await kv.put('k', 'v');
  t.is(follower.backend.callsOf('write').length, 0);
});

test('retries of one write keep its seq, and a retry after a lost response is not applied twice', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address], { clientId: 'retry-client' });
  await kv.put('warm', 'up');
  n.backend.failNext(2, () => new ShuttingDownError('n1'), { methods: ['write'] });
  // The third attempt applies the write but its answer is "lost"; the fourth gets the remembered result.
  n.backend.failNext(1, () => new ShuttingDownError('n1'), { methods: ['write'], afterApply: true });
  const res = await kv.put('k', 'v');
  const attempts = n.backend.callsOf('write').slice(1);
  t.is(attempts.length, 4);
  const seqs = new Set(attempts.map((c) => c.write!.command.seq));
  t.is(seqs.size, 1, 'one seq across every retry');
  t.true(attempts.every((c) => c.write!.command.clientId === 'retry-client'));
  t.true(res.duplicate, 'the node answered from its session table');
  t.is(n.backend.data.get(Buffer.from('k').toString('hex'))!.version, 1, 'applied exactly once');
  await kv.put('k2', 'v');
  const next = n.backend.callsOf('write').at(-1)!.write!.command;
  t.is(next.seq, [...seqs][0]! + 1, 'the next write takes the next seq');
  t.is(next.firstUnacked, next.seq, 'everything before it is settled');
});

test('a request that cannot finish in time fails with DeadlineExceededError', async (t) => {
  const n = await fakeNode('n1');
  n.backend.hang.add('get');
  const kv = await client([n.address], { deadlineMs: 300 });
  const err = await t.throwsAsync(kv.get('k'), { instanceOf: DeadlineExceededError });
  t.is(err!.deadlineMs, 300);
  const perCall = await t.throwsAsync(kv.get('k', { deadlineMs: 150 }), { instanceOf: DeadlineExceededError });
  t.is(perCall!.deadlineMs, 150);
});

// Serial, like every test that uses deadAddress(): a concurrent test's fake node could bind the
// port it just released (seen in CI).
test.serial('no reachable node: ClusterUnavailableError after the deadline', async (t) => {
  const kv = await client([await deadAddress(), await deadAddress()], { deadlineMs: 300 });
  const err = await t.throwsAsync(kv.put('k', 'v'), { instanceOf: ClusterUnavailableError });
  t.is(err!.endpoints.length, 2);
});

test.serial('an unreachable endpoint is skipped for a live one', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([await deadAddress(), n.address], { discover: false, deadlineMs: 3_000 });
  await kv.put('k', 'v');
  t.is(n.backend.data.size, 1);
});

test('an invalid request fails at once with InvalidArgumentError and is not retried', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address]);
  const err = await t.throwsAsync(kv.put('', 'v'), { instanceOf: InvalidArgumentError });
  t.is(err!.field, 'key');
  t.is(n.backend.callsOf('write').length, 0);
});

test('follower reads rotate over the nodes and pass minIndex / maxLagMs through', async (t) => {
  const ns = [await fakeNode('n1'), await fakeNode('n2'), await fakeNode('n3')];
  ns[1]!.backend.follower = { leaderId: 'n1', leaderAddress: ns[0]!.address };
  ns[2]!.backend.follower = { leaderId: 'n1', leaderAddress: ns[0]!.address };
  const kv = await client(ns.map((n) => n.address));
  const served: string[] = [];
  for (let i = 0; i < 6; i++) served.push((await kv.getDetail('k', { consistency: 'follower', minIndex: 7, maxLagMs: 250 })).servedBy);
  t.deepEqual(new Set(served), new Set(['n1', 'n2', 'n3']));
  for (const n of ns) t.is(n.backend.callsOf('get').length, 2, `${n.backend.id} served an equal share`);
  const opts = ns[1]!.backend.callsOf('get')[0]!.options!;
  t.is(opts.consistency, 'follower');
  t.is(opts.minIndex, 7);
  t.is(opts.maxLagMs, 250);
  // Linearizable reads go to the leader only.
  await kv.get('k');
  t.is(ns[0]!.backend.callsOf('get').length, 3);
});

test('a follower that lags too much is skipped; all lagging surfaces StaleReadError', async (t) => {
  const a = await fakeNode('n1');
  const b = await fakeNode('n2');
  a.backend.failNext(1, () => new StaleReadError('n1', 900, 100), { methods: ['get'] });
  const kv = await client([a.address, b.address]);
  const first = await kv.getDetail('k', { consistency: 'follower', maxLagMs: 100 });
  t.is(first.servedBy, 'n2');
  a.backend.failNext(1, () => new StaleReadError('n1', 900, 100), { methods: ['get'] });
  b.backend.failNext(1, () => new StaleReadError('n2', 900, 100), { methods: ['get'] });
  await t.throwsAsync(kv.get('k', { consistency: 'follower', maxLagMs: 100 }), { instanceOf: StaleReadError });
});

test('async writes return a receipt; waitFor resolves when committed and rejects LostWriteError when lost', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address]);
  const receipt = await kv.put('k', 'v', { durability: 'async' });
  t.false(receipt.applied);
  t.is(receipt.result, undefined);
  t.is(n.backend.callsOf('write')[0]!.write!.durability, 'async');
  await kv.waitFor(receipt);
  t.deepEqual(n.backend.callsOf('waitFor')[0]!.waitFor, { term: receipt.term, index: receipt.index });
  n.backend.waitOutcome = 'lost';
  const err = await t.throwsAsync(kv.waitFor(receipt), { instanceOf: LostWriteError });
  t.is(err!.term, receipt.term);
  t.is(err!.index, receipt.index);
});

test.serial('status reports every node, including one that cannot be reached', async (t) => {
  const leader = await fakeNode('n1');
  const follower = await fakeNode('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: leader.address };
  const dead = await deadAddress();
  const kv = await client([leader.address, follower.address, dead], { deadlineMs: 1_000 });
  const all = await kv.status();
  t.deepEqual(
    all.map((s) => s.endpoint),
    [leader.address, follower.address, dead],
  );
  t.is(all[0]!.status?.role, 'leader');
  t.is(all[1]!.status?.leaderId, 'n1');
  t.truthy(all[2]!.error);
});

test('transferLeadership reaches the leader', async (t) => {
  const leader = await fakeNode('n1');
  const follower = await fakeNode('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: leader.address };
  const kv = await client([follower.address], { discover: false });
  await kv.transferLeadership('n2');
  t.is(leader.backend.transferredTo, 'n2');
});

test('many concurrent writes share one client: distinct seqs, firstUnacked never past an open write', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address]);
  n.backend.gate('write'); // hold the first batch in flight so their seqs stay open
  const first = Array.from({ length: 50 }, (_, i) => kv.put(`c:${i}`, String(i)));
  for (let i = 0; i < 100 && n.backend.callsOf('write').length < 50; i++) await new Promise((r) => setTimeout(r, 10));
  n.backend.release();
  const rest = Array.from({ length: 150 }, (_, i) => kv.put(`c:${50 + i}`, String(50 + i)));
  await Promise.all([...first, ...rest]);
  const commands = n.backend.callsOf('write').map((c) => c.write!.command);
  t.is(commands.length, 200);
  t.is(new Set(commands.map((c) => c.seq)).size, 200);
  t.true(commands.every((c) => c.firstUnacked >= 1 && c.firstUnacked <= c.seq));
  t.is(n.backend.data.size, 200);
});

test('connect rejects bad endpoints and options up front', async (t) => {
  await t.throwsAsync(connect({ endpoints: [] }), { message: /at least one endpoint/ });
  await t.throwsAsync(connect({ endpoints: ['localhost'] }), { message: /not "host:port"/ });
  await t.throwsAsync(connect({ endpoints: ['127.0.0.1:1'], deadlineMs: -1 }), { message: /deadlineMs/ });
});

test('after the leader dies, stale hints that still name it are not followed; the SDK polls the live nodes until one leads', async (t) => {
  const dead = await fakeNode('n1'); // stands in for a killed leader: refuses as "shutting down"
  const survivor = await fakeNode('n2');
  dead.backend.failNext(1000, () => new ShuttingDownError('n1'));
  // The survivor still names the dead leader for its next 3 answers (its election timeout has not
  // fired yet), then wins the election itself. Driven by call count, not time: no race with load.
  survivor.backend.failNext(3, () => new NotLeaderError('n2', 'n1', dead.address), { methods: ['write'] });
  const kv = await client([dead.address, survivor.address], { discover: false });
  await kv.put('k', 'v', { deadlineMs: 5000 });
  t.is(survivor.backend.data.size, 1, 'the write landed on the new leader');
  t.is(survivor.backend.callsOf('write').length, 4, 'the survivor was polled through its 3 stale answers');
  // Status calls are not retries: on a loaded machine an attempt may wait long enough for the
  // hung-leader probe to ask every node, the dead one included.
  const retries = dead.backend.calls.filter((c) => c.method !== 'status').length;
  t.true(retries <= 1, `the dead leader was retried ${retries} times despite refusing`);
});

test('a hung leader is left as soon as another node leads a newer term, long before the attempt timeout', async (t) => {
  const hung = await fakeNode('n1'); // a SIGSTOPped leader: accepts the call, never answers
  const fresh = await fakeNode('n2');
  hung.backend.hang.add('write');
  hung.backend.hang.add('status');
  fresh.backend.term = 2;
  // The attempt timeout alone would keep the write on the hung node for 10 s.
  const kv = await client([hung.address, fresh.address], { discover: false, attemptTimeoutMs: 10_000, deadlineMs: 20_000 });
  const started = Date.now();
  const w = await kv.put('k', 'v');
  t.true(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  t.is(w.term, 2);
  t.is(fresh.backend.data.size, 1);
  t.is(hung.backend.callsOf('write').length, 1);
  t.is(kv.hungLeaderSwitches, 1);
  t.is(kv.leaderHint(), fresh.address);
});

test('during an election the SDK long-polls a leaderless node and goes to the winner the moment it is known', async (t) => {
  const old = await fakeNode('n1');
  const voter = await fakeNode('n2');
  const winner = await fakeNode('n3');
  voter.backend.follower = { leaderId: 'n1', leaderAddress: old.address };
  winner.backend.follower = { leaderId: 'n1', leaderAddress: old.address };
  const kv = await client([old.address, voter.address], { discover: false, deadlineMs: 10_000 });
  await kv.put('a', '1'); // the SDK saw n1 lead term 1
  old.backend.failNext(1000, () => new ShuttingDownError('n1')); // killed
  voter.backend.follower = { leaderId: '', leaderAddress: '' }; // an election is running
  setTimeout(() => {
    winner.backend.follower = undefined;
    winner.backend.newTerm(2);
    voter.backend.follower = { leaderId: 'n3', leaderAddress: winner.address };
    voter.backend.newTerm(2);
  }, 400);
  const w = await kv.put('b', '2');
  t.is(w.term, 2);
  t.is(winner.backend.data.size, 1);
  // Sleep-polling asked the voter a write every 10-50 ms through the 400 ms election (13 times
  // when measured); the long poll asks one write per 150 ms poll, waiting on Status in between.
  const writes = voter.backend.callsOf('write').length;
  t.true(writes <= 5, `the voter was asked ${writes} writes`);
  t.true(voter.backend.callsOf('status').length >= 1);
});

test('a slow leader that still leads the newest term keeps the write', async (t) => {
  const slow = await fakeNode('n1');
  const follower = await fakeNode('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: slow.address };
  slow.backend.gate('write');
  const kv = await client([slow.address, follower.address], { discover: false });
  const put = kv.put('k', 'v');
  await new Promise((r) => setTimeout(r, 700)); // past the probe: the follower still names n1
  slow.backend.release();
  await put;
  t.is(slow.backend.data.size, 1);
  t.is(kv.hungLeaderSwitches, 0);
});

test('session reads carry the highest index the client observed as minIndex', async (t) => {
  const n = await fakeNode('n1');
  const kv = await client([n.address]);
  t.is(kv.sessionIndex, 0);
  const w = await kv.put('k', 'v');
  t.true(kv.sessionIndex >= w.index);
  await kv.get('k', { consistency: 'session' });
  const read = n.backend.callsOf('get').at(-1)!;
  t.is(read.options?.minIndex, w.index);
  t.is(read.options?.consistency, 'follower');
  await t.throwsAsync(kv.get('k', { consistency: 'session', minIndex: -1 }), { message: /minIndex/ });
});
