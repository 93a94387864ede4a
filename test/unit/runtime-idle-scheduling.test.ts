// An idle node must not spin its Ready loop on every tick: each turn costs a setImmediate and an
// event-loop wake-up (issue 12: 100 a second per node at a 10 ms tick). Counted through the
// runtime's Clock, relative to the tick callbacks it ran.
import test from 'ava';
import { type Clock, SYSTEM_CLOCK } from '../../src/runtime/clock.js';
import { putCommand, sleep, startCluster } from './node-harness.js';

interface CountingClock extends Clock {
  counts: { tickCallbacks: number; immediates: number };
}

function countingClock(): CountingClock {
  const counts = { tickCallbacks: 0, immediates: 0 };
  return {
    ...SYSTEM_CLOCK,
    counts,
    setInterval: (fn, ms) =>
      SYSTEM_CLOCK.setInterval(() => {
        counts.tickCallbacks++;
        fn();
      }, ms),
    setImmediate: (fn) => {
      counts.immediates++;
      SYSTEM_CLOCK.setImmediate(fn);
    },
  };
}

test('an idle node runs its Ready loop only when the core has work, not on every tick', async (t) => {
  const clocks = new Map(['n1', 'n2', 'n3'].map((id) => [id, countingClock()]));
  const cluster = await startCluster(t, { clock: (id) => clocks.get(id)! });
  const leader = await cluster.leader();
  const soon = () => Date.now() + 5000;
  await leader.write({ command: putCommand('k', 'v'), durability: 'sync', deadline: soon() });

  for (const [id, clock] of clocks) {
    const before = { ...clock.counts };
    await sleep(600);
    const ticks = clock.counts.tickCallbacks - before.tickCallbacks;
    const immediates = clock.counts.immediates - before.immediates;
    t.true(ticks >= 10, `${id}: ${ticks} tick callbacks in 600 ms`);
    // A follower's loop runs per heartbeat (every heartbeatTicks ticks), the leader's per heartbeat
    // response round; without the check it ran on every tick (immediates >= ticks).
    t.true(immediates <= ticks / 2, `${id}: ${immediates} Ready-loop turns for ${ticks} tick callbacks`);
  }
  // The loop still runs when there is work: a sync write is acknowledged.
  const written = await leader.write({ command: putCommand('k2', 'v2'), durability: 'sync', deadline: soon() });
  t.true(written.index > 0);
});
