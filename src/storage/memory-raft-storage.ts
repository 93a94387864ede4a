// In-memory twin of FileRaftStorage for runtime tests: the same validation and log semantics
// (shared LogState), every save "durable" at once.
import type { ConfState, Snapshot } from '../raft/types.js';
import { StorageClosedError } from './errors.js';
import { LogProjection, LogState, planCompaction } from './log-state.js';
import { LogStateReads } from './log-state-reads.js';
import type { RaftStorage, StorageUpdate } from './raft-storage.js';

export interface MemoryRaftStorageOptions {
  bootstrap: ConfState;
}

export class MemoryRaftStorage extends LogStateReads implements RaftStorage {
  protected readonly state: LogState;
  private closed = false;
  /** Number of save() calls that changed something (what would have been fsyncs). */
  saves = 0;

  constructor(options: MemoryRaftStorageOptions) {
    super();
    this.state = new LogState(options.bootstrap);
  }

  async save(update: StorageUpdate): Promise<void> {
    this.assertOpen();
    const { snapshot, entries } = new LogProjection(this.state).accept(update); // throws before any change
    if (snapshot) this.state.resetTo(snapshot);
    this.state.append(entries);
    if (update.hardState) this.state.hardState = { ...update.hardState };
    if (snapshot || entries.length > 0 || update.hardState) this.saves++;
  }

  async compact(snapshot: Snapshot, retainEntries: number): Promise<void> {
    this.assertOpen();
    const cut = planCompaction(this.state, snapshot, retainEntries);
    if (cut === undefined) return;
    this.state.snap = snapshot;
    this.state.compactTo(cut);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError('memory raft storage');
  }
}
