// In-memory twin of LevelStateMachine for runtime tests: the same apply logic (kv-applier), the same
// snapshot bytes, no disk.
import type { Entry, Snapshot } from '../raft/types.js';
import type { CommandResult, KeyValue, LeaseInfo } from '../api/command.js';
import { InvalidSnapshotError, StorageClosedError } from './errors.js';
import { applyEntries, type KvReadView } from './kv-applier.js';
import {
  bytesToKeyString,
  compareBytes,
  copyBytes,
  dataKey,
  encodeLease,
  encodeSession,
  encodeStoredValue,
  keyStringToBytes,
  leaseKey,
  sessionKey,
  type AppliedPosition,
  type Lease,
  type Session,
  type StoredValue,
} from './keyspace.js';
import { LeaseTable } from './lease-table.js';
import { SerialQueue } from './serial-queue.js';
import { DEFAULT_MAX_RESULTS_PER_SESSION, DEFAULT_MAX_SESSIONS, SessionTable } from './session-table.js';
import { decodeStateSnapshot, encodeStateSnapshot, validatePair } from './state-snapshot.js';
import type { ApplyListener, ScanOptions, ScanResult, StagedRestore, StateMachine, StateStream } from './state-machine.js';
import { ApplyNotifier } from './apply-notifier.js';

const STREAM_CHUNK_PAIRS = 1000;

export interface MemoryStateMachineOptions {
  maxSessions?: number;
  maxResultsPerSession?: number;
}

