import test from 'ava';
import { ManualNet } from '../sim/manual-net.js';

test('a node that times out wins the election, and everyone follows it in the new term', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  t.is(net.role('n1'), 'leader');
  for (const id of ['n1', 'n2', 'n3']) {
    t.is(net.term(id), 1);
    t.is(net.get(id).raw.status().leaderId, 'n1');
  }
  t.is(net.role('n2'), 'follower');
  // The leader's no-op of term 1 commits and is applied everywhere.
  for (const id of ['n1', 'n2', 'n3'])
    t.deepEqual(
      net.get(id).applied.map((e) => [e.index, e.term]),
      [[1, 1]],
    );
  // Pre-vote happened first and did not bump anybody's term.
  t.true(net.delivered.some((m) => m.type === 'preVote'));
});

test('a vote is refused to a candidate whose log is behind', (t) => {
  // No check-quorum, so n2 answers on log freshness alone (no leader lease involved).
  const net = new ManualNet(['n1', 'n2', 'n3'], { checkQuorum: false });
  net.elect('n1');
  net.isolate('n3');
  net.propose('n1', 'a');
  net.stabilize();
  net.heal();
  // n3 missed 'a': it cannot become leader even if it times out first.
  net.isolate('n1');
  net.tick('n3', net.electionTicks);
  net.stabilize();
  t.not(net.role('n3'), 'leader');
  t.true(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject));
  net.tick('n2', net.electionTicks);
  net.stabilize();
  t.is(net.role('n2'), 'leader');
  t.true(net.appliedValues('n2').includes('a'));
});

test('pre-vote: a partitioned node does not inflate its term and does not disrupt the leader when it rejoins', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n3');
  for (let i = 0; i < 5; i++) {
    net.tick('n3', net.electionTicks * 2);
    net.stabilize();
  }
  t.is(net.term('n3'), 1, 'pre-vote keeps the isolated node at the old term');
  t.is(net.get('n3').raw.status().vote, 'n1');
  net.heal();
  // n3 keeps campaigning on rejoin (it has not heard from the leader yet), but n2 is in the leader's lease.
  net.tick('n3', net.electionTicks * 2);
  net.stabilize();
  net.tickAll(net.heartbeatTicks);
  net.stabilize();
  t.is(net.role('n1'), 'leader');
  t.is(net.term('n1'), 1);
  t.is(net.get('n3').raw.status().leaderId, 'n1');
  net.propose('n1', 'after');
  net.stabilize();
  t.deepEqual(net.appliedValues('n3'), ['after']);
});

test('without pre-vote the same partitioned node would disrupt the leader (the contrast the previous test relies on)', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3'], { preVote: false, checkQuorum: false });
  net.elect('n1');
  net.isolate('n3');
  net.tick('n3', net.electionTicks * 3);
  net.stabilize();
  t.true(net.term('n3') > 1);
  net.heal();
  net.tick('n3', net.electionTicks * 2);
  net.stabilize();
  t.true(net.term('n1') > 1, 'the leader was forced into a new term');
});

test('check-quorum: an isolated leader steps down within an election timeout', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1');
  for (let i = 0; i < net.electionTicks * 2 && net.role('n1') === 'leader'; i++) {
    net.tick('n1');
    net.deliver();
  }
  t.is(net.role('n1'), 'follower');
  t.is(net.get('n1').raw.status().leaderId, '');
  // A leader that still hears from a quorum stays.
  const healthy = new ManualNet(['n1', 'n2', 'n3']);
  healthy.elect('n1');
  healthy.cut('n1', 'n3');
  for (let i = 0; i < healthy.electionTicks * 3; i++) {
    healthy.tick('n1');
    healthy.stabilize();
  }
  t.is(healthy.role('n1'), 'leader');
});

test('a leader refuses proposals on other nodes with a hint to itself', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  const err = t.throws(() => net.propose('n2', 'x'), { name: 'NotLeaderError' }) as Error & { leaderHint: string };
  t.is(err.leaderHint, 'n1');
});

