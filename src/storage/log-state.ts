// The in-memory Raft log shared by FileRaftStorage and MemoryRaftStorage: the LogStorage read side,
// and the validation that keeps a bad StorageUpdate from ever being written.
import { CompactedError, UnavailableError, entrySize } from '../raft/log-storage.js';
import { invariant } from '../raft/errors.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import { InvalidStorageUpdateError } from './errors.js';
import type { StorageUpdate } from './raft-storage.js';

const EMPTY = new Uint8Array(0);

export function cloneConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

export function emptySnapshot(conf: ConfState): Snapshot {
  return { meta: { index: 0, term: 0, conf: cloneConf(conf) }, data: EMPTY };
}

/**
 * Where entries that are no longer held in memory come from (FileRaftStorage reads them back from
 * its segment file). `read` answers from what it loaded before, or starts loading and throws
 * EntriesLoadingError.
 */
export interface ColdEntries {
  read(lo: number, hi: number, maxBytes: number): Entry[];
}

/**
 * The Raft log as both Raft storages keep it. Terms (and, for the file log, each entry's record
 * offset) are kept for every entry; the entries themselves only for a tail of at most `hotBudget`
 * bytes, plus every conf entry (membership must be readable synchronously). Older entries are
 * served by `cold`.
 */
export class LogState {
  /** Index and term of the entry just before the first one held (a snapshot or compaction point). */
  baseIndex = 0;
  baseTerm = 0;
  // invariant: terms[i] is the term of entry baseIndex + 1 + i
  private terms: number[] = [];
  /** Record offset of each entry in the live segment (parallel to terms), when the log keeps them. */
  positions: number[] | undefined;
  // invariant: hot[hotHead + i].index === hotStart + i, and the hot entries end at lastIndex()
  private hot: Entry[] = [];
  private hotHead = 0;
  private hotStart = 1;
  private hotBytes = 0;
  /** Conf entries below hotStart, in index order. */
  private pinned = new Map<number, Entry>();
  /** Bytes of entries kept in memory (the newest ones); older entries are read through `cold`. */
  hotBudget = Infinity;
  cold: ColdEntries | undefined;
  /** Bumped whenever an entry is replaced or the log is reset, so that anything read before is dropped. */
  generation = 0;
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snap: Snapshot;

  constructor(bootstrap: ConfState) {
    this.snap = emptySnapshot(bootstrap);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    // A snapshot only ever holds committed state, so the commit index is at least its index even if
    // the hard state written with it was lost.
    const commit = Math.max(this.hardState.commit, this.snap.meta.index);
    return { hardState: { ...this.hardState, commit }, confState: cloneConf(this.snap.meta.conf) };
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.terms.length;
  }

  /** First index whose entry is held in memory (lastIndex() + 1 when none is). */
  firstHotIndex(): number {
    return this.hotStart;
  }

  /** Bytes of entries held in memory. */
  memoryBytes(): number {
    return this.hotBytes;
  }

  term(index: number): number {
    if (index < this.baseIndex) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return index === this.baseIndex ? this.baseTerm : this.terms[index - this.baseIndex - 1]!;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    if (lo < this.hotStart) {
      invariant(this.cold !== undefined, () => `entry ${lo} is not in memory and the log has no reader for older entries`);
      // What the reader returns may stop short of hotStart: callers accept fewer entries.
      return this.cold.read(lo, Math.min(hi, this.hotStart), maxBytes);
    }
    return this.hotEntries(lo, hi, maxBytes);
  }