function lowerBound(sorted: readonly string[], k: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function toKeyValue(key: Uint8Array, v: StoredValue): KeyValue {
  const kv: KeyValue = { key: copyBytes(key), value: copyBytes(v.value), version: v.version, createIndex: v.createIndex, modIndex: v.modIndex };
  if (v.lease) kv.lease = v.lease;
  return kv;
}

interface MemoryStaging {
  pairs: [Uint8Array, Uint8Array][];
  state: 'filling' | 'finished' | 'aborted';
  source?: string;
  applied?: AppliedPosition;
}

export class MemoryStateMachine implements StateMachine {
  // Keys are bytesToKeyString(userKey): string order equals byte order.
  // invariant: `sorted` holds exactly the keys of `data`, ascending.
  private data = new Map<string, StoredValue>();
  private sorted: string[] = [];
  private applied: AppliedPosition = { index: 0, term: 0 };
  private readonly sessions: SessionTable;
  private readonly leaseTable = new LeaseTable();
  private readonly applyNotifier = new ApplyNotifier();
  private readonly queue = new SerialQueue();
  private closed = false;
  /** A staged restore (stageRestore): its pairs, and once finished its source and position. */
  private staging: MemoryStaging | undefined;

  constructor(options: MemoryStateMachineOptions = {}) {
    this.sessions = new SessionTable({
      maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
      maxResultsPerSession: options.maxResultsPerSession ?? DEFAULT_MAX_RESULTS_PER_SESSION,
    });
  }

  appliedIndex(): number {
    return this.applied.index;
  }

  appliedTerm(): number {
    return this.applied.term;
  }

  apply(entries: Entry[]): Promise<(CommandResult | null)[]> {
    return this.queue.run(async () => {
      this.assertOpen();
      const view: KvReadView = {
        get: async (key) => this.data.get(bytesToKeyString(key)),
        keysInRange: async (start, end) => this.keysBetween(start, end).map(keyStringToBytes),
      };
      const outcome = await applyEntries(entries, view, this.sessions, this.leaseTable, this.applied);
      for (const [k, w] of outcome.writes) this.setKey(k, w.value);
      this.sessions.commit(outcome.sessions);
      this.leaseTable.commit(outcome.leases);
      this.applied = outcome.applied;
      this.applyNotifier.notify(outcome.events);
      return outcome.results;
    });
  }

  onApply(listener: ApplyListener | undefined): void {
    this.applyNotifier.set(listener);
  }

  leases(): LeaseInfo[] {
    return this.leaseTable.list();
  }

  lease(id: number): LeaseInfo | undefined {
    return this.leaseTable.info(id);
  }

  private keysBetween(start: Uint8Array, end: Uint8Array, limit = Infinity): string[] {
    const out: string[] = [];
    const endKey = end.length > 0 ? bytesToKeyString(end) : undefined;
    for (let i = lowerBound(this.sorted, bytesToKeyString(start)); i < this.sorted.length && out.length < limit; i++) {
      const k = this.sorted[i]!;
      if (endKey !== undefined && k >= endKey) break;
      out.push(k);
    }
    return out;
  }

  private setKey(k: string, value: StoredValue | null): void {
    const pos = lowerBound(this.sorted, k);
    const present = this.sorted[pos] === k;
    if (value) {
      if (!present) this.sorted.splice(pos, 0, k);
      this.data.set(k, value);
    } else if (present) {
      this.sorted.splice(pos, 1);
      this.data.delete(k);
    }
  }

  async get(key: Uint8Array): Promise<KeyValue | undefined> {
    this.assertOpen();
    const v = this.data.get(bytesToKeyString(key));
    return v ? toKeyValue(key, v) : undefined;
  }

  async scan(options: ScanOptions): Promise<ScanResult> {
    this.assertOpen();
    const limit = options.limit > 0 ? options.limit : Infinity;
    const keys = this.keysBetween(options.start, options.end, limit === Infinity ? Infinity : limit + 1);
    const items = keys.slice(0, limit).map((k) => toKeyValue(keyStringToBytes(k), this.data.get(k)!));
    return keys.length > limit ? { items, continueFrom: keyStringToBytes(keys[limit]!) } : { items };
  }

  /** Every pair of the state (data, leases, then sessions, in key order), captured synchronously. */
  private pairs(): [Uint8Array, Uint8Array][] {
    const pairs: [Uint8Array, Uint8Array][] = [];
    for (const k of this.sorted) {
      const key = dataKey(keyStringToBytes(k));
      pairs.push([key, encodeStoredValue(key, this.data.get(k)!)]);
    }
    const sessionPairs = [...this.sessions.entries()].map(([id, s]): [Uint8Array, Uint8Array] => {
      const key = sessionKey(id);
      return [key, encodeSession(key, s)];
    });
    sessionPairs.sort((a, b) => compareBytes(a[0], b[0]));
    // Key order, as LevelDB iterates: 'd/' < 'l/' < 's/'.
    const leasePairs = this.leaseTable.entries().map(([id, l]): [Uint8Array, Uint8Array] => {
      const key = leaseKey(id);
      return [key, encodeLease(key, l)];
    });
    return [...pairs, ...leasePairs, ...sessionPairs];
  }

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    this.assertOpen();
    // Captured synchronously, so it is consistent with `applied` even while an apply is queued.
    const applied = this.applied;
    return { index: applied.index, data: encodeStateSnapshot(applied, this.pairs()) };
  }

  /** The twin of LevelStateMachine.snapshotStream: the same chunks, from a copy taken now. */
  async snapshotStream(): Promise<StateStream> {
    this.assertOpen();
    const applied = { ...this.applied };
    const pairs = this.pairs();
    async function* chunks(): AsyncGenerator<[Uint8Array, Uint8Array][]> {
      for (let i = 0; i < pairs.length; i += STREAM_CHUNK_PAIRS) yield pairs.slice(i, i + STREAM_CHUNK_PAIRS);
    }
    return { applied, chunks: chunks() };
  }

  /** The twin of LevelStateMachine.restoreStream: builds the new state aside, swaps after the last chunk. */
  restoreStream(meta: { index: number; term: number }, chunks: AsyncIterable<[Uint8Array, Uint8Array][]>): Promise<void> {
    return this.queue.run(async () => {
      this.assertOpen();
      const pairs: [Uint8Array, Uint8Array][] = [];
      for await (const chunk of chunks) pairs.push(...chunk);
      this.replaceWith(meta, pairs);
    });
  }

  /** The twin of LevelStateMachine.stageRestore: the pairs are kept aside until installStaged; a new staging ends the previous one. */
  async stageRestore(): Promise<StagedRestore> {
    this.assertOpen();
    if (this.staging) this.staging.state = 'aborted';
    const staging: MemoryStaging = { pairs: [], state: 'filling' };
    this.staging = staging;
    const live = () => {
      if (staging.state !== 'filling') throw new Error(`the staged restore is ${staging.state}`);
    };
    return {
      write: async (pairs) => {
        live();
        staging.pairs.push(...pairs);
      },
      finish: async (applied, source) => {
        live();
        Object.assign(staging, { state: 'finished', applied: { ...applied }, source });
      },
      abort: async () => {
        staging.state = 'aborted';
        staging.pairs = [];
        if (this.staging === staging) this.staging = undefined;
      },
    };
  }

  installStaged(meta: { index: number; term: number }, source: string): Promise<boolean> {
    return this.queue.run(async () => {
      this.assertOpen();
      const s = this.staging;
      if (s?.state !== 'finished' || s.source !== source || s.applied?.index !== meta.index || s.applied.term !== meta.term) return false;
      this.staging = undefined;
      this.replaceWith(meta, s.pairs);
      return true;
    });
  }

  /** Validates every pair first (throws before anything changes), then replaces the whole state. */
  private replaceWith(meta: { index: number; term: number }, pairs: readonly [Uint8Array, Uint8Array][]): void {
    const data = new Map<string, StoredValue>();
    const sessions: [string, Session][] = [];
    const leases: [number, Lease][] = [];
    let i = 0;
    for (const pair of pairs) {
      const [, , decoded] = validatePair(pair, i++);
      if (decoded.kind === 'data') data.set(bytesToKeyString(decoded.key), decoded.value);
      else if (decoded.kind === 'lease') leases.push([decoded.id, decoded.lease]);
      else sessions.push([decoded.id, decoded.session]);
    }
    this.data = data;
    this.sorted = [...data.keys()].sort();
    this.sessions.load(sessions);
    this.leaseTable.load(leases);
    this.applied = { index: meta.index, term: meta.term };
  }

  restore(snapshot: Snapshot): Promise<void> {
    return this.queue.run(async () => {
      this.assertOpen();
      const decoded = decodeStateSnapshot(snapshot.data); // throws before anything changes
      if (decoded.applied.index !== snapshot.meta.index) {
        throw new InvalidSnapshotError(`data is at index ${decoded.applied.index} but meta.index is ${snapshot.meta.index}`);
      }
      const data = new Map<string, StoredValue>();
      for (const [key, v] of decoded.data) data.set(bytesToKeyString(key), v);
      this.data = data;
      this.sorted = [...data.keys()].sort();
      this.sessions.load(decoded.sessions);
      this.leaseTable.load(decoded.leases);
      this.applied = { index: snapshot.meta.index, term: snapshot.meta.term };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError('memory state machine');
  }
}
