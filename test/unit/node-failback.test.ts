import test from 'ava';
import { FailbackPolicy } from '../../src/runtime/failback.js';
import type { RaftStatus } from '../../src/raft/types.js';
import { eventually, putCommand, sleep, startCluster } from './node-harness.js';

function leaderStatus(overrides: Partial<RaftStatus> = {}, preferred: Partial<NonNullable<RaftStatus['progress']>[string]> = {}): RaftStatus {
  return {
    id: 'n2',
    role: 'leader',
    term: 3,
    vote: 'n2',
    leaderId: 'n2',
    commit: 100,
    applied: 100,
    lastIndex: 100,
    firstIndex: 1,
    conf: { voters: ['n1', 'n2', 'n3'], learners: [] },
    leadTransferee: '',
    progress: {
      n1: { match: 100, next: 101, state: 'replicate', recentActive: true, isLearner: false, ...preferred },
      n2: { match: 100, next: 101, state: 'replicate', recentActive: true, isLearner: false },
    },
    ...overrides,
  };
}

test('failback waits until the preferred node has been caught up and active for the whole hold period', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000, maxLagEntries: 0 });
  t.is(policy.decide(leaderStatus(), 0), undefined);
  t.is(policy.decide(leaderStatus(), 999), undefined);
  t.is(policy.decide(leaderStatus(), 1000), 'n1');
});

test('any lapse (behind, probing, transfer under way) restarts the hold period', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000, maxLagEntries: 0 });
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

test('under steady writes a preferred node a few entries behind counts as caught up; one far behind does not', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000, maxLagEntries: 50 });
  // The leader's log keeps growing and n1 trails it by 20-40 entries at every look.
  for (let now = 0, last = 100; now < 1000; now += 100, last += 300) {
    t.is(policy.decide(leaderStatus({ lastIndex: last, commit: last - 5 }, { match: last - 20 - (now % 3) * 10 }), now), undefined);
  }
  t.is(policy.decide(leaderStatus({ lastIndex: 3400, commit: 3395 }, { match: 3370 }), 1000), 'n1');
  const strict = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 0, maxLagEntries: 50 });
  t.is(strict.decide(leaderStatus({ lastIndex: 500, commit: 500 }, { match: 449 }), 0), undefined, '51 behind');
});

test('a check-quorum round clearing recentActive is not a lapse', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 1000, maxLagEntries: 0 });
  policy.decide(leaderStatus(), 0);
  t.is(policy.decide(leaderStatus({}, { recentActive: false }), 500), undefined);
  t.is(policy.decide(leaderStatus(), 1000), 'n1', 'the hold that began at 0 still counts');
});

test('failback never fires on a follower, on the preferred node itself, or for a non-voter', (t) => {
  const policy = new FailbackPolicy({ preferredLeader: 'n1', holdMs: 0, maxLagEntries: 0 });
  t.is(policy.decide(leaderStatus({ role: 'follower' }), 0), undefined);
  t.is(policy.decide(leaderStatus({ id: 'n1' }), 0), undefined);
  t.is(policy.decide(leaderStatus({ conf: { voters: ['n2', 'n3'], learners: ['n1'] } }), 0), undefined);
});

test.serial('leadership returns to the preferred node after it was isolated and came back', async (t) => {
  const c = await startCluster(t, { preferredLeader: 'n1', failbackHoldMs: 300 });
  await eventually(async () => ((await c.node('n1').status()).role === 'leader' ? true : undefined), 10_000, 'n1 leads (failback at start)');
  // Fail over away from n1.
  c.network.isolate('n1');
  const other = await eventually(
    async () => {
      for (const id of ['n2', 'n3']) if ((await c.node(id).status()).role === 'leader') return id;
      return undefined;
    },
    10_000,
    'a new leader among n2, n3',
  );
  t.not(other, 'n1');
  const failoverTerm = (await c.node(other).status()).term;
  c.network.heal();
  // n1 may still believe in its old, stale term right after the heal: wait for a newer one.
  const back = await eventually(
    async () => {
      const s = await c.node('n1').status();
      return s.role === 'leader' && s.term > failoverTerm ? s : undefined;
    },
    15_000,
    'leadership back on n1',
  );
  t.is((await c.node(other).status()).leaderId, 'n1', `${other} follows n1 again (term ${back.term})`);
});

test.serial('leadership returns to the preferred node while writes keep coming', async (t) => {
  const c = await startCluster(t, { preferredLeader: 'n1', failbackHoldMs: 2000 });
  await eventually(async () => ((await c.node('n1').status()).role === 'leader' ? true : undefined), 10_000, 'n1 leads (failback at start)');
  c.network.isolate('n1');
  const other = await eventually(
    async () => {
      for (const id of ['n2', 'n3']) if ((await c.node(id).status()).role === 'leader') return id;
      return undefined;
    },
    10_000,
    'a new leader among n2, n3',
  );
  const failoverTerm = (await c.node(other).status()).term;
  // Steady writes for the rest of the test, to the leader of the newest term (bounded: 20 s).
  let writing = true;
  let acked = 0;
  let seq = 0;
  // 16 writers, each sending its next write as soon as the last one is answered: the leader's log
  // always has entries in flight, so a follower's match is never equal to the last index.
  const writeLoop = async () => {
    const until = Date.now() + 20_000;
    while (writing && Date.now() < until) {
      const leaders = [...c.nodes.values()].filter((n) => n.raftStatus().role === 'leader');
      const leader = leaders.sort((a, b) => b.raftStatus().term - a.raftStatus().term)[0];
      const ok = await leader?.write({ command: putCommand(`load-${seq++}`, 'x'), durability: 'sync', deadline: Date.now() + 1000 }).then(
        () => true,
        () => false,
      );
      if (ok) acked++;
      // Refusals settle in microtasks: yield to timers so the cluster (same process) keeps ticking.
      else await sleep(5);
    }
  };
  const writer = Promise.all(Array.from({ length: 16 }, writeLoop));
  t.teardown(async () => {
    writing = false;
    await writer;
  });
  await eventually(() => acked >= 200 || undefined, 10_000, 'writes flowing on the new leader');
  const ackedBeforeHeal = acked;
  c.network.heal();
  const back = await eventually(
    async () => {
      const s = await c.node('n1').status();
      return s.role === 'leader' && s.term > failoverTerm ? s : undefined;
    },
    15_000,
    'leadership back on n1 under load',
  );
  t.true(acked > ackedBeforeHeal, `writes kept being acknowledged during the failback (${acked - ackedBeforeHeal})`);
  writing = false;
  await writer;
  t.is(back.role, 'leader');
});
