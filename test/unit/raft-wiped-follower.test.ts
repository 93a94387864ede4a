// A follower that lost its data (its data dir was wiped or replaced) and restarted empty, in the
// pure core: the leader notices and re-replicates it from scratch, and the node neither votes nor
// campaigns until a leader caught it up (it may have voted, or acknowledged entries, before the loss).
import test from 'ava';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { Progress } from '../../src/raft/progress.js';
import { ConfChangeRejectedError } from '../../src/raft/errors.js';
import { ManualNet } from '../sim/manual-net.js';
import { message } from './core-harness.js';

const VOTERS = ['n1', 'n2', 'n3'];

/** `id` loses its disk: it restarts with an empty storage and only the bootstrap membership. */
function wipe(net: ManualNet, id: string): void {
  net.outbox = net.outbox.filter((m) => m.to !== id && m.from !== id);
  net.add(id, new MemoryStorage({ voters: [...VOTERS], learners: [] }));
}

function progressOf(net: ManualNet, leader: string, follower: string) {
  return net.get(leader).raw.status().progress![follower]!;
}

test('a follower wiped while the same leader stays in office is reset to probe from scratch and caught up', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  for (const v of ['a', 'b', 'c']) net.propose('n1', v);
  net.stabilize();
  const lastIndex = net.get('n1').raw.status().lastIndex;
  t.is(progressOf(net, 'n1', 'n2').match, lastIndex);

  wipe(net, 'n2');
  t.is(net.get('n2').raw.status().recovery, 'pristine');
  // An idle leader sends only heartbeats. Before the fix the leader still believed n2 held
  // everything (match = lastIndex, "lag 0"), so it never sent an append and n2 stayed empty.
  net.tickAll(net.heartbeatTicks);
  net.deliver((m) => m.type === 'heartbeat' && m.to === 'n2');
  t.is(net.get('n2').raw.status().recovery, 'rebuilding', 'a heartbeat counting entries n2 no longer holds makes it rebuild');
  net.flush('n2');
  net.deliver((m) => m.type === 'heartbeatResp' && m.from === 'n2');
  t.is(progressOf(net, 'n1', 'n2').match, 0, 'its lost acknowledgements no longer count towards commit');
  t.is(progressOf(net, 'n1', 'n2').state, 'probe');

  net.stabilize();
  t.deepEqual(net.log('n2'), net.log('n1'));
  t.deepEqual(net.appliedValues('n2'), ['a', 'b', 'c']);
  t.is(progressOf(net, 'n1', 'n2').match, lastIndex);
  t.is(net.get('n2').raw.status().recovery, undefined, 'caught up to the leader’s commit index of its own term: a voter again');
  t.is(net.term('n1'), 1, 'no election happened');
});

test('a wiped follower answering an append with a rejection below its match is reset too', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  wipe(net, 'n2');
  // The next write reaches n2 first as an append at prevIndex = its old match: n2 rejects it.
  net.propose('n1', 'b');
  net.stabilize();
  t.deepEqual(net.log('n2'), net.log('n1'));
  t.deepEqual(net.appliedValues('n2'), ['a', 'b']);
});

test('a wiped node refuses votes and pre-votes and does not campaign until a leader caught it up', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  // 'b' is committed by n1 and n2 only: n3 misses it.
  net.isolate('n3');
  net.propose('n1', 'b');
  net.stabilize();
  t.deepEqual(net.appliedValues('n1'), ['a', 'b']);
  t.false(net.log('n3').includes('1:b'));

  // n2 loses its disk; the leader goes away. n3, which lacks 'b', campaigns: with n2's vote it
  // would win and 'b' (acknowledged to the client) would be lost.
  wipe(net, 'n2');
  net.heal();
  net.isolate('n1');
  net.tick('n3', net.electionTicks);
  net.stabilize();
  t.not(net.role('n3'), 'leader');
  t.is(net.get('n2').raw.status().recovery, 'rebuilding');
  t.true(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject));
  // A restart keeps it rebuilding (the flag is in its durable hard state), and it never campaigns.
  net.restart('n2');
  t.is(net.get('n2').raw.status().recovery, 'rebuilding');
  net.tick('n2', net.electionTicks * 3);
  net.stabilize();
  // It only probes for a leader (pre-votes it never follows up: see the test below).
  t.false(net.delivered.some((m) => m.from === 'n2' && m.type === 'vote'));
  t.not(net.role('n2'), 'leader');
  // Nor does a leadership transfer make it campaign.
  net.get('n2').raw.step(message({ type: 'timeoutNow', from: 'n1', to: 'n2', term: net.term('n2') }));
  net.flush('n2');
  t.is(net.role('n2'), 'follower');
  t.false(net.outbox.some((m) => m.from === 'n2' && m.type === 'vote'));

  // The leader comes back and rebuilds n2; from then on n2 votes like any member.
  net.heal();
  net.tickAll(net.heartbeatTicks);
  net.stabilize();
  t.is(net.get('n2').raw.status().recovery, undefined);
  t.deepEqual(net.appliedValues('n2'), ['a', 'b']);
  net.isolate('n1');
  net.tick('n3', net.electionTicks); // n3 stops following n1 (and cannot win itself: it lacks 'b')
  net.stabilize();
  net.tick('n2', net.electionTicks);
  net.stabilize();
  t.is(net.role('n2'), 'leader', 'n2 holds every committed entry and may lead');
  t.true(net.log('n2').includes('1:b'));
});

