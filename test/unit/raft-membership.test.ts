import test from 'ava';
import type { ConfChange } from '../../src/raft/types.js';
import { ManualNet } from '../sim/manual-net.js';

const enc = new TextEncoder();

function change(net: ManualNet, leader: string, cc: ConfChange): void {
  net.get(leader).raw.proposeConfChange(cc);
  net.stabilize();
  net.tick(leader, net.heartbeatTicks);
  net.stabilize();
}

/** Compact the leader's log so that joiners are caught up by a snapshot (see core bug 1). */
function compact(net: ManualNet, id: string): void {
  const node = net.get(id);
  const applied = node.applied[node.applied.length - 1]!.index;
  node.storage.createSnapshot(applied, node.raw.status().conf, enc.encode(`state@${applied}`));
  node.storage.compact(applied);
}

test('add a learner, promote it, remove a voter: quorum follows the membership', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  compact(net, 'n1');
  net.add('n4');

  change(net, 'n1', { type: 'addLearner', nodeId: 'n4' });
  let conf = net.get('n1').raw.status().conf;
  t.deepEqual(conf.learners, ['n4']);
  t.deepEqual(conf.voters, ['n1', 'n2', 'n3']);
  t.true(net.get('n1').raw.status().progress!['n4']!.isLearner);
  net.propose('n1', 'b');
  net.stabilize();
  t.true(net.appliedValues('n4').includes('b'), 'the learner receives the log');
  // A learner never campaigns.
  net.tick('n4', net.electionTicks * 3);
  net.stabilize();
  t.is(net.role('n4'), 'follower');
  t.is(net.role('n1'), 'leader');

  change(net, 'n1', { type: 'addVoter', nodeId: 'n4' });
  conf = net.get('n1').raw.status().conf;
  t.deepEqual(conf.voters, ['n1', 'n2', 'n3', 'n4']);
  t.deepEqual(conf.learners, []);
  t.deepEqual(net.get('n4').raw.status().conf.voters, ['n1', 'n2', 'n3', 'n4']);

  // With 4 voters, n1 + n2 are no longer a quorum.
  net.isolate('n3');
  net.isolate('n4');
  const { index } = net.propose('n1', 'needs3');
  net.stabilize();
  t.true(net.get('n1').raw.status().commit < index);
  net.heal();
  net.tick('n1', net.heartbeatTicks);
  net.stabilize();
  t.true(net.get('n1').raw.status().commit >= index);

  change(net, 'n1', { type: 'removeNode', nodeId: 'n2' });
  t.deepEqual(net.get('n1').raw.status().conf.voters, ['n1', 'n3', 'n4']);
  net.isolate('n2');
  net.propose('n1', 'without-n2');
  net.stabilize();
  t.true(net.appliedValues('n4').includes('without-n2'));
  t.false(net.appliedValues('n2').includes('without-n2'));
});

test('one membership change at a time: a second change is refused while the first is pending', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1'); // keep the first change uncommitted
  net.get('n1').raw.proposeConfChange({ type: 'addLearner', nodeId: 'n4' });
  t.throws(() => net.get('n1').raw.proposeConfChange({ type: 'addLearner', nodeId: 'n5' }), { name: 'ConfChangeRejectedError' });
});

test('a leader that removes itself steps down and the others elect a new leader', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  change(net, 'n1', { type: 'removeNode', nodeId: 'n1' });
  t.not(net.role('n1'), 'leader');
  t.deepEqual(net.get('n2').raw.status().conf.voters, ['n2', 'n3']);
  // Offset the two clocks so that n2 times out while n3 is out of the old leader's lease.
  net.tick('n3', net.electionTicks / 2);
  for (let i = 0; i < net.electionTicks * 2 && net.role('n2') !== 'leader'; i++) {
    net.tick('n2');
    net.tick('n3');
    net.stabilize();
  }
  t.is(net.role('n2'), 'leader');
  net.propose('n2', 'x');
  net.stabilize();
  t.true(net.appliedValues('n3').includes('x'));
  // The removed node cannot disrupt the remaining cluster however long it campaigns.
  net.tick('n1', net.electionTicks * 5);
  net.stabilize();
  t.is(net.role('n2'), 'leader');
});

// Regression for core bug 1 (/work/briefs/core-bugs.md, found by the simulator: seed 4): the bootstrap
// voters were in no log entry, so a joiner catching up by AppendEntries built its membership from nothing.
test('a learner that catches up from the log knows the bootstrap voters', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.add('n4'); // no compaction: n4 gets entries 1.. by AppendEntries
  change(net, 'n1', { type: 'addLearner', nodeId: 'n4' });
  change(net, 'n1', { type: 'addVoter', nodeId: 'n4' });
  t.deepEqual(net.get('n4').raw.status().conf.voters, ['n1', 'n2', 'n3', 'n4']);
});
