// Hung-leader detection: the probe the SDK runs once an attempt has waited about one election
// timeout. It names a node that leads (or is followed) in a newer term once the other nodes have
// answered, without waiting for the hung node's own Status to time out; a slow leader that still
// answers as leader of the newest term, or that its followers name in the newest term, is not
// abandoned; concurrent waiters share one round.
import test from 'ava';
import { LeaderWatch } from '../../src/client/leader-watch.js';
import type { LeaderClaim, LeaderClaimWait } from '../../src/client/leader-watch.js';

const HUNG = 'a:1';

function watch(answers: Record<string, LeaderClaim | 'hang'>, calls: string[] = []): LeaderWatch {
  return new LeaderWatch({
    known: () => Object.keys(answers),
    ask: (address, deadline) => {
      calls.push(address);
      const a = answers[address]!;
      if (a === 'hang') return new Promise((_, reject) => setTimeout(() => reject(new Error('deadline')), Math.max(0, deadline - Date.now())));
      return Promise.resolve(a);
    },
    probeTimeoutMs: 2_000,
    minRoundGapMs: 50,
    longPollMs: 0,
  });
}

test('a newer-term leader is found at once, while the hung node has not answered', async (t) => {
  const w = watch({
    [HUNG]: 'hang',
    'b:1': { from: 'b:1', term: 3, leader: 'b:1', isLeader: true },
    'c:1': { from: 'c:1', term: 3, leader: 'b:1', isLeader: false },
  });
  w.sawLeader(HUNG, 2);
  const started = Date.now();
  t.deepEqual(await w.newerLeaderThan(HUNG), { address: 'b:1', term: 3 });
  t.true(Date.now() - started < 1_000, 'did not wait for the hung node');
});

test("a follower's view of a newer leader counts as well", async (t) => {
  const w = watch({ [HUNG]: 'hang', 'b:1': 'hang', 'c:1': { from: 'c:1', term: 5, leader: 'b:1', isLeader: false } });
  w.sawLeader(HUNG, 4);
  t.deepEqual(await w.newerLeaderThan(HUNG), { address: 'b:1', term: 5 });
});

test('no move while the others still follow the node we wait on in its term, or it answers as the newest leader', async (t) => {
  const same = watch({
    [HUNG]: 'hang',
    'b:1': { from: 'b:1', term: 2, leader: HUNG, isLeader: false },
    'c:1': { from: 'c:1', term: 2, leader: HUNG, isLeader: false },
  });
  same.sawLeader(HUNG, 2);
  t.is(await same.newerLeaderThan(HUNG), undefined);
  const slow = watch({ [HUNG]: { from: HUNG, term: 4, leader: HUNG, isLeader: true }, 'b:1': { from: 'b:1', term: 3, leader: 'b:1', isLeader: true } });
  slow.sawLeader(HUNG, 2);
  t.is(await slow.newerLeaderThan(HUNG), undefined);
});

test('requests waiting at the same time share one probe round', async (t) => {
  const calls: string[] = [];
  const w = watch({ [HUNG]: { from: HUNG, term: 2, leader: HUNG, isLeader: true }, 'b:1': { from: 'b:1', term: 2, leader: HUNG, isLeader: false } }, calls);
  await Promise.all(Array.from({ length: 20 }, () => w.newerLeaderThan(HUNG)));
  t.is(calls.length, 2);
});

test('a round with no newer leader ends once the other nodes answered, not when the hung node times out', async (t) => {
  const w = watch({ [HUNG]: 'hang', 'b:1': { from: 'b:1', term: 2, leader: HUNG, isLeader: false } });
  w.sawLeader(HUNG, 2);
  const started = Date.now();
  t.is(await w.newerLeaderThan(HUNG), undefined);
  t.true(Date.now() - started < 1_000);
});

test('a deposed leader that has not heard of its successor does not win over the leader its followers name', async (t) => {
  // We have not seen the node we wait on ack anything yet (term unknown); a follower names it
  // leader of term 3, and an old leader still claims term 2.
  const w = watch({
    [HUNG]: 'hang',
    'b:1': { from: 'b:1', term: 2, leader: 'b:1', isLeader: true },
    'c:1': { from: 'c:1', term: 3, leader: HUNG, isLeader: false },
  });
  t.is(await w.newerLeaderThan(HUNG), undefined);
});

test('long poll: the nodes hold the question until they know a newer leader, and the first such answer moves at once', async (t) => {
  const asked: { address: string; wait: LeaderClaimWait | undefined }[] = [];
  let elect: () => void = () => {};
  const elected = new Promise<void>((resolve) => {
    elect = resolve;
  });
  const w = new LeaderWatch({
    known: () => [HUNG, 'b:1', 'c:1'],
    ask: async (address, deadline, wait) => {
      asked.push({ address, wait });
      if (address === HUNG) return new Promise((_, reject) => setTimeout(() => reject(new Error('deadline')), Math.max(0, deadline - Date.now())));
      // c:1 is slow to learn of the new leader and holds its answer for the whole poll.
      if (address === 'c:1') {
        await new Promise((resolve) => setTimeout(resolve, wait?.waitMs ?? 0));
        return { from: 'c:1', term: 2, leader: HUNG, isLeader: false };
      }
      await elected;
      return { from: 'b:1', term: 3, leader: 'b:1', isLeader: true };
    },
    probeTimeoutMs: 5_000,
    minRoundGapMs: 50,
    longPollMs: 3_000,
  });
  w.sawLeader(HUNG, 2);
  const found = w.newerLeaderThan(HUNG);
  setTimeout(elect, 100);
  const started = Date.now();
  t.deepEqual(await found, { address: 'b:1', term: 3 });
  t.true(Date.now() - started < 2_000, 'moved on the first answer naming a newer leader, not after the slow node');
  // The other nodes long-poll above the term we saw the hung node lead in; the hung node is asked plainly.
  t.deepEqual(asked.find((a) => a.address === 'b:1')?.wait, { leaderTermAbove: 2, waitMs: 3_000 });
  t.is(asked.find((a) => a.address === HUNG)?.wait, undefined);
});

test('long poll: without a known term for the hung node the round asks plainly, and longPollMs is checked', (t) => {
  const asked: (LeaderClaimWait | undefined)[] = [];
  const w = new LeaderWatch({
    known: () => ['b:1'],
    ask: async (_address, _deadline, wait) => {
      asked.push(wait);
      return { from: 'b:1', term: 1, leader: 'b:1', isLeader: true };
    },
    probeTimeoutMs: 250,
    minRoundGapMs: 50,
    longPollMs: 150,
  });
  void w.newerLeaderThan(HUNG);
  t.deepEqual(asked, [undefined]);
  t.throws(
    () =>
      new LeaderWatch({
        known: () => [],
        ask: async () => ({ from: '', term: 0, leader: '', isLeader: false }),
        probeTimeoutMs: 100,
        minRoundGapMs: 50,
        longPollMs: 100,
      }),
    {
      instanceOf: RangeError,
    },
  );
});
