import test from 'ava';
import { bytes, putCommand, startCluster } from './node-harness.js';

const soon = (ms = 5000) => Date.now() + ms;

test('a snapshot is taken once enough bytes were applied, even far below the entry threshold', async (t) => {
  const c = await startCluster(t, { snapshotEntries: 0, snapshotBytes: 4096 });
  const leader = await c.leader();
  const big = 'x'.repeat(1000);
  for (let i = 0; i < 3; i++) await leader.write({ command: putCommand(`k${i}`, big), durability: 'sync', deadline: soon() });
  t.is(c.storages.get(leader.id)!.snapshot().meta.index, 0, '3 KB applied: below the 4 KiB trigger');
  for (let i = 3; i < 6; i++) await leader.write({ command: putCommand(`k${i}`, big), durability: 'sync', deadline: soon() });
  const storage = c.storages.get(leader.id)!;
  const deadline = Date.now() + 5000;
  while (storage.snapshot().meta.index === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(storage.snapshot().meta.index > 0, 'a snapshot was taken by bytes');
  const value = await leader.get(bytes('k5'), { consistency: 'linearizable', deadline: soon() });
  t.is(value.kv?.value.length, 1000);
});