test('a brand-new cluster still elects its first leader: pristine nodes vote for candidates with empty logs', (t) => {
  const net = new ManualNet(VOTERS);
  for (const id of VOTERS) t.is(net.get(id).raw.status().recovery, 'pristine');
  net.elect('n1');
  t.is(net.role('n1'), 'leader');
  for (const id of VOTERS) t.is(net.get(id).raw.status().recovery, undefined, `${id} took part in the first election`);
});

test('Progress: a rejection showing the log ends below match is data loss; a stale one is not', (t) => {
  const pr = new Progress(11, 8, false);
  pr.maybeUpdate(10);
  pr.becomeReplicate();
  t.false(pr.lostAcknowledgedEntries(7, 3), 'rejected prevIndex 7 < match: sent before the follower acknowledged 10');
  t.false(pr.lostAcknowledgedEntries(12, 11), 'the follower holds more than match: a gap, not a loss');
  t.true(pr.lostAcknowledgedEntries(10, 0));
  pr.resetAfterDataLoss(0);
  t.deepEqual(pr.toStatus(), { match: 0, next: 1, state: 'probe', recentActive: false, isLearner: false });
});

test('a leader refuses a membership change after which a quorum of voters could not vote', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  net.isolate('n3');
  net.tick('n1', net.electionTicks); // n3 has been silent for an election timeout
  net.stabilize();
  const err = t.throws(() => net.get('n1').raw.proposeConfChange({ type: 'removeNode', nodeId: 'n2' }), { instanceOf: ConfChangeRejectedError });
  t.regex(err!.message, /only 1 of 2 voters would be known able to vote \(n1\).*n3/);
  net.heal();
  net.tickAll(net.heartbeatTicks);
  net.stabilize();
  t.notThrows(() => net.get('n1').raw.proposeConfChange({ type: 'removeNode', nodeId: 'n2' }));
});

test('a node started to join (no configuration at all) never helps form a cluster: it votes only once a leader caught it up', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  // n4 starts empty and without a configuration: a joiner, or a removed member back with a wiped disk.
  net.add('n4');
  t.is(net.get('n4').raw.status().recovery, 'rebuilding');
  // A founder cut off since the start (empty log) asks it for a vote: refused. As 'pristine' it would
  // have granted it, and two such nodes with that founder are a quorum of the founders' five.
  net.get('n4').raw.step(message({ type: 'vote', from: 'n5', to: 'n4', term: 1, index: 0, logTerm: 0 }));
  net.flush('n4');
  const answer = net.drop((m) => m.type === 'voteResp' && m.from === 'n4');
  t.is(answer.length, 1);
  t.true(answer[0]?.reject, 'a joiner refuses an empty-log candidate');
  // Added as a learner, it is caught up by the leader and then takes part like any member.
  net.get('n1').raw.proposeConfChange({ type: 'addLearner', nodeId: 'n4' });
  net.stabilize();
  net.propose('n1', 'b');
  net.stabilize();
  net.tickAll(net.heartbeatTicks);
  net.stabilize();
  t.deepEqual(net.appliedValues('n4'), ['a', 'b']);
  t.is(net.get('n4').raw.status().recovery, undefined, 'caught up: no longer rebuilding');
});

test('a node that may not campaign asks the voters who leads, with pre-votes it never follows up', (t) => {
  const net = new ManualNet(VOTERS);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  wipe(net, 'n2');
  net.get('n2').raw.step(message({ type: 'preVote', from: 'n3', to: 'n2', term: 2, index: 2, logTerm: 1 }));
  net.flush('n2');
  net.drop();
  t.is(net.get('n2').raw.status().recovery, 'rebuilding');
  // n2 hears from no leader it accepts (say peer admission refuses it): after an election timeout
  // it probes instead of campaigning.
  const termBefore = net.term('n2');
  net.tick('n2', net.electionTicks);
  const probes = net.drop((m) => m.from === 'n2');
  t.deepEqual(probes.map((m) => `${m.type}->${m.to}`).sort(), ['preVote->n1', 'preVote->n3']);
  t.is(net.role('n2'), 'follower', 'a probe is no campaign');
  t.is(net.term('n2'), termBefore);
  // The leader's answer names it; a grant would change nothing.
  for (const p of probes.filter((m) => m.to === 'n1')) net.get('n1').raw.step(p);
  net.flush('n1');
  const answer = net.drop((m) => m.type === 'preVoteResp' && m.from === 'n1')[0];
  t.true(answer?.reject);
  t.is(answer?.leaderHint, 'n1');
});