  /** Entries [lo, hi) from memory; lo must be at or above firstHotIndex(). */
  hotEntries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    invariant(lo >= this.hotStart && hi <= this.lastIndex() + 1, () => `[${lo}, ${hi}) is not in memory (from ${this.hotStart})`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.hot[this.hotHead + i - this.hotStart]!;
      bytes += entrySize(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  /** The conf entries among [lo, hi) (always in memory). */
  confEntries(lo: number, hi: number): Entry[] {
    const out: Entry[] = [];
    for (const [index, e] of this.pinned) if (index >= lo && index < hi) out.push(e);
    for (let i = Math.max(lo, this.hotStart); i < Math.min(hi, this.lastIndex() + 1); i++) {
      const e = this.hot[this.hotHead + i - this.hotStart]!;
      if (e.type === 'conf') out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Append entries (already validated), replacing the suffix from entries[0].index on. `position`:
   * the record offset they were written at (one for all, or one per entry), kept when the log keeps
   * positions.
   */
  append(entries: readonly Entry[], position?: number | readonly number[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const at = first - this.baseIndex - 1;
    invariant(at >= 0 && at <= this.terms.length, () => `append at ${first} does not fit the log [${this.firstIndex()}, ${this.lastIndex()}]`);
    if (at < this.terms.length) this.truncateFrom(first);
    for (const e of entries) this.terms.push(e.term);
    if (this.positions) {
      invariant(position !== undefined, 'the log keeps record positions: append needs one');
      if (typeof position === 'number') for (let i = 0; i < entries.length; i++) this.positions.push(position);
      else for (const p of position) this.positions.push(p);
      invariant(this.positions.length === this.terms.length, 'one record position per entry');
    }
    invariant(this.hotStart + this.hot.length - this.hotHead === first, () => `the in-memory tail does not end before ${first}`);
    for (const e of entries) {
      this.hot.push(e);
      this.hotBytes += entrySize(e);
    }
    this.evict();
  }

  /** Drop entries from `index` on (all of them are in the log). */
  private truncateFrom(index: number): void {
    this.generation++;
    const keep = index - this.baseIndex - 1;
    this.terms.length = keep;
    if (this.positions) this.positions.length = keep;
    for (const i of [...this.pinned.keys()]) if (i >= index) this.pinned.delete(i);
    if (index <= this.hotStart) {
      this.dropHot(index);
      return;
    }
    const hotKeep = this.hotHead + index - this.hotStart;
    for (let i = hotKeep; i < this.hot.length; i++) this.hotBytes -= entrySize(this.hot[i]!);
    this.hot.length = hotKeep;
  }

  private dropHot(nextIndex: number): void {
    this.hot = [];
    this.hotHead = 0;
    this.hotBytes = 0;
    this.hotStart = nextIndex;
  }

  /** Keep the in-memory tail within its budget: older entries are read back from disk when asked for. */
  private evict(): void {
    while (this.hotBytes > this.hotBudget && this.hotHead < this.hot.length) {
      const e = this.hot[this.hotHead]!;
      this.hot[this.hotHead] = undefined as unknown as Entry;
      this.hotHead++;
      this.hotStart++;
      this.hotBytes -= entrySize(e);
      if (e.type === 'conf') this.pinned.set(e.index, e);
    }
    if (this.hotHead > 1024 && this.hotHead * 2 > this.hot.length) {
      this.hot = this.hot.slice(this.hotHead);
      this.hotHead = 0;
    }
  }

  /** An empty log that starts after (index, term). */
  startAfter(index: number, term: number): void {
    invariant(this.terms.length === 0, 'startAfter() on a log that holds entries');
    this.baseIndex = index;
    this.baseTerm = term;
    this.dropHot(index + 1);
  }

  /** Replace the whole log by a snapshot (received from the leader). */
  resetTo(snapshot: Snapshot): void {
    this.generation++;
    this.snap = snapshot;
    this.baseIndex = snapshot.meta.index;
    this.baseTerm = snapshot.meta.term;
    this.terms = [];
    if (this.positions) this.positions = [];
    this.pinned.clear();
    this.dropHot(this.baseIndex + 1);
  }

  /** Drop entries up to and including `cut` (cut must be within [baseIndex, lastIndex]). */
  compactTo(cut: number): void {
    if (cut <= this.baseIndex) return;
    invariant(cut <= this.lastIndex(), () => `compaction point ${cut} beyond last index ${this.lastIndex()}`);
    this.baseTerm = this.term(cut);
    const drop = cut - this.baseIndex;
    this.terms = this.terms.slice(drop);
    if (this.positions) this.positions = this.positions.slice(drop);
    this.baseIndex = cut;
    for (const i of [...this.pinned.keys()]) if (i <= cut) this.pinned.delete(i);
    if (cut >= this.hotStart) {
      const keepFrom = this.hotHead + cut + 1 - this.hotStart;
      for (let i = this.hotHead; i < keepFrom; i++) this.hotBytes -= entrySize(this.hot[i]!);
      this.hot = this.hot.slice(keepFrom);
      this.hotHead = 0;
      this.hotStart = cut + 1;
    }
  }

  /** The log was rewritten into another segment: every entry from `from` on is now at these offsets. */
  replacePositions(positions: number[]): void {
    invariant(this.positions !== undefined && positions.length === this.terms.length, 'one new position per entry');
    this.generation++;
    this.positions = positions;
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function validateSnapshot(snapshot: Snapshot): void {
  const meta = snapshot?.meta;
  if (!meta || !isCount(meta.index) || !isCount(meta.term)) throw new InvalidStorageUpdateError('snapshot meta.index/term must be non-negative integers');
  if (meta.index > 0 && meta.term === 0) throw new InvalidStorageUpdateError(`snapshot at index ${meta.index} has term 0`);
  const conf = meta.conf;
  if (
    !conf ||
    !Array.isArray(conf.voters) ||
    !Array.isArray(conf.learners) ||
    ![...conf.voters, ...conf.learners].every((id) => typeof id === 'string' && id !== '')
  ) {
    throw new InvalidStorageUpdateError('snapshot meta.conf must list voter and learner ids as non-empty strings');
  }
  if (!(snapshot.data instanceof Uint8Array)) throw new InvalidStorageUpdateError('snapshot data must be bytes');
}

/**
 * The log as it will be once the updates accepted so far are durable. Validating a group of saves
 * against it lets each one be checked in order before any byte is written.
 */
export class LogProjection {
  baseIndex: number;
  baseTerm: number;
  lastIndex: number;
  snapshotIndex: number;
  commit: number;
  hardTerm: number;
  // Entries accepted but not yet in `state`, contiguous from pending[0].index to lastIndex.
  private pending: Entry[] = [];

  constructor(private readonly state: LogState) {
    this.baseIndex = state.baseIndex;
    this.baseTerm = state.baseTerm;
    this.lastIndex = state.lastIndex();
    this.snapshotIndex = state.snap.meta.index;
    this.commit = Math.max(state.hardState.commit, this.snapshotIndex);
    this.hardTerm = state.hardState.term;
  }

  termAt(index: number): number {
    if (index === this.baseIndex) return this.baseTerm;
    const p0 = this.pending[0]?.index;
    if (p0 !== undefined && index >= p0) return this.pending[index - p0]!.term;
    return this.state.term(index);
  }

  /**
   * Check `update` against the projected log; on success project it and return what to store: the
   * snapshot if it is newer than the current one, and the entries minus any already-compacted
   * prefix. Throws InvalidStorageUpdateError (and projects nothing) otherwise.
   */
  accept(update: StorageUpdate): { snapshot?: Snapshot; entries: Entry[] } {
    if (!update || !Array.isArray(update.entries)) throw new InvalidStorageUpdateError('update.entries must be an array');
    let snapshot: Snapshot | undefined;
    let base = this.baseIndex;
    let baseTerm = this.baseTerm;
    let last = this.lastIndex;
    let commit = this.commit;
    if (update.snapshot) {
      validateSnapshot(update.snapshot);
      // An older snapshot than the one we hold is stale news: ignore it, as etcd's MemoryStorage does.
      if (update.snapshot.meta.index > this.snapshotIndex) {
        snapshot = update.snapshot;
        base = snapshot.meta.index;
        baseTerm = snapshot.meta.term;
        last = base;
        commit = Math.max(commit, base);
      }
    }
    const termAt = (i: number): number => (snapshot ? (i === base ? baseTerm : NaN) : this.termAt(i));

    let entries = update.entries;
    entries.forEach((e, i) => {
      if (!e || !isCount(e.index) || e.index === 0 || !isCount(e.term) || e.term === 0) {
        throw new InvalidStorageUpdateError(`entries[${i}] needs a positive integer index and term`);
      }
      if (e.type !== 'normal' && e.type !== 'conf') throw new InvalidStorageUpdateError(`entries[${i}].type must be normal or conf`);
      if (!(e.data instanceof Uint8Array)) throw new InvalidStorageUpdateError(`entries[${i}].data must be bytes`);
      if (i > 0) {
        const prev = entries[i - 1]!;
        if (e.index !== prev.index + 1) throw new InvalidStorageUpdateError(`entries are not contiguous: ${prev.index} then ${e.index}`);
        if (e.term < prev.term) throw new InvalidStorageUpdateError(`entry terms decrease: ${prev.term} at ${prev.index}, ${e.term} at ${e.index}`);
      }
    });
    if (entries.length > 0 && entries[0]!.index <= base) entries = entries.filter((e) => e.index > base); // already compacted
    if (entries.length > 0) {
      const first = entries[0]!.index;
      if (first > last + 1) throw new InvalidStorageUpdateError(`entries start at ${first} but the log ends at ${last}: that leaves a gap`);
      if (entries[0]!.term < termAt(first - 1)) {
        throw new InvalidStorageUpdateError(`entry ${first} has term ${entries[0]!.term}, below the term ${termAt(first - 1)} of the entry before it`);
      }
      // Replacing a committed entry by a different one would lose an acknowledged write.
      const overlapEnd = Math.min(last, commit, entries[entries.length - 1]!.index);
      for (let i = first; i <= overlapEnd; i++) {
        const existing = termAt(i);
        if (existing !== entries[i - first]!.term) {
          throw new InvalidStorageUpdateError(`entry ${i} is committed with term ${existing}; refusing to overwrite it with term ${entries[i - first]!.term}`);
        }
      }
      last = entries[entries.length - 1]!.index;
    }
    const hs = update.hardState;
    let hardTerm = this.hardTerm;
    if (hs) {
      if (!isCount(hs.term) || !isCount(hs.commit) || typeof hs.vote !== 'string') {
        throw new InvalidStorageUpdateError('hardState needs integer term and commit and a string vote');
      }
      if (hs.recovery !== undefined && hs.recovery !== 'pristine' && hs.recovery !== 'rebuilding') {
        throw new InvalidStorageUpdateError(`hardState recovery must be 'pristine', 'rebuilding' or absent, got ${String(hs.recovery)}`);
      }
      if (hs.term < this.hardTerm) throw new InvalidStorageUpdateError(`hardState term ${hs.term} is below the stored term ${this.hardTerm}`);
      if (hs.commit > last) throw new InvalidStorageUpdateError(`hardState commit ${hs.commit} is beyond the last log index ${last}`);
      hardTerm = hs.term;
      commit = Math.max(commit, hs.commit);
    }

    // Accepted: project it.
    if (snapshot) {
      this.snapshotIndex = snapshot.meta.index;
      this.pending = [];
    }
    this.baseIndex = base;
    this.baseTerm = baseTerm;
    if (entries.length > 0) {
      const first = entries[0]!.index;
      const p0 = this.pending[0]?.index;
      if (p0 !== undefined && first >= p0) this.pending = this.pending.slice(0, first - p0).concat(entries);
      else this.pending = [...entries];
    }
    this.lastIndex = last;
    this.commit = commit;
    this.hardTerm = hardTerm;
    return { snapshot, entries };
  }
}

/**
 * Validate a compaction request; returns the new base index (entries up to it are dropped), or
 * undefined when the snapshot is not newer than the one held (nothing to do).
 */
export function planCompaction(state: LogState, snapshot: Snapshot, retain: number): number | undefined {
  validateSnapshot(snapshot);
  if (!Number.isSafeInteger(retain) || retain < 0) throw new InvalidStorageUpdateError(`retainEntries must be a non-negative integer, got ${retain}`);
  const { index, term } = snapshot.meta;
  if (index <= state.snap.meta.index) return undefined;
  if (index > state.lastIndex()) {
    throw new InvalidStorageUpdateError(`snapshot index ${index} is beyond the last log index ${state.lastIndex()}`);
  }
  // index > snapshot index >= baseIndex, so term(index) is available.
  if (state.term(index) !== term) {
    throw new InvalidStorageUpdateError(`snapshot says entry ${index} has term ${term} but the log has term ${state.term(index)}`);
  }
  return Math.max(state.baseIndex, index - retain);
}
