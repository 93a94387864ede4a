// Followers whose fsync is slow (seen in the scale bench: 400-600 ms on every node at once while
// all three wrote snapshot files) still answer heartbeats, so their leader does not fail
// check-quorum and step down while a write is being persisted (RawNode.takeHeartbeatResponses).
import test from 'ava';
import type { StorageUpdate } from '../../src/storage/raft-storage.js';
import { putCommand, sleep, startCluster, TIMINGS } from './node-harness.js';

const SLOW_SAVE_MS = 4 * TIMINGS.electionTicks * TIMINGS.tickMs; // far beyond the check-quorum window

test('a leader keeps its term while both followers take longer than an election timeout to persist an append', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.leader();
  const before = await leader.status();
  let slow = true;
  for (const [id, storage] of cluster.storages) {
    if (id === before.id) continue;
    const save = storage.save.bind(storage);
    storage.save = async (update: StorageUpdate) => {
      if (slow && update.entries.length > 0) await sleep(SLOW_SAVE_MS);
      return save(update);
    };
  }
  const written = leader.write({ command: putCommand('k', 'v'), durability: 'sync', deadline: Date.now() + 10_000 });
  const roles: string[] = [];
  for (let i = 0; i < SLOW_SAVE_MS / 100 + 5; i++) {
    const s = await leader.status();
    roles.push(`${s.role}@${s.term}`);
    await sleep(100);
  }
  slow = false;
  t.true((await written).index > 0, 'the write commits once the followers persisted it');
  const after = await leader.status();
  t.deepEqual([...new Set(roles)], [`leader@${before.term}`], 'leader in the same term throughout');
  t.is(after.term, before.term);
  t.is(after.role, 'leader');
});
