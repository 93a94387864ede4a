// When to take a snapshot, and compacting the log behind it. A snapshot is due every
// `snapshotEntries` applied entries or `snapshotBytes` applied command bytes, and once the bytes
// applied since the last one reach `snapshotLogPercent` of its file (a snapshot rewrites the whole
// state, so a large store snapshots less often; the log between is on disk). It is captured right
// after a Ready was advanced (the core's ConfState then matches the applied index), built by the
// state machine in the background, and handed to the Ready loop, which starts the compaction
// without waiting for it (heartbeats must keep flowing).
import type { Logger } from 'pino';
import type { ConfState, Snapshot } from '../raft/types.js';
import type { RaftStorage } from '../storage/raft-storage.js';
import type { StateMachine } from '../storage/state-machine.js';
import type { MemberAddress } from './membership.js';
import type { NodeMetrics } from './metrics.js';
import { encodeMembers, wrapSnapshotData } from './snapshot-envelope.js';
import { writeSnapshotFile } from '../storage/snapshot-file.js';
import { type SnapshotStore, decodeSnapshotRef, encodeSnapshotRef } from '../storage/snapshot-store.js';
import { ProgressLog } from '../transport/progress-log.js';

export interface SnapshotSchedulerOptions {
  snapshotEntries: number;
  snapshotBytes: number;
  snapshotLogPercent: number;
  retainEntries: number;
  storage: RaftStorage;
  stateMachine: StateMachine;
  metrics: NodeMetrics;
  logger: Logger | undefined;
  /** Term of the entry at index, if still known. */
  termAt(index: number): number | undefined;
  /** Index of the last applied conf entry (a snapshot's ConfState must be valid at its index). */
  lastConfIndex(): number;
  /**
   * On a leader: the lowest index of a snapshot it is sending to a follower, so that a compaction
   * never takes the log that follower needs after it (a compaction during a long transfer made a
   * wiped follower install a second, newer snapshot). Undefined: no transfer in progress.
   */
  followerFloor?(): number | undefined;
  /** Wake the Ready loop: a compaction is ready to start. */
  schedule(): void;
  /**
   * Where streamed snapshots are kept. With it (and a state machine that streams), a snapshot is
   * written from the machine's point-in-time view straight into a file and Snapshot.data is a
   * reference to it; without it, the machine's buffer is used (the in-memory twins).
   */
  snapshotStore?: SnapshotStore;
}

/** What the node's configuration was when the snapshot was captured. */
export interface SnapshotCapture {
  conf: ConfState;
  members: MemberAddress[];
}

export class SnapshotScheduler {
  private snapshotting = false;
  /** Bytes of entry data applied since the last snapshot started (the byte-based trigger). */
  private appliedBytes = 0;
  private pendingCompaction: Snapshot | undefined;
  private lastIndex: number;
  /** Size of the newest snapshot file, by the index it was read at. */
  private lastFile: { index: number; bytes: number } = { index: -1, bytes: 0 };

  constructor(private readonly options: SnapshotSchedulerOptions) {
    this.lastIndex = options.storage.snapshot().meta.index;
  }

  /** Index of the newest snapshot this node holds. */
  get lastSnapshotIndex(): number {
    return this.lastIndex;
  }

  noteApplied(bytes: number): void {
    this.appliedBytes += bytes;
  }

  /** A snapshot from the leader was installed at `index`. */
  installed(index: number): void {
    this.lastIndex = index;
  }

  /** Starts building a snapshot when one is due; `capture` is read now, synchronously. */
  maybeStart(applied: number, capture: () => SnapshotCapture): void {
    const { snapshotEntries, snapshotBytes } = this.options;
    if (this.snapshotting) return;
    // A damaged state machine refuses snapshots (its data must not reach a follower); asking after
    // every Ready would only repeat the refusal. The log then grows until the node is rebuilt.
    if (this.options.stateMachine.corruption?.()) return;
    const entriesDue = snapshotEntries > 0 && applied - this.lastIndex >= snapshotEntries;
    const bytesDue = snapshotBytes > 0 && this.appliedBytes >= snapshotBytes && applied > this.lastIndex;
    if (!entriesDue && !bytesDue) return;
    if (this.appliedBytes * 100 < this.options.snapshotLogPercent * this.lastSnapshotFileBytes()) return;
    this.snapshotting = true;
    this.appliedBytes = 0;
    const { conf, members } = capture();
    const confIndexAtCapture = this.options.lastConfIndex();
    const store = this.options.snapshotStore;
    if (store && this.options.stateMachine.snapshotStream) {
      this.streamSnapshot(store, conf, members, confIndexAtCapture).catch((err: Error) => {
        this.snapshotting = false;
        this.options.logger?.warn({ event: 'snapshot_failed', err: err.message }, 'state machine snapshot failed; will retry');
      });
      return;
    }
    void this.options.stateMachine
      .snapshot()
      .then(({ index, data }) => {
        // The state machine may have captured a later index; the conf is only valid if no conf
        // entry was applied in between. Otherwise skip: the next round will take one.
        const confIndex = this.options.lastConfIndex();
        const term = this.options.termAt(index);
        if (index <= this.lastIndex || confIndex > index || confIndexAtCapture > index || confIndex !== confIndexAtCapture || term === undefined) {
          this.snapshotting = false;
          return;
        }
        this.pendingCompaction = { meta: { index, term, conf }, data: wrapSnapshotData(data, members) };
        this.options.schedule();
      })
      .catch((err: Error) => {
        this.snapshotting = false;
        this.options.logger?.warn({ event: 'snapshot_failed', err: err.message }, 'state machine snapshot failed; will retry');
      });
  }

