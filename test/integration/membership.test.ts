// Membership changes end to end on real processes: a joiner (`"join": true`) added as a learner
// catches up from the log, is promoted to voter, a founding node is removed and stops itself, and the
// remaining three (one of them the newcomer) keep taking writes and serving reads.
import test from 'ava';
import { connect } from '../../src/index.js';
import type { KvClient } from '../../src/index.js';
import { eventually, ProcessCluster, sleep } from './harness.js';

let cluster: ProcessCluster | undefined;
const clients: KvClient[] = [];

test.after.always(async () => {
  for (const c of clients) await c.close();
  await cluster?.close();
});

test('a joiner is added as a learner, catches up, is promoted; removing a founder leaves a working cluster', async (t) => {
  t.timeout(60_000);
  cluster = await ProcessCluster.start({ size: 3 });
  await cluster.waitForLeader();
  const founders = [...cluster.nodes.values()].map((h) => h.clientAddress);
  const kv = await connect({ endpoints: founders, deadlineMs: 8_000 });
  clients.push(kv);

  let last = 0;
  for (let i = 0; i < 20; i++) last = (await kv.put(`before/${i}`, `v${i}`)).index;

  // n4 starts with an empty membership; the cluster does not know it yet.
  const n4 = await cluster.startJoiner('n4');
  t.false((await kv.members()).some((m) => m.id === 'n4'));

  const asLearner = await kv.addMember({ id: 'n4', raftAddress: n4.raftAddress, clientAddress: n4.clientAddress, learner: true });
  t.deepEqual(
    asLearner.find((m) => m.id === 'n4'),
    { id: 'n4', clientAddress: n4.clientAddress, voter: false, raftAddress: n4.raftAddress },
  );
  t.is(asLearner.filter((m) => m.voter).length, 3, 'a learner does not change the voters');

  // The learner serves follower reads of everything written before it joined.
  const onN4 = await connect({ endpoints: [n4.clientAddress], discover: false, deadlineMs: 10_000 });
  clients.push(onN4);
  const page = await onN4.scan({ prefix: 'before/', consistency: 'follower', minIndex: last });
  t.is(page.servedBy, 'n4');
  t.is(page.items.length, 20);
  t.is((await onN4.get('before/7', { consistency: 'follower', minIndex: last }))?.text(), 'v7');

  const promoted = await kv.promote('n4');
  t.deepEqual(
    promoted.find((m) => m.id === 'n4'),
    { id: 'n4', clientAddress: n4.clientAddress, voter: true, raftAddress: n4.raftAddress },
  );
  t.deepEqual(
    promoted
      .filter((m) => m.voter)
      .map((m) => m.id)
      .sort(),
    ['n1', 'n2', 'n3', 'n4'],
  );
  // Every node, the newcomer included, applies the new configuration.
  await eventually(
    async () => {
      const st = await cluster!.statuses();
      return st.size === 4 && [...st.values()].every((s) => s.members.filter((m) => m.voter).length === 4);
    },
    10_000,
    'all four nodes to report four voters',
  );

  // Remove n1 while it leads: make it the leader, hand leadership to n2 (a planned switchover),
  // then remove it at once (the new leader may still be committing its first entry).
  if ((await cluster.waitForLeader()).id !== 'n1') await kv.transferLeadership('n1');
  t.is((await cluster.waitForLeader()).id, 'n1');
  await kv.transferLeadership('n2');
  const afterRemoval = await kv.removeMember('n1');
  t.deepEqual(afterRemoval.map((m) => m.id).sort(), ['n2', 'n3', 'n4']);
  t.true(afterRemoval.every((m) => m.voter));
  // The removed node shuts itself down, cleanly, and says why.
  const removed = cluster.node('n1');
  const exit = await Promise.race([removed.exited, sleep(10_000).then(() => 'still running' as const)]);
  t.is(exit, 0, 'n1 exited by itself with code 0');
  t.true(removed.logged('"event":"removed_from_cluster"'));

  // Two of the three remaining voters now make a quorum: writes commit, and n4 serves them.
  let after = 0;
  for (let i = 0; i < 5; i++) after = (await kv.put(`after/${i}`, `w${i}`)).index;
  t.is((await kv.get('after/4'))?.text(), 'w4');
  const fromN4 = await onN4.getDetail('after/4', { consistency: 'follower', minIndex: after });
  t.is(fromN4.servedBy, 'n4');
  t.is(fromN4.item?.text(), 'w4');
  t.deepEqual((await kv.members()).map((m) => m.id).sort(), ['n2', 'n3', 'n4']);
});