test('two followers that time out together do not split the vote: the lower id wins the pre-vote tie', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1'); // the leader hangs (SIGSTOP): nothing reaches it or leaves it
  // n2 and n3 time out in the same tick, before either hears of the other's pre-campaign.
  net.tick('n2', net.electionTicks);
  net.tick('n3', net.electionTicks);
  t.is(net.role('n2'), 'preCandidate');
  t.is(net.role('n3'), 'preCandidate');
  net.stabilize();
  // Without the tie-break both would grant each other's pre-vote, become candidates in term 2,
  // refuse each other the real vote and stay leaderless until a new election timeout.
  t.is(net.role('n2'), 'leader');
  t.is(net.role('n3'), 'follower');
  t.is(net.term('n2'), 2);
  t.is(net.term('n3'), 2);
  t.true(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject));
  t.true(net.delivered.some((m) => m.from === 'n3' && m.to === 'n2' && m.type === 'preVoteResp' && !m.reject));
});

test('the pre-vote tie-break yields to a fresher log', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3'], { heartbeatTicks: 2 });
  net.elect('n1');
  // n3 gets an entry that n2 misses: n3's log is fresher, so n2 grants it even mid pre-campaign.
  net.cutOneWay('n1', 'n2');
  net.propose('n1', 'x');
  net.stabilize();
  net.isolate('n1');
  net.tick('n2', net.electionTicks);
  net.tick('n3', net.electionTicks);
  net.stabilize();
  t.is(net.role('n3'), 'leader');
  t.true(net.appliedValues('n3').includes('x'));
});

test('the pre-vote tie-break holds for the whole round, and a pre-candidate whose pre-vote was lost asks again beside its refusal', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3'], { heartbeatTicks: 2 });
  net.elect('n1');
  net.isolate('n1');
  net.tick('n2', net.electionTicks);
  // n2's pre-votes are lost (its link to n3 was still being redialled), and n3 times out well after
  // n2's pre-campaign began: longer than a heartbeat interval, which once ended the tie-break.
  t.true(net.drop((m) => m.from === 'n2').length > 0);
  net.tick('n2', 3);
  t.is(net.role('n2'), 'preCandidate');
  net.tick('n3', net.electionTicks);
  t.is(net.role('n3'), 'preCandidate');
  net.stabilize();
  // n2 refused n3 and sent its pre-vote again; n3, ranking after n2, granted it: one round, no split.
  t.true(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject));
  t.true(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVote'));
  t.is(net.role('n2'), 'leader');
  t.is(net.role('n3'), 'follower');
  t.is(net.term('n2'), 2);
  t.is(net.term('n3'), 2);
});

test('the pre-vote tie-break never refuses a peer that has already answered this round', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1');
  // n2 times out first; n3 still heard from n1 within the election timeout and refuses it (in lease).
  net.tick('n2', net.electionTicks);
  net.stabilize();
  t.is(net.role('n2'), 'preCandidate');
  t.true(net.delivered.some((m) => m.from === 'n3' && m.to === 'n2' && m.type === 'preVoteResp' && m.reject));
  // n2 cannot win through n3 this round, so it must not stand in n3's way when n3 times out.
  net.tick('n3', net.electionTicks);
  net.stabilize();
  t.is(net.role('n3'), 'leader');
  t.false(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject));
});

test('the pre-vote tie-break applies only within one term: a peer in a newer term is granted', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1');
  // n3 saw a newer term than n2 (a candidate of a round n2 missed), with the same log.
  const n3 = net.get('n3');
  const { hardState } = n3.storage.initialState();
  n3.storage.setHardState({ ...hardState, term: hardState.term + 1, vote: '' });
  net.restart('n3');
  net.tick('n2', net.electionTicks);
  net.tick('n3', net.electionTicks);
  net.stabilize();
  t.false(net.delivered.some((m) => m.from === 'n2' && m.to === 'n3' && m.type === 'preVoteResp' && m.reject && m.term === net.term('n2')));
  t.is(net.role('n3'), 'leader');
});