  /** Streams the machine's view into a snapshot file (bounded memory; the event loop keeps turning). */
  private async streamSnapshot(store: SnapshotStore, conf: ConfState, members: MemberAddress[], confIndexAtCapture: number): Promise<void> {
    const stream = await this.options.stateMachine.snapshotStream!();
    const { index } = stream.applied;
    const term = this.options.termAt(index);
    const confIndex = this.options.lastConfIndex();
    if (index <= this.lastIndex || confIndex > index || confIndexAtCapture > index || confIndex !== confIndexAtCapture || term === undefined) {
      // Same rule as for buffers: the captured conf must be valid at the view's index. Release the view.
      for await (const _ of stream.chunks) break;
      this.snapshotting = false;
      return;
    }
    const progress = new ProgressLog(this.options.logger, 'snapshot_writing', { index });
    const ref = await writeSnapshotFile(store, { index, term, conf, app: encodeMembers(members) }, stream.chunks, (p) => progress.update(p.bytes));
    progress.done(ref.bytes);
    this.pendingCompaction = { meta: { index, term, conf }, data: encodeSnapshotRef(ref) };
    this.options.schedule();
  }

  /** Bytes of the snapshot file storage holds (0 for none, or for an in-memory snapshot). */
  private lastSnapshotFileBytes(): number {
    const snap = this.options.storage.snapshot();
    if (this.lastFile.index !== snap.meta.index) {
      let bytes = 0;
      try {
        bytes = decodeSnapshotRef(snap.data)?.bytes ?? 0;
      } catch {
        bytes = 0; // not a reference: an in-memory snapshot
      }
      this.lastFile = { index: snap.meta.index, bytes };
    }
    return this.lastFile.bytes;
  }

  /** Whether a built snapshot waits to be compacted into storage (takeCompaction). */
  get compactionPending(): boolean {
    return this.pendingCompaction !== undefined;
  }

  /** The built snapshot waiting to be compacted into storage, if any (taken once). */
  takeCompaction(): Snapshot | undefined {
    const snap = this.pendingCompaction;
    this.pendingCompaction = undefined;
    return snap;
  }

  /** Saves the snapshot and compacts the log behind it (keeping `retainEntries`). */
  async compact(snap: Snapshot): Promise<void> {
    try {
      const t0 = performance.now();
      const floor = this.options.followerFloor?.();
      const retain =
        floor !== undefined && floor < snap.meta.index ? Math.max(this.options.retainEntries, snap.meta.index - floor) : this.options.retainEntries;
      await this.options.storage.compact(snap, retain);
      this.lastIndex = snap.meta.index;
      // Older files go (once no transfer reads them); a skipped compaction leaves its own file behind too.
      await this.options.snapshotStore?.retainOnly(decodeSnapshotRef(this.options.storage.snapshot().data));
      this.options.metrics.snapshots.inc();
      this.options.metrics.snapshotSaveSeconds.observe((performance.now() - t0) / 1000);
      // A streamed snapshot's data is a reference to its file: count the file's bytes.
      const bytes = decodeSnapshotRef(snap.data)?.bytes ?? snap.data.length;
      this.options.metrics.snapshotSaveBytes.inc(bytes);
      this.options.logger?.info(
        { event: 'snapshot_taken', index: snap.meta.index, term: snap.meta.term, bytes, ms: Math.round(performance.now() - t0) },
        'snapshot taken, log compacted',
      );
    } finally {
      this.snapshotting = false;
    }
  }
}
