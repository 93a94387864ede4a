import type { LogStorage } from '../raft/log-storage.js';
import type { Entry, HardState, Snapshot } from '../raft/types.js';

/** What one Ready asks storage to make durable. */
export interface StorageUpdate {
  hardState?: HardState;
  /** Appended after truncating any existing entries at index >= entries[0].index. */
  entries: Entry[];
  /** Replaces the whole log: everything up to snapshot.meta.index is covered by it. */
  snapshot?: Snapshot;
  /**
   * false: nothing here must survive a crash (only the commit index moved, which the leader tells a
   * node again and which a restart recovers from the applied index), so the save costs no I/O: the
   * file log keeps it in memory and writes it in front of the next synced write. Ready.mustSync
   * decides, as in etcd. Default true.
   * Entries, a snapshot, term, vote and recovery state are always synced whatever this says.
   */
  sync?: boolean;
}

/**
 * The durable Raft log, hard state and latest snapshot. Reads (LogStorage) are synchronous and see
 * only what `save` has made durable; writes are group-committed: every `save` call that arrives
 * while an fsync is running is covered by the next single fsync.
 */
export interface RaftStorage extends LogStorage {
  save(update: StorageUpdate): Promise<void>;
  /**
   * Store `snapshot` (taken by the state machine at snapshot.meta.index <= applied) and discard
   * log entries up to it, keeping `retainEntries` entries before it for slow followers.
   */
  compact(snapshot: Snapshot, retainEntries: number): Promise<void>;
  /**
   * A storage that keeps older entries on disk calls `listener` when entries it threw
   * EntriesLoadingError for were read back (the runtime then calls RawNode.entriesLoaded()).
   */
  onEntriesLoaded?(listener: () => void): void;
  close(): Promise<void>;
}
