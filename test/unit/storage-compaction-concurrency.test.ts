import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../src/raft/types.js';
import { FileRaftStorage } from '../../src/storage/index.js';

const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };
const entries = (from: number, to: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ term: 1, index: from + i, type: 'normal' as const, data: new Uint8Array([i & 0xff]) }));

// A compaction writes the whole state (here 48 MiB) to the snapshot file. Group commits must keep
// flowing meanwhile: a Ready loop stuck behind it stops the node's heartbeats and triggers elections.
test('saves are not held up while a large snapshot file is written for compaction', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-compact-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const storage = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => storage.close());
  await storage.save({ entries: entries(1, 100), hardState: { term: 1, vote: 'n1', commit: 100 } });

  const order: string[] = [];
  const bigState = new Uint8Array(48 * 1024 * 1024).fill(1);
  const compaction = storage.compact({ meta: { index: 90, term: 1, conf }, data: bigState }, 5).then(() => order.push('compact'));
  const save = storage.save({ entries: entries(101, 101), hardState: { term: 1, vote: 'n1', commit: 101 } }).then(() => order.push('save'));
  await Promise.all([compaction, save]);

  t.deepEqual(order, ['save', 'compact']);
  t.is(storage.lastIndex(), 101);
  t.is(storage.firstIndex(), 86, 'compacted up to the snapshot minus the retained entries');
  t.is(storage.snapshot().meta.index, 90);

  // Both survive a reopen.
  await storage.close();
  const reopened = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => reopened.close());
  t.is(reopened.lastIndex(), 101);
  t.is(reopened.snapshot().meta.index, 90);
  t.is(reopened.snapshot().data.length, bigState.length);
  t.true((await readdir(dir)).length <= 3, 'one log segment, one snapshot file (and nothing left behind)');
});

test('an older snapshot never overwrites a newer snapshot file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-compact-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const storage = await FileRaftStorage.open({ dir, bootstrap: conf });
  await storage.save({ entries: entries(1, 50), hardState: { term: 1, vote: 'n1', commit: 50 } });
  await Promise.all([
    storage.compact({ meta: { index: 40, term: 1, conf }, data: new Uint8Array([40]) }, 0),
    storage.compact({ meta: { index: 30, term: 1, conf }, data: new Uint8Array([30]) }, 0),
  ]);
  t.is(storage.snapshot().meta.index, 40);
  await storage.close();
  const reopened = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => reopened.close());
  t.is(reopened.snapshot().meta.index, 40);
  t.deepEqual([...reopened.snapshot().data], [40]);
});
