import type { Entry, Snapshot } from '../raft/types.js';
import type { CommandResult, KeyValue, KvEvent, LeaseInfo } from '../api/command.js';
import type { AppliedPosition } from './keyspace.js';

export type ApplyListener = (events: KvEvent[]) => void;

/** A point-in-time view of the whole state, read a bounded chunk at a time. */
export interface StateStream {
  /** The applied position the view is at. */
  applied: AppliedPosition;
  /** Raw keyspace pairs (data, leases and sessions) in key order; consume to the end (that releases the view). */
  chunks: AsyncIterable<[Uint8Array, Uint8Array][]>;
}

/**
 * A state being built from a snapshot file as it arrives. The caller feeds it only pairs it has
 * checked (each record's CRC), and calls finish only once the whole file checked out (its size,
 * CRC-32 and end record), naming the file: only then can installStaged swap it in. Anything else
 * (a damaged or cut transfer) must end in abort, which deletes it.
 */
export interface StagedRestore {
  /** Resolves when the pairs are buffered (back-pressure: it waits while a full batch is written). */
  write(pairs: readonly [Uint8Array, Uint8Array][]): Promise<void>;
  finish(applied: { index: number; term: number }, source: string): Promise<void>;
  abort(): Promise<void>;
}

export interface ScanOptions {
  /** Inclusive start key. */
  start: Uint8Array;
  /** Exclusive end key; empty = to the end of the keyspace. */
  end: Uint8Array;
  limit: number;
}

export interface ScanResult {
  items: KeyValue[];
  /** Set when more keys exist: pass as the next `start`. */
  continueFrom?: Uint8Array;
}

/**
 * The replicated key-value state. `apply` writes a batch of committed entries — the data, the
 * applied index and the client-session table — atomically (one LevelDB batch), so a crash leaves
 * either all or none of the batch applied. No-op and conf entries only advance the applied index.
 */
export interface StateMachine {
  appliedIndex(): number;
  /** Results in entry order; `null` for entries that are not commands (no-op, conf change). */
  apply(entries: Entry[]): Promise<(CommandResult | null)[]>;
  get(key: Uint8Array): Promise<KeyValue | undefined>;
  scan(options: ScanOptions): Promise<ScanResult>;
  /** Serialize a consistent view at the current applied index without blocking further applies. */
  snapshot(): Promise<{ index: number; data: Uint8Array }>;
  /** Atomically replace the whole state with the snapshot's contents; appliedIndex becomes meta.index. */
  restore(snapshot: Snapshot): Promise<void>;
  /**
   * Streaming snapshots (machines whose state may not fit in memory): a consistent view that
   * writes may go on beside, and a restore that consumes validated chunks and commits only after
   * the last one (a failure part way leaves the old state). Machines without them use the buffers.
   */
  snapshotStream?(): Promise<StateStream>;
  restoreStream?(meta: { index: number; term: number }, chunks: AsyncIterable<[Uint8Array, Uint8Array][]>): Promise<void>;
  /**
   * Building the state of a snapshot file while it still arrives (optional, with restoreStream):
   * the install is then only a swap. Beside the live state, which goes on applying; at most one at
   * a time (a new one deletes the previous one).
   */
  stageRestore?(): Promise<StagedRestore>;
  /**
   * Swaps in the finished staged state if it was built from `source` at `meta`, as restoreStream
   * would have; false (and nothing changed) when there is no such staged state.
   */
  installStaged?(meta: { index: number; term: number }, source: string): Promise<boolean>;
  /**
   * The first damage found in the stored data (a StateMachineCorruptionError), if any. Once set,
   * get, scan and snapshot fail with it: a machine never returns data that fails its checksum.
   * Machines that cannot be damaged (in memory) omit it.
   */
  corruption?(): Error | undefined;
  /**
   * Called after each applied batch is durable with the changes to user keys it made, in log order
   * (synchronously, before apply resolves). Not called for a restore: a restore is a gap in history.
   */
  onApply(listener: ApplyListener | undefined): void;
  /** Live leases, ascending id (from memory). */
  leases(): LeaseInfo[];
  lease(id: number): LeaseInfo | undefined;
  close(): Promise<void>;
}
