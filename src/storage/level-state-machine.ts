// The replicated key-value state on LevelDB. One committed batch of entries becomes ONE LevelDB
// batch (data + session table + applied index), so a crash leaves all or none of it applied.
import { Level } from 'level';
import type { Entry, Snapshot } from '../raft/types.js';
import type { CommandResult, KeyValue } from '../api/command.js';
import { InvalidSnapshotError, StorageClosedError, StorageCorruptionError } from './errors.js';
import { applyEntries, type KvReadView } from './kv-applier.js';
import {
  APPLIED_KEY, DATA_PREFIX, SESSION_PREFIX, compareBytes, dataKey, decodeApplied, decodeSession, decodeStoredValue,
  encodeApplied, encodeSession, encodeStoredValue, prefixEnd, sessionKey, type AppliedPosition, type Session,
} from './keyspace.js';
import { SerialQueue } from './serial-queue.js';
import { DEFAULT_MAX_RESULTS_PER_SESSION, DEFAULT_MAX_SESSIONS, SessionTable } from './session-table.js';
import { decodeStateSnapshot, StateSnapshotWriter } from './state-snapshot.js';
import type { ScanOptions, ScanResult, StateMachine } from './state-machine.js';

export { prefixEnd } from './keyspace.js';

export interface LevelStateMachineOptions {
  /** Directory of the LevelDB database (created if missing). */
  dir: string;
  /** Most client sessions remembered; the least recently used (by log index) is evicted. Default 10000. */
  maxSessions?: number;
  /** Most results remembered per client; the oldest seqs are forgotten beyond it. Default 1024. */
  maxResultsPerSession?: number;
}

type Db = Level<Uint8Array, Uint8Array>;
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

const DATA_END = prefixEnd(DATA_PREFIX);
const SESSION_END = prefixEnd(SESSION_PREFIX);
const td = new TextDecoder();
const ITER_CHUNK = 1000;

export class LevelStateMachine implements StateMachine {
  private applied: AppliedPosition = { index: 0, term: 0 };
  private readonly queue = new SerialQueue();
  private closed = false;

  private constructor(private readonly db: Db, private readonly sessions: SessionTable) {}

