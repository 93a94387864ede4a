import test from 'ava';
import { InvalidArgumentError, NotLeaderError, ShuttingDownError } from '../../src/api/errors.js';
import { bytes, eventually, metricsOf, putCommand, startCluster, text } from './node-harness.js';

const soon = (ms = 3000) => Date.now() + ms;

test('three nodes elect exactly one leader and every node learns who it is', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const statuses = await eventually(
    async () => {
      const all = await Promise.all([...c.nodes.values()].map((n) => n.status()));
      return all.every((s) => s.leaderId === leader.id) ? all : undefined;
    },
    5000,
    'all nodes to agree on the leader',
  );
  t.is(statuses.filter((s) => s.role === 'leader').length, 1);
  const ls = await leader.status();
  t.is(ls.leaderClientAddress, `client-${leader.id}:1`);
  t.deepEqual(ls.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);
  t.is(ls.followers?.length, 2);
});

test('a sync write is applied on the leader and readable on every node with minIndex', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const ack = await leader.write({ command: putCommand('k', 'v1', 'c1'), durability: 'sync', deadline: soon() });
  t.truthy(ack.result);
  t.is(ack.result!.index, ack.index);
  t.deepEqual(ack.result!.result, { op: 'put', prevExisted: false });
  for (const n of c.nodes.values()) {
    const r = await n.get(bytes('k'), { consistency: 'follower', minIndex: ack.index, deadline: soon() });
    t.is(text(r.kv?.value), 'v1', `node ${n.id}`);
    t.is(r.nodeId, n.id);
    t.true(r.appliedIndex >= ack.index);
  }
  // Linearizable and lease reads on the leader see it too; a linearizable read on a follower is forwarded.
  const lin = await leader.get(bytes('k'), { consistency: 'linearizable', deadline: soon() });
  t.is(text(lin.kv?.value), 'v1');
  const lease = await leader.get(bytes('k'), { consistency: 'lease', deadline: soon() });
  t.is(text(lease.kv?.value), 'v1');
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const fl = await follower.get(bytes('k'), { consistency: 'linearizable', deadline: soon() });
  t.is(text(fl.kv?.value), 'v1');
  const scan = await follower.scan(bytes(''), bytes(''), 10, { consistency: 'linearizable', deadline: soon() });
  t.deepEqual(
    scan.items.map((kv) => text(kv.key)),
    ['k'],
  );
});

test('concurrent linearizable reads are batched into few ReadIndex rounds and all see the write', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  await leader.write({ command: putCommand('b', 'x'), durability: 'sync', deadline: soon() });
  const before = metricsOf(leader).readIndexRounds.get();
  const reads = await Promise.all(Array.from({ length: 50 }, () => leader.get(bytes('b'), { consistency: 'linearizable', deadline: soon() })));
  t.true(reads.every((r) => text(r.kv?.value) === 'x'));
  const rounds = metricsOf(leader).readIndexRounds.get() - before;
  t.true(rounds >= 1 && rounds < 50, `50 reads used ${rounds} rounds`);
});

test('an async write returns a receipt at once and waitFor reports it committed', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const ack = await leader.write({ command: putCommand('a', '1'), durability: 'async', deadline: soon() });
  t.is(ack.result, undefined);
  t.true(ack.index > 0 && ack.term > 0);
  t.is(await leader.waitFor(ack.term, ack.index, soon()), 'committed');
  // Any node can answer for the receipt once it has applied that index.
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  t.is(await follower.waitFor(ack.term, ack.index, soon()), 'committed');
  // The same index under another term was never committed.
  t.is(await follower.waitFor(ack.term + 1, ack.index, soon()), 'lost');
});

test('writes and lease reads on a follower fail with NotLeaderError naming the leader and its address', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const follower = await eventually(async () => {
    for (const n of c.nodes.values()) if (n !== leader && (await n.status()).leaderId === leader.id) return n;
    return undefined;
  });
  const err = await t.throwsAsync(follower.write({ command: putCommand('x', 'y'), durability: 'sync', deadline: soon() }), {
    instanceOf: NotLeaderError,
  });
  t.is(err!.leaderId, leader.id);
  t.is(err!.leaderAddress, `client-${leader.id}:1`);
  await t.throwsAsync(follower.get(bytes('x'), { consistency: 'lease', deadline: soon() }), { instanceOf: NotLeaderError });
});

test('follower read with minIndex waits for the index and maxLagMs is honoured', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  // Ask for an index that does not exist yet: the read must wait for the write that creates it.
  const status = await leader.status();
  const pendingRead = follower.get(bytes('later'), { consistency: 'follower', minIndex: status.lastIndex + 1, deadline: soon() });
  await leader.write({ command: putCommand('later', 'ok'), durability: 'sync', deadline: soon() });
  t.is(text((await pendingRead).kv?.value), 'ok');
  // A caught-up follower is within a generous lag bound.
  const fresh = await eventually(() => follower.get(bytes('later'), { consistency: 'follower', maxLagMs: 2000, deadline: soon() }).catch(() => undefined));
  t.is(text(fresh.kv?.value), 'ok');
  // Cut the follower off: its lag grows and a tight bound is refused.
  c.network.isolate(follower.id);
  const stale = await eventually(
    () =>
      follower.get(bytes('later'), { consistency: 'follower', maxLagMs: 50, deadline: soon() }).then(
        () => undefined,
        (err: Error) => err,
      ),
    3000,
    'a StaleReadError',
  );
  t.is(stale.name, 'StaleReadError');
  // minIndex beyond what the isolated node can reach times out with a deadline error.
  const late = await t.throwsAsync(follower.get(bytes('later'), { consistency: 'follower', minIndex: 1_000_000, deadline: Date.now() + 100 }));
  t.is(late!.name, 'DeadlineExceededError');
});

test('bad requests are rejected with InvalidArgumentError and change nothing', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  await t.throwsAsync(leader.get(new Uint8Array(0), { consistency: 'linearizable', deadline: soon() }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(leader.get(bytes('k'), { consistency: 'bogus' as never, deadline: soon() }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(leader.waitFor(0, 1, soon()), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(leader.scan(bytes('a'), bytes(''), 0, { consistency: 'follower', deadline: soon() }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(leader.transferLeadership('n9', soon()), { instanceOf: InvalidArgumentError });
  const before = (await leader.status()).lastIndex;
  await t.throwsAsync(
    leader.write({ command: { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'bogus' } as never }, durability: 'sync', deadline: soon() }),
    { instanceOf: InvalidArgumentError },
  );
  t.is((await leader.status()).lastIndex, before);
});

test('stop drains and then refuses requests with ShuttingDownError', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  await leader.write({ command: putCommand('s', '1'), durability: 'sync', deadline: soon() });
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  await follower.stop();
  await t.throwsAsync(follower.get(bytes('s'), { consistency: 'follower', deadline: soon() }), { instanceOf: ShuttingDownError });
  // The two remaining nodes are still a quorum.
  const ack = await leader.write({ command: putCommand('s', '2'), durability: 'sync', deadline: soon() });
  t.true(ack.index > 0);
});
