// The snapshot interval grows with the state: a due snapshot waits until the commands applied since
// the last one reach snapshotLogPercent of the last snapshot file (a snapshot rewrites all of it).
// And a compaction keeps the log that a follower being caught up still builds on.
import test from 'ava';
import type { Snapshot } from '../../src/raft/types.js';
import { noopNodeMetrics } from '../../src/runtime/metrics.js';
import { SnapshotScheduler } from '../../src/runtime/snapshots.js';
import type { RaftStorage } from '../../src/storage/raft-storage.js';
import { encodeSnapshotRef } from '../../src/storage/snapshot-store.js';
import type { StateMachine } from '../../src/storage/state-machine.js';

const conf = { voters: ['n1'], learners: [] };

function scheduler(
  fileBytes: number,
  percent: number,
  followerFloor?: () => number | undefined,
): { s: SnapshotScheduler; started: () => number; retained: number[] } {
  const stored: Snapshot = {
    meta: { index: 10, term: 1, conf },
    data: fileBytes > 0 ? encodeSnapshotRef({ name: 'snap-0000000000000010-1-1.qsnap', bytes: fileBytes, crc32: 0, index: 10, term: 1 }) : new Uint8Array(),
  };
  let started = 0;
  const retained: number[] = [];
  const storage = {
    snapshot: () => stored,
    compact: async (_snap: Snapshot, retain: number) => void retained.push(retain),
  } as unknown as RaftStorage;
  const stateMachine = {
    snapshot: () => {
      started++;
      return new Promise(() => {}); // never done: the test only counts starts
    },
  } as unknown as StateMachine;
  const s = new SnapshotScheduler({
    snapshotEntries: 0,
    snapshotBytes: 1000,
    snapshotLogPercent: percent,
    retainEntries: 10,
    storage,
    stateMachine,
    metrics: noopNodeMetrics(),
    logger: undefined,
    termAt: () => 1,
    lastConfIndex: () => 0,
    schedule: () => {},
    followerFloor,
  });
  return { s, started: () => started, retained };
}

const capture = () => ({ conf, members: [] });

test('a due snapshot waits until a quarter of the last snapshot file was applied since', (t) => {
  const { s, started } = scheduler(100_000, 25);
  s.noteApplied(24_000);
  s.maybeStart(500, capture);
  t.is(started(), 0, '24 kB applied after a 100 kB snapshot: not yet, although snapshotBytes (1000) is passed');
  s.noteApplied(1_000);
  s.maybeStart(501, capture);
  t.is(started(), 1, '25 kB: now');
});

test('without a snapshot file, or with the percent at 0, snapshotBytes alone decides', (t) => {
  for (const [fileBytes, percent] of [
    [0, 25],
    [100_000, 0],
  ] as const) {
    const { s, started } = scheduler(fileBytes, percent);
    s.noteApplied(999);
    s.maybeStart(500, capture);
    t.is(started(), 0);
    s.noteApplied(1);
    s.maybeStart(501, capture);
    t.is(started(), 1, `file ${fileBytes} B, ${percent} %`);
  }
});

test('a compaction keeps the entries after the snapshot a follower is being sent', async (t) => {
  const snap: Snapshot = { meta: { index: 1000, term: 1, conf }, data: new Uint8Array() };
  for (const [floor, retain] of [
    [400, 600],
    [995, 10],
    [undefined, 10],
  ] as const) {
    const { s, retained } = scheduler(0, 0, () => floor);
    await s.compact(snap);
    t.deepEqual(retained, [retain], `follower floor ${floor}`);
  }
});
