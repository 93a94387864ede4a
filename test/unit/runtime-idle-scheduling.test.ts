// An idle node must not spin its Ready loop on every tick: each turn costs a setImmediate and an
// event-loop wake-up, which is most of what an idle cluster spends (issue 12: 100 a second per node
// at a 10 ms tick). Counted through the runtime's Clock, relative to the tick callbacks it ran.
import test from 'ava';
import { type Clock, SYSTEM_CLOCK } from '../../src/runtime/clock.js';
import { RaftNode } from '../../src/runtime/raft-node.js';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import { MemoryRaftStorage } from '../../src/storage/memory-raft-storage.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { eventually, putCommand, sleep, TIMINGS } from './node-harness.js';

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
  const ids = ['n1', 'n2', 'n3'];
  const network = new MemoryNetwork();
  const members = ids.map((id) => ({ id, raftAddress: `memory:${id}`, clientAddress: `client-${id}:1` }));
  const clocks = new Map(ids.map((id) => [id, countingClock()]));
  const nodes: RaftNode[] = [];
  for (const id of ids) {
    nodes.push(
      await RaftNode.create({
        id,
        members,
        raft: { ...TIMINGS, snapshotEntries: 0, snapshotBytes: 0 },
        storage: new MemoryRaftStorage({ bootstrap: { voters: ids, learners: [] } }),
        stateMachine: new MemoryStateMachine(),
        transport: network.transport(id),
        drainTimeoutMs: 200,
        clock: clocks.get(id)!,
      }),
    );
  }
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  await Promise.all(nodes.map((n) => n.start()));
  const leader = await eventually(async () => {
    for (const n of nodes) if ((await n.status()).role === 'leader') return n;
    return undefined;
  });
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
  // The loop still runs when there is work: a write commits everywhere.
  const written = await leader.write({ command: putCommand('k2', 'v2'), durability: 'sync', deadline: soon() });
  t.true(written.index > 0);
});
