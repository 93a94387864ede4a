import { CompactedError, EntriesLoadingError, entrySize, type LogStorage } from './log-storage.js';
import { invariant } from './errors.js';
import type { Entry, Snapshot } from './types.js';

/**
 * The core's view of the log: what storage has made durable plus the unstable tail (entries and
 * possibly a snapshot) that the runtime has not yet persisted.
 */
export class RaftLog {
  // Unstable part: entries at [unstableOffset, unstableOffset + unstable.length), not yet persisted.
  private unstable: Entry[] = [];
  private unstableOffset: number;
  private unstableSnapshot: Snapshot | undefined;
  // invariant: applied <= applying <= committed <= lastIndex()
  committed: number;
  applied: number;
  /** Highest index handed out for apply in a Ready not yet advanced. */
  applying: number;
  /** The next committed entries are being read from disk: no apply until entriesLoaded(). */
  private applyWaitsForStorage = false;

  constructor(
    readonly storage: LogStorage,
    committed: number,
    applied: number,
  ) {
    const first = storage.firstIndex();
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = Math.max(committed, first - 1);
    this.applied = Math.max(applied, first - 1);
    invariant(this.applied <= this.committed, () => `applied ${this.applied} > committed ${this.committed} at start`);
    invariant(
      this.committed <= this.lastIndex(),
      () => `committed ${this.committed} > last index ${this.lastIndex()} at start: the log lost committed entries`,
    );
    this.applying = this.applied;
  }

  firstIndex(): number {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Term at index, or undefined when it is compacted or beyond the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    if (this.unstableSnapshot && index === this.unstableSnapshot.meta.index) return this.unstableSnapshot.meta.term;
    if (index >= this.unstableOffset) {
      const entry = this.unstable[index - this.unstableOffset];
      return entry?.term;
    }
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    if (this.unstableSnapshot) return undefined; // storage content below an unstable snapshot is stale
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof CompactedError) return undefined;
      throw error;
    }
  }

  /** Highest index known durable in storage (0 while a received snapshot is still unpersisted). */
  persistedIndex(): number {
    if (this.unstableSnapshot) return 0;
    return Math.min(this.unstableOffset - 1, this.lastIndex());
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    invariant(term !== undefined, 'term of the last index is unknown');
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries [lo, hi) across storage and the unstable tail, capped at maxBytes (at least one).
   * Returns undefined when lo is compacted (the caller must send a snapshot instead). Throws
   * EntriesLoadingError when storage is still reading entry lo from disk.
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] | undefined {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return undefined;
    invariant(hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    if (lo < this.unstableOffset) {
      const storageHi = Math.min(hi, this.unstableOffset);
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, storageHi, maxBytes);
      } catch (error) {
        if (error instanceof CompactedError) return undefined;
        throw error;
      }
      for (const entry of stored) {
        bytes += entrySize(entry);
        out.push(entry);
      }
      if (stored.length < storageHi - lo) return out; // size cap reached inside storage
    }
    for (let index = Math.max(lo, this.unstableOffset); index < hi; index++) {
      const entry = this.unstable[index - this.unstableOffset]!;
      bytes += entrySize(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  entriesFrom(lo: number, maxBytes: number): Entry[] | undefined {
    if (lo > this.lastIndex()) return [];
    return this.slice(lo, this.lastIndex() + 1, maxBytes);
  }

  /** First index among `entries` whose term differs from ours (0 if none: all match or are new-but-contiguous). */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: lets a rejected
   * leader skip a whole term of mismatching entries per round trip (fast backtracking).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let probe = index; probe >= 0; probe--) {
      const probeTerm = this.term(probe);
      if (probeTerm === undefined) return { index: probe, term: 0 };
      if (probeTerm <= term) return { index: probe, term: probeTerm };
    }
    return { index: 0, term: 0 };
  }

  /**
   * Follower side of AppendEntries. Returns the last index known to match the leader, or
   * undefined when (prevIndex, prevTerm) does not match our log.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      invariant(conflict > this.committed, () => `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  /** Append to the unstable tail, truncating whatever conflicts. Returns the new last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const first = entries[0]!.index;
    invariant(first - 1 >= this.committed, () => `append at ${first} would overwrite committed entries (committed ${this.committed})`);
    if (first === this.unstableOffset + this.unstable.length) {
      this.unstable.push(...entries);
    } else if (first <= this.unstableOffset) {
      // Replaces the whole unstable tail (and, once persisted, storage's suffix from `first`).
      this.unstableOffset = first;
      this.unstable = [...entries];
    } else {
      this.unstable = this.unstable.slice(0, first - this.unstableOffset).concat(entries);
    }
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), () => `commit index ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Leader: commit `index` only if it is from the current term (Raft §5.4.2, figure 8). */
  maybeCommit(index: number, currentTerm: number): boolean {
    if (index > this.committed && this.term(index) === currentTerm) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    invariant(index <= this.committed && index >= this.applied, () => `applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  hasNextCommittedEntries(): boolean {
    return !this.applyWaitsForStorage && this.committed > this.applying && this.applying + 1 >= this.firstIndex();
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    let entries: Entry[] | undefined;
    try {
      entries = this.slice(this.applying + 1, this.committed + 1, maxBytes);
    } catch (error) {
      if (!(error instanceof EntriesLoadingError)) throw error;
      // Not a Ready's worth of work until storage has them: hasReady() stays false meanwhile.
      this.applyWaitsForStorage = true;
      return [];
    }
    invariant(entries !== undefined, () => `committed entries from ${this.applying + 1} are compacted`);
    return entries;
  }

  /** Storage finished reading entries from disk: what waited for them may go ahead. */
  entriesLoaded(): void {
    this.applyWaitsForStorage = false;
  }

  /** The conf entries among [lo, hi) (storage keeps them in memory even when entries are on disk). */
  confEntries(lo: number, hi: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return [];
    const out: Entry[] = [];
    const storageHi = Math.min(hi, this.unstableOffset);
    if (lo < storageHi) {
      if (this.storage.confEntries) out.push(...this.storage.confEntries(lo, storageHi));
      else for (const e of this.storage.entries(lo, storageHi)) if (e.type === 'conf') out.push(e);
    }
    for (let index = Math.max(lo, this.unstableOffset); index < hi && index - this.unstableOffset < this.unstable.length; index++) {
      const entry = this.unstable[index - this.unstableOffset]!;
      if (entry.type === 'conf') out.push(entry);
    }
    return out;
  }

  hasUnstableEntries(): boolean {
    return this.unstable.length > 0;
  }

  unstableEntries(): Entry[] {
    return [...this.unstable];
  }

  pendingSnapshot(): Snapshot | undefined {
    return this.unstableSnapshot;
  }

  /** Storage durably holds entries up to (index, term): drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    const position = index - this.unstableOffset;
    if (position < 0 || position >= this.unstable.length) return;
    if (this.unstable[position]!.term !== term) return; // replaced meanwhile; keep the newer entries
    this.unstable = this.unstable.slice(position + 1);
    this.unstableOffset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === index) this.unstableSnapshot = undefined;
  }

  /** Replace the log with a snapshot from the leader; persisted by the runtime from the next Ready. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.unstableSnapshot = snapshot;
    this.unstableOffset = snapshot.meta.index + 1;
    this.unstable = [];
  }

  /** The snapshot to send to a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
