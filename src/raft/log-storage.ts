import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * The core's read-only view of durable Raft state (etcd's `Storage`). Synchronous on purpose:
 * implementations keep the uncompacted log in memory (the durable one rebuilds it on start), so
 * the core stays pure and deterministic. The runtime writes through its own interface and only
 * after a write has been persisted does it become visible here.
 *
 * Index conventions: the log holds entries [firstIndex(), lastIndex()]. Everything below
 * firstIndex() is covered by snapshot(); term(firstIndex() - 1) is the snapshot's term.
 */
export interface LogStorage {
  /** Hard state and membership at start. A fresh bootstrap node returns its configured voters. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), stopping early (but returning at least one entry) once maxBytes is passed. */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
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

export function entrySize(entry: Entry): number {
  return entry.data.length + 24;
}
