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

export class LogState {
  /** Index and term of the entry just before the first one held (a snapshot or compaction point). */
  baseIndex = 0;
  baseTerm = 0;
  // invariant: ents[i].index === baseIndex + 1 + i
  ents: Entry[] = [];
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
    return this.baseIndex + this.ents.length;
  }

  term(index: number): number {
    if (index < this.baseIndex) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return index === this.baseIndex ? this.baseTerm : this.ents[index - this.baseIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.ents[i - this.baseIndex - 1]!;
      bytes += entrySize(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Append entries (already validated), replacing the suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const position = entries[0]!.index - this.baseIndex - 1;
    invariant(
      position >= 0 && position <= this.ents.length,
      () => `append at ${entries[0]!.index} does not fit the log [${this.firstIndex()}, ${this.lastIndex()}]`,
    );
    this.ents.length = position;
    for (const e of entries) this.ents.push(e);
  }

  /** Replace the whole log by a snapshot (received from the leader). */
  resetTo(snapshot: Snapshot): void {
    this.snap = snapshot;
    this.baseIndex = snapshot.meta.index;
    this.baseTerm = snapshot.meta.term;
    this.ents = [];
  }

  /** Drop entries up to and including `cut` (cut must be within [baseIndex, lastIndex]). */
  compactTo(cut: number): void {
    if (cut <= this.baseIndex) return;
    invariant(cut <= this.lastIndex(), () => `compaction point ${cut} beyond last index ${this.lastIndex()}`);
    this.baseTerm = this.term(cut);
    this.ents = this.ents.slice(cut - this.baseIndex);
    this.baseIndex = cut;
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