  static async open(options: LevelStateMachineOptions): Promise<LevelStateMachine> {
    const sessions = new SessionTable({
      maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
      maxResultsPerSession: options.maxResultsPerSession ?? DEFAULT_MAX_RESULTS_PER_SESSION,
    });
    const db: Db = new Level<Uint8Array, Uint8Array>(options.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open({ createIfMissing: true });
    const sm = new LevelStateMachine(db, sessions);
    try {
      await sm.load();
    } catch (err) {
      await db.close();
      throw new StorageCorruptionError(options.dir, 0, `state machine metadata does not decode (${(err as Error).message})`);
    }
    return sm;
  }

  private async load(): Promise<void> {
    const raw = await this.db.get(APPLIED_KEY);
    this.applied = raw ? decodeApplied(raw) : { index: 0, term: 0 };
    const loaded: [string, Session][] = [];
    for await (const [key, value] of this.db.iterator({ gte: SESSION_PREFIX, lt: SESSION_END })) {
      loaded.push([td.decode(key.subarray(SESSION_PREFIX.length)), decodeSession(value)]);
    }
    this.sessions.load(loaded);
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
        get: async (key) => {
          const raw = await this.db.get(dataKey(key));
          return raw ? decodeStoredValue(raw) : undefined;
        },
        keysInRange: async (start, end) => {
          const keys: Uint8Array[] = [];
          for await (const key of this.db.keys({ gte: dataKey(start), lt: end.length > 0 ? dataKey(end) : DATA_END })) {
            keys.push(key.subarray(DATA_PREFIX.length));
          }
          return keys;
        },
      };
      const outcome = await applyEntries(entries, view, this.sessions, this.applied);
      const ops: BatchOp[] = [];
      for (const w of outcome.writes.values()) {
        ops.push(w.value ? { type: 'put', key: dataKey(w.key), value: encodeStoredValue(w.value) } : { type: 'del', key: dataKey(w.key) });
      }
      for (const id of outcome.sessions.evicted) if (!outcome.sessions.touched.has(id)) ops.push({ type: 'del', key: sessionKey(id) });
      for (const [id, s] of outcome.sessions.touched) ops.push({ type: 'put', key: sessionKey(id), value: encodeSession(s) });
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(outcome.applied) });
      // No sync: the Raft log is the durable record. A machine crash can only lose whole recent
      // batches (applied index and data together), which are then re-applied from the log.
      await this.db.batch(ops);
      this.sessions.commit(outcome.sessions);
      this.applied = outcome.applied;
      return outcome.results;
    });
  }

  async get(key: Uint8Array): Promise<KeyValue | undefined> {
    this.assertOpen();
    const raw = await this.db.get(dataKey(key));
    if (!raw) return undefined;
    const v = decodeStoredValue(raw);
    return { key: new Uint8Array(key), value: v.value, version: v.version, createIndex: v.createIndex, modIndex: v.modIndex };
  }

  async scan(options: ScanOptions): Promise<ScanResult> {
    this.assertOpen();
    const limit = options.limit > 0 ? options.limit : Infinity;
    const items: KeyValue[] = [];
    const iterator = this.db.iterator({
      gte: dataKey(options.start),
      lt: options.end.length > 0 ? dataKey(options.end) : DATA_END,
      ...(limit === Infinity ? {} : { limit: limit + 1 }),
    });
    try {
      for (;;) {
        const chunk = await iterator.nextv(ITER_CHUNK);
        if (chunk.length === 0) return { items };
        for (const [k, raw] of chunk) {
          const key = k.subarray(DATA_PREFIX.length);
          if (items.length === limit) return { items, continueFrom: new Uint8Array(key) };
          const v = decodeStoredValue(raw);
          items.push({ key: new Uint8Array(key), value: v.value, version: v.version, createIndex: v.createIndex, modIndex: v.modIndex });
        }
      }
    } finally {
      await iterator.close();
    }
  }

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    this.assertOpen();
    // The iterator pins a LevelDB snapshot when created (synchronously), so applies may continue
    // while we read; the applied index is read from the same snapshot, so data and index agree.
    const iterator = this.db.iterator();
    const writer = new StateSnapshotWriter(); // packs chunk by chunk: the event loop keeps turning
    let applied: AppliedPosition = { index: 0, term: 0 };
    try {
      for (;;) {
        const chunk = await iterator.nextv(ITER_CHUNK);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          if (compareBytes(key, APPLIED_KEY) === 0) applied = decodeApplied(value);
          else writer.add(key, value);
        }
      }
    } finally {
      await iterator.close();
    }
    return { index: applied.index, data: writer.finish(applied) };
  }

  restore(snapshot: Snapshot): Promise<void> {
    return this.queue.run(async () => {
      this.assertOpen();
      const decoded = decodeStateSnapshot(snapshot.data); // validated before anything is touched
      if (decoded.applied.index !== snapshot.meta.index) {
        throw new InvalidSnapshotError(`data is at index ${decoded.applied.index} but meta.index is ${snapshot.meta.index}`);
      }
      // One LevelDB batch deletes every current key and writes the new state: LevelDB applies a
      // batch atomically, so a crash leaves either the old state or the new one.
      const ops: BatchOp[] = [];
      for await (const key of this.db.keys()) ops.push({ type: 'del', key });
      for (const [key, value] of decoded.pairs) ops.push({ type: 'put', key, value });
      const applied = { index: snapshot.meta.index, term: snapshot.meta.term };
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(applied) });
      await this.db.batch(ops, { sync: true });
      this.sessions.load(decoded.sessions);
      this.applied = applied;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.run(async () => undefined); // let an in-flight apply finish its batch
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError('LevelDB state machine');
  }
}
