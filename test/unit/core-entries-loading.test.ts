// The core over a storage that keeps older entries on disk: EntriesLoadingError means "later", never
// "compacted" (no snapshot is sent for it) and never a Ready of nothing to apply; entriesLoaded()
// sends the waiting follower its batch and lets the apply go on.
import test from 'ava';
import { EntriesLoadingError, MemoryStorage, RawNode, type Entry, type Snapshot } from '../../src/raft/index.js';
import { message, persist } from './core-harness.js';

/** MemoryStorage whose entries below `coldBelow` are "on disk" until `load()`. */
class ColdStorage extends MemoryStorage {
  coldBelow = 0;
  asked = 0;
  override entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo < this.coldBelow) {
      this.asked++;
      throw new EntriesLoadingError(lo);
    }
    return super.entries(lo, hi, maxBytes);
  }
  load(): void {
    this.coldBelow = 0;
  }
  offerSnapshot = false;
  /** Once offerSnapshot: a snapshot to send, were "on disk" mistaken for "compacted". */
  override snapshot(): Snapshot {
    if (!this.offerSnapshot) return super.snapshot();
    return { meta: { index: 1, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] } }, data: new Uint8Array([1]) };
  }
}

const data = (s: string) => new TextEncoder().encode(s);

test('a follower whose next entries are on disk gets nothing (no snapshot) until they are loaded, then its batch', (t) => {
  const storage = new ColdStorage({ voters: ['a', 'b', 'c'], learners: [] });
  const node = new RawNode({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storage);
  node.campaign();
  persist(node, storage);
  node.step(message({ type: 'voteResp', from: 'b', to: 'a', term: 1 }));
  persist(node, storage);
  for (let i = 0; i < 5; i++) node.propose(data(`v${i}`));
  persist(node, storage);
  node.step(message({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 6 }));
  persist(node, storage);

  storage.coldBelow = 4; // entries 1..3 are on disk only
  storage.offerSnapshot = true;
  // c rejects the probe it was sent: its log is empty, so the leader probes it from index 1.
  const probed = node.status().progress!.c!.next - 1;
  node.step(message({ type: 'appResp', from: 'c', to: 'a', term: 1, index: probed, reject: true, rejectHint: 0 }));
  const waiting = node.hasReady() ? persist(node, storage) : undefined;
  const toC = (waiting?.messages ?? []).filter((m) => m.to === 'c');
  t.true(storage.asked > 0, 'the leader asked storage for them');
  t.deepEqual(toC, [], 'nothing is sent to c meanwhile, and certainly no snapshot');
  t.not(node.status().progress?.c?.state, 'snapshot');

  storage.load();
  node.entriesLoaded();
  const rd = persist(node, storage);
  const app = rd.messages.find((m) => m.to === 'c' && m.type === 'app');
  t.truthy(app, 'the batch goes out once loaded');
  t.is(app!.index, 0);
  t.deepEqual(
    app!.entries.map((e) => e.index),
    [1, 2, 3, 4, 5, 6],
  );
});

test('committed entries on disk are applied once loaded, without empty Readys meanwhile', (t) => {
  const storage = new ColdStorage({ voters: ['a', 'b', 'c'], learners: [] });
  storage.append([1, 2, 3, 4, 5].map((index) => ({ index, term: 1, type: 'normal' as const, data: data(`v${index}`) })));
  storage.setHardState({ term: 1, vote: 'b', commit: 5 });
  storage.coldBelow = 6;
  const node = new RawNode({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storage);
  // The first Ready carries the soft state; after it nothing is ready while the entries load.
  for (let i = 0; i < 3 && node.hasReady(); i++) t.deepEqual(persist(node, storage).committedEntries, []);
  t.false(node.hasReady(), 'no Ready of nothing while storage reads');

  storage.load();
  node.entriesLoaded();
  t.true(node.hasReady());
  t.deepEqual(
    persist(node, storage).committedEntries.map((e) => e.index),
    [1, 2, 3, 4, 5],
  );
});
