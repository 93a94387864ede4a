import test from 'ava';
import { FailbackPolicy } from '../../src/runtime/failback.js';
import type { RaftStatus } from '../../src/raft/types.js';
import { eventually, startCluster } from './node-harness.js';

function leaderStatus(overrides: Partial<RaftStatus> = {}, preferred: Partial<NonNullable<RaftStatus['progress']>[string]> = {}): RaftStatus {
  return {
    id: 'n2', role: 'leader', term: 3, vote: 'n2', leaderId: 'n2', commit: 100, applied: 100, lastIndex: 100, firstIndex: 1,
    conf: { voters: ['n1', 'n2', 'n3'], learners: [] }, leadTransferee: '',
    progress: {
      n1: { match: 100, next: 101, state: 'replicate', recentActive: true, isLearner: false, ...preferred },
      n2: { match: 100, next: 101, state: 'replicate', recentActive: true, isLearner: false },
    },
    ...overrides,
  };
}

test('failback waits until the preferred node has been caught up and active for the whole hold period', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000 });
  t.is(policy.decide(leaderStatus(), 0), undefined);
  t.is(policy.decide(leaderStatus(), 999), undefined);
  t.is(policy.decide(leaderStatus(), 1000), 'n1');
});

test('any lapse (behind, probing, transfer under way) restarts the hold period', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000 });
  policy.decide(leaderStatus(), 0);
  t.is(policy.decide(leaderStatus({}, { match: 90 }), 500), undefined, 'behind');
  t.is(policy.decide(leaderStatus(), 600), undefined);
  t.is(policy.decide(leaderStatus(), 1599), undefined, 'the clock restarted at 600');
  t.is(policy.decide(leaderStatus({}, { state: 'probe' }), 1600), undefined, 'probing');
  t.is(policy.decide(leaderStatus(), 1700), undefined);
  t.is(policy.decide(leaderStatus({ leadTransferee: 'n3' }), 2000), undefined, 'a transfer is under way');
  t.is(policy.decide(leaderStatus(), 2100), undefined);
  t.is(policy.decide(leaderStatus(), 3100), 'n1');
});

test('a check-quorum round clearing recentActive is not a lapse', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000 });
  policy.decide(leaderStatus(), 0);
  t.is(policy.decide(leaderStatus({}, { recentActive: false }), 500), undefined);
  t.is(policy.decide(leaderStatus(), 1000), 'n1', 'the hold that began at 0 still counts');
});

test('failback never fires on a follower, on the preferred node itself, or for a non-voter', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 0 });
  t.is(policy.decide(leaderStatus({ role: 'follower' }), 0), undefined);
  t.is(policy.decide(leaderStatus({ id: 'n1' }), 0), undefined);
  t.is(policy.decide(leaderStatus({ conf: { voters: ['n2', 'n3'], learners: ['n1'] } }), 0), undefined);
});

test('leadership returns to the preferred node after it was isolated and came back', async (t) => {
  const c = await startCluster(t, { preferredLeader: 'n1', failbackHoldMs: 300 });
  await eventually(async () => ((await c.node('n1').status()).role === 'leader' ? true : undefined), 10_000, 'n1 leads (failback at start)');
  // Fail over away from n1.
  c.network.isolate('n1');
  const other = await eventually(async () => {
    for (const id of ['n2', 'n3']) if ((await c.node(id).status()).role === 'leader') return id;
    return undefined;
  }, 10_000, 'a new leader among n2, n3');
  t.not(other, 'n1');
  const failoverTerm = (await c.node(other).status()).term;
  c.network.heal();
  // n1 may still believe in its old, stale term right after the heal: wait for a newer one.
  const back = await eventually(async () => {
    const s = await c.node('n1').status();
    return s.role === 'leader' && s.term > failoverTerm ? s : undefined;
  }, 15_000, 'leadership back on n1');
  t.is((await c.node(other).status()).leaderId, 'n1', `${other} follows n1 again (term ${back.term})`);
});
