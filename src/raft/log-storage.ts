import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * The core's read-only view of durable Raft state (etcd's `Storage`). Synchronous on purpose, so
 * the core stays pure and deterministic: terms, indexes and membership entries are always in
 * memory. Entries may not be: a storage that keeps only a bounded tail of the log in memory throws
 * `EntriesLoadingError` from `entries()` for older ones, starts reading them, and tells the runtime
 * when they arrived (the runtime then calls `RawNode.entriesLoaded()`); the core leaves that send or
 * apply for later instead of treating it as an error. The runtime writes through its own interface
 * and only after a write has been persisted does it become visible here.
 *
 * Index conventions: the log holds entries [firstIndex(), lastIndex()]. Everything below
 * firstIndex() is covered by snapshot(); term(firstIndex() - 1) is the snapshot's term.
 */
export interface LogStorage {
  /** Hard state and membership at start. A fresh bootstrap node returns its configured voters. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries [lo, hi), stopping early (but returning at least one entry) once maxBytes is passed,
   * or where the entries held in memory end. Throws EntriesLoadingError when entry lo is on disk
   * only (it is then being read).
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /**
   * The membership ('conf') entries among [lo, hi), never EntriesLoadingError: storages that keep
   * entries on disk keep these few in memory. Absent: the core filters entries(lo, hi).
   */
  confEntries?(lo: number, hi: number): Entry[];
  /** Term of the entry at index, valid for [firstIndex() - 1, lastIndex()]. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot (meta.index 0 with empty data when none was ever taken). */
  snapshot(): Snapshot;
}

/** Asked for an index that was compacted into a snapshot. */
export class CompactedError extends Error {
  override name = 'CompactedError';
  constructor(
    readonly index: number,
    readonly firstIndex: number,
  ) {
    super(`log index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** Asked for an index beyond the last entry. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    readonly index: number,
    readonly lastIndex: number,
  ) {
    super(`log index ${index} is not available (last index is ${lastIndex})`);
  }
}

/**
 * Entry `index` is durable but not in memory; the storage is reading it and reports when it is in
 * (not a failure: the caller tries again then).
 */
export class EntriesLoadingError extends Error {
  override name = 'EntriesLoadingError';
  constructor(readonly index: number) {
    super(`log entry ${index} is being read from disk; try again once it is loaded`);
  }
}

export function entrySize(entry: Entry): number {
  return entry.data.length + 24;
}
