// The snapshot interval grows with the state: a due snapshot waits until the commands applied since
// the last one reach snapshotLogPercent of the last snapshot file (a snapshot rewrites all of it).
import test from 'ava';
import type { Snapshot } from '../../src/raft/types.js';
import { noopNodeMetrics } from '../../src/runtime/metrics.js';
import { SnapshotScheduler } from '../../src/runtime/snapshots.js';
import type { RaftStorage } from '../../src/storage/raft-storage.js';
import { encodeSnapshotRef } from '../../src/storage/snapshot-store.js';
import type { StateMachine } from '../../src/storage/state-machine.js';

const conf = { voters: ['n1'], learners: [] };

function scheduler(fileBytes: number, percent: number): { s: SnapshotScheduler; started: () => number } {
  const stored: Snapshot = {
    meta: { index: 10, term: 1, conf },
    data: fileBytes > 0 ? encodeSnapshotRef({ name: 'snap-0000000000000010-1-1.qsnap', bytes: fileBytes, crc32: 0, index: 10, term: 1 }) : new Uint8Array(),
  };
  let started = 0;
  const storage = { snapshot: () => stored } as unknown as RaftStorage;
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
    retainEntries: 0,
    storage,
    stateMachine,
    metrics: noopNodeMetrics(),
    logger: undefined,
    termAt: () => 1,
    lastConfIndex: () => 0,
    schedule: () => {},
  });
  return { s, started: () => started };
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
