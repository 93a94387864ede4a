import { CompactedError, UnavailableError, entrySize, type LogStorage } from './log-storage.js';
import { invariant } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

const EMPTY = new Uint8Array(0);

function cloneConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

/**
 * In-memory LogStorage with synchronous writers: the twin of the durable log, used by the
 * simulator and unit tests. Whatever was written here is what "survived" a simulated crash.
 */
export class MemoryStorage implements LogStorage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot;
  // invariant: ents[0] is a placeholder carrying the snapshot's index and term.
  private ents: Entry[];

  constructor(bootstrap: ConfState = { voters: [], learners: [] }) {
    this.snap = { meta: { index: 0, term: 0, conf: cloneConf(bootstrap) }, data: EMPTY };
    this.ents = [{ index: 0, term: 0, type: 'normal', data: EMPTY }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConf(this.snap.meta.conf) };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.offset();
    if (index < offset) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.ents[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.ents[i - offset]!;
      bytes += entrySize(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hardState: HardState): void {
    this.hardState = { ...hardState };
  }

  /** Append entries, replacing any existing suffix they conflict with. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    let toAppend = entries;
    if (first > entries[0]!.index) toAppend = entries.slice(first - entries[0]!.index);
    const position = toAppend[0]!.index - this.offset();
    invariant(position <= this.ents.length, () => `append leaves a gap: first new index ${toAppend[0]!.index}, last index ${this.lastIndex()}`);
    this.ents = this.ents.slice(0, position).concat(toAppend);
  }

  /** Replace everything with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.snap.meta.index) return;
    this.snap = { meta: { ...snapshot.meta, conf: cloneConf(snapshot.meta.conf) }, data: snapshot.data };
    this.ents = [{ index: snapshot.meta.index, term: snapshot.meta.term, type: 'normal', data: EMPTY }];
  }

  /** Record a snapshot taken locally at `index` (which must still be in the log). */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    invariant(index > this.snap.meta.index, `snapshot index ${index} is not newer than ${this.snap.meta.index}`);
    invariant(index <= this.lastIndex(), `snapshot index ${index} is beyond the last index ${this.lastIndex()}`);
    this.snap = { meta: { index, term: this.term(index), conf: cloneConf(conf) }, data };
    return this.snap;
  }

  /** Discard entries before `index`; `index` becomes the placeholder. */
  compact(index: number): void {
    const offset = this.offset();
    if (index <= offset) return;
    invariant(index <= this.lastIndex(), `compact index ${index} is beyond the last index ${this.lastIndex()}`);
    const placeholder = this.ents[index - offset]!;
    this.ents = [{ index: placeholder.index, term: placeholder.term, type: 'normal', data: EMPTY }, ...this.ents.slice(index - offset + 1)];
  }
}
