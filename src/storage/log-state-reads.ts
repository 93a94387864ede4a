import type { LogStorage } from '../raft/log-storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';
import type { LogState } from './log-state.js';

/** The core's synchronous reads, answered from the in-memory LogState both Raft storages keep. */
export abstract class LogStateReads implements LogStorage {
  protected abstract readonly state: LogState;

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.state.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.state.entries(lo, hi, maxBytes);
  }
  confEntries(lo: number, hi: number): Entry[] {
    return this.state.confEntries(lo, hi);
  }
  term(index: number): number {
    return this.state.term(index);
  }
  firstIndex(): number {
    return this.state.firstIndex();
  }
  lastIndex(): number {
    return this.state.lastIndex();
  }
  snapshot(): Snapshot {
    return this.state.snapshot();
  }
}
