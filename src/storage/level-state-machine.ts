// The replicated key-value state on LevelDB. One committed batch of entries becomes ONE LevelDB
// batch (data + session table + applied index), so a crash leaves all or none of it applied.
//
// Damaged data is never served. classic-level gives no way to turn on LevelDB's paranoid_checks or
// verify_checksums, so LevelDB neither checks block CRCs on reads nor refuses a damaged log at
// open; instead:
//   - every stored record carries its own CRC-32 over key and value (keyspace.ts), checked on every
//     read, scan, apply and snapshot;
//   - a LevelDB `Corruption` status (e.g. a table block that does not decompress) is caught;
//   - after open, LevelDB's info LOG is checked for log records it dropped while replaying its
//     write-ahead log (it does so silently and then deletes that log: the state would be missing
//     whole batches while the applied index says they were applied);
//   - at open, before LevelDB reads any of them, every live table file is checked block by block
//     as LevelDB's verify_checksums would (leveldb-tables.ts): this also finds damage no read can
//     see (a damaged key byte, entries a damaged block silently loses) and keeps LevelDB from
//     parsing damaged blocks (unchecked, it can abort the process on an assertion).
// The first damage found makes the machine refuse every read and snapshot from then on (a damaged
// disk is not trusted for the keys that still check out) and is recorded in a marker file, so
// every later open starts the same way, until the node is rebuilt (`quorumkv rebuild` moves the
// data dir aside). Such a machine still applies entries: the node keeps its (separately
// checksummed) Raft log in step with the cluster while it waits to be rebuilt.
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import type { Entry, Snapshot } from '../raft/types.js';
import type { CommandResult, KeyValue, LeaseInfo } from '../api/command.js';
import { InvalidSnapshotError, StateMachineCorruptionError, StorageClosedError } from './errors.js';
import { applyEntries, type KvReadView } from './kv-applier.js';
import { checkTable, liveTables } from './leveldb-tables.js';
import {
  APPLIED_KEY,
  DATA_PREFIX,
  LEASE_PREFIX,
  SESSION_PREFIX,
  compareBytes,
  dataKey,
  decodeApplied,
  decodeLease,
  decodeSession,
  decodeStoredValue,
  encodeApplied,
  encodeLease,
  encodeSession,
  encodeStoredValue,
  leaseIdOf,
  leaseKey,
  openRecord,
  prefixEnd,
  sessionKey,
  startsWith,
  type AppliedPosition,
  type Lease,
  type Session,
  type StoredValue,
} from './keyspace.js';
import { LeaseTable } from './lease-table.js';
import { levelOpenOptions, type LevelDbTuning } from './level-options.js';
import { LevelFill } from './level-fill.js';
import { SerialQueue } from './serial-queue.js';
import { DEFAULT_MAX_RESULTS_PER_SESSION, DEFAULT_MAX_SESSIONS, SessionTable } from './session-table.js';
import { decodeStateSnapshot, StateSnapshotWriter } from './state-snapshot.js';
import type { ApplyListener, ScanOptions, ScanResult, StagedRestore, StateMachine, StateStream } from './state-machine.js';
import { ApplyNotifier } from './apply-notifier.js';

export { prefixEnd } from './keyspace.js';
export { LEVELDB_DEFAULTS, type LevelDbTuning } from './level-options.js';

export interface LevelStateMachineOptions {
  /** Directory of the LevelDB database (created if missing). */
  dir: string;
  /**
   * LevelDB tuning for a store larger than memory (see README, "Sizing"). The block cache and the
   * write buffer are the machine's only memory that grows with use; both are fixed here.
   */
  leveldb?: LevelDbTuning;
  /** Most client sessions remembered; the least recently used (by log index) is evicted. Default 10000. */
  maxSessions?: number;
  /** Most results remembered per client; the oldest seqs are forgotten beyond it. Default 1024. */
  maxResultsPerSession?: number;
  /** The command that rebuilds this node, named in StateMachineCorruptionError (e.g. `quorumkv rebuild --config F --node n2`). */
  rebuildCommand?: string;
  /** Called once per open with the first damage: when it is found, or at open when it was recorded earlier. */
  onCorruption?: (err: StateMachineCorruptionError) => void;
  /**
   * Check every live table file before serving (default true). It reads the whole database once
   * (roughly the speed of reading the files plus a CRC-32C in JavaScript); off, damage inside
   * values is still found by every read, damage to keys and block structure is not.
   */
  checkTables?: boolean;
}

export interface VerifyResult {
  tables: number;
  tableBytes: number;
  records: number;
  ms: number;
}

/** Beside the live database: a restore builds `<dir>.next`, the swap parks the old one as `<dir>.old`. */
const NEXT_SUFFIX = '.next';
const OLD_SUFFIX = '.old';
/** Written into `<dir>.next` once it holds the whole new state: from then on the swap rolls forward. */
const RESTORE_COMPLETE = 'QUORUMKV-RESTORE-COMPLETE';
/** Where the state of a snapshot file that is still arriving is built (stageRestore); never rolled forward. */
const STAGING_SUFFIX = '.staging';

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/**
 * Finishes or undoes a swap that a crash interrupted, so that `dir` holds either the old state or
 * the complete new one: a complete `<dir>.next` replaces `dir` (the Raft log already rests on
 * that snapshot), an incomplete one is dropped, a parked `<dir>.old` is removed. Idempotent.
 * (A `<dir>.staging` is not touched here, as a swap runs this too: open() deletes it.)
 */
export async function recoverStateMachineSwap(dir: string): Promise<'none' | 'rolled-forward' | 'dropped-incomplete'> {
  const next = dir + NEXT_SUFFIX;
  const old = dir + OLD_SUFFIX;
  let outcome: 'none' | 'rolled-forward' | 'dropped-incomplete' = 'none';
  if (await exists(path.join(next, RESTORE_COMPLETE))) {
    if ((await exists(dir)) && !(await exists(old))) await rename(dir, old);
    else if (await exists(dir)) await rm(dir, { recursive: true, force: true });
    await rename(next, dir);
    await fsyncDir(path.dirname(dir));
    outcome = 'rolled-forward';
  } else if (await exists(next)) {
    await rm(next, { recursive: true, force: true });
    outcome = 'dropped-incomplete';
  }
  await rm(old, { recursive: true, force: true });
  await rm(path.join(dir, RESTORE_COMPLETE), { force: true });
  return outcome;
}

export const CORRUPTION_MARKER = 'QUORUMKV-CORRUPT.json';
const DEFAULT_REBUILD_COMMAND = 'quorumkv rebuild --config <cluster config> --node <this node id>';
/** What LevelDB 1.x writes to its info LOG for each log record it skips while recovering (db_impl.cc, LogReporter). */
const DROPPED_RECORDS = /dropping \d+ bytes; .*/;
/** Bytes of a user key shown in errors (as hex). */
const KEY_BYTES_SHOWN = 32;

function levelCorruption(err: unknown): Error | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'LEVEL_CORRUPTION') return e as unknown as Error;
  }
  return undefined;
}

/** Why the record stored under `key` is damaged, or undefined when it checks out. */
function recordProblem(key: Uint8Array, value: Uint8Array): string | undefined {
  try {
    if (startsWith(key, DATA_PREFIX)) {
      // The CRC is the check; a checksummed body was well-formed when written. Format 0 has only its shape.
      if (openRecord(key, value).version === 0) decodeStoredValue(key, value);
    } else if (startsWith(key, SESSION_PREFIX)) {
      decodeSession(key, value);
    } else if (startsWith(key, LEASE_PREFIX)) {
      if (leaseIdOf(key) === undefined) return 'a malformed lease key';
      decodeLease(key, value);
    } else if (compareBytes(key, APPLIED_KEY) === 0) {
      decodeApplied(value);
    } else {
      return 'a key outside the keyspace (a damaged key byte?)';
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** `key <hex>` (the user key, truncated), `session <id>`, `applied index`, or the raw LevelDB key. */
export function describeStoredKey(storedKey: Uint8Array): string {
  const hex = (b: Uint8Array) => Buffer.from(b.subarray(0, KEY_BYTES_SHOWN)).toString('hex') + (b.length > KEY_BYTES_SHOWN ? `… (${b.length} bytes)` : '');
  if (startsWith(storedKey, DATA_PREFIX)) return `key ${hex(storedKey.subarray(DATA_PREFIX.length))}`;
  if (startsWith(storedKey, SESSION_PREFIX))
    return `session of client ${JSON.stringify(td.decode(storedKey.subarray(SESSION_PREFIX.length, SESSION_PREFIX.length + 64)))}`;
  if (compareBytes(storedKey, APPLIED_KEY) === 0) return 'applied index';
  if (startsWith(storedKey, LEASE_PREFIX)) return `lease ${leaseIdOf(storedKey) ?? hex(storedKey)}`;
  return `LevelDB key ${hex(storedKey)}`;
}

/** Written into the LevelDB dir when damage is found; while it exists, every open starts damaged (refusing reads). */
interface CorruptionRecord {
  key: string;
  detail: string;
  at: string;
}

async function readMarker(dir: string): Promise<CorruptionRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CORRUPTION_MARKER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const r = JSON.parse(text) as Partial<CorruptionRecord>;
    return { key: String(r.key ?? 'database'), detail: String(r.detail ?? 'recorded earlier'), at: String(r.at ?? 'earlier') };
  } catch {
    return { key: 'database', detail: 'recorded earlier (the marker itself does not parse)', at: 'earlier' };
  }
}

/** The first record LevelDB reports having dropped while it replayed its log during this open. */
async function droppedLogRecords(dir: string): Promise<string | undefined> {
  let log: string;
  try {
    log = await readFile(path.join(dir, 'LOG'), 'utf8'); // rotated to LOG.old at each open: this open only
  } catch {
    return undefined;
  }
  return DROPPED_RECORDS.exec(log)?.[0];
}

function toKeyValue(key: Uint8Array, v: StoredValue): KeyValue {
  const kv: KeyValue = { key: new Uint8Array(key), value: v.value, version: v.version, createIndex: v.createIndex, modIndex: v.modIndex };
  if (v.lease) kv.lease = v.lease;
  return kv;
}

type Db = Level<Uint8Array, Uint8Array>;
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

const DATA_END = prefixEnd(DATA_PREFIX);
const SESSION_END = prefixEnd(SESSION_PREFIX);
const LEASE_END = prefixEnd(LEASE_PREFIX);
const td = new TextDecoder();
const ITER_CHUNK = 1000;

/** An arriving snapshot file's state in `<dir>.staging`; source and applied are set once it is finished. */
interface LevelStaging {
  fill: LevelFill;
  source?: string;
  applied?: AppliedPosition;
}

export class LevelStateMachine implements StateMachine {
  private applied: AppliedPosition = { index: 0, term: 0 };
  private readonly queue = new SerialQueue();
  private closed = false;
  /** The first damage found; from then on reads and snapshots fail with it. */
  private damage: StateMachineCorruptionError | undefined;
  private markerWrite: Promise<void> | undefined;
  private readonly leaseTable = new LeaseTable();
  private readonly applyNotifier = new ApplyNotifier();
  /** Set while a restore swaps databases: reads wait for it. */
  private swapping: Promise<void> | undefined;
  /** The state of an arriving snapshot file being built (or built: source and applied set) beside the live one. */
  private staging: LevelStaging | undefined;
  /** Serializes what deletes, creates or moves `<dir>.staging` (see withStagingDir). */
  private stagingDirTurn: Promise<unknown> = Promise.resolve();

  private constructor(
    private db: Db,
    private readonly sessions: SessionTable,
    private readonly dir: string,
    private readonly tuning: LevelDbTuning | undefined,
    private readonly fix: string,
    private readonly onCorruption: ((err: StateMachineCorruptionError) => void) | undefined,
  ) {}

  /**
   * Opens (creating if missing) the machine in options.dir. Rejects with
   * StateMachineCorruptionError when LevelDB cannot open its files or when the applied index or a
   * session is damaged (without them nothing can be applied). Opens damaged — refusing reads, see
   * corruption() — when damage was recorded earlier, when LevelDB dropped log records while
   * opening, or when a table file fails its check.
   */
  static async open(options: LevelStateMachineOptions): Promise<LevelStateMachine> {
    const fix = options.rebuildCommand ?? DEFAULT_REBUILD_COMMAND;
    await recoverStateMachineSwap(options.dir);
    await rm(options.dir + STAGING_SUFFIX, { recursive: true, force: true }); // a transfer a crash cut short
    const earlier = await readMarker(options.dir);
    const sessions = new SessionTable({
      maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
      maxResultsPerSession: options.maxResultsPerSession ?? DEFAULT_MAX_RESULTS_PER_SESSION,
    });
    const db: Db = new Level<Uint8Array, Uint8Array>(options.dir, { keyEncoding: 'view', valueEncoding: 'view' });
    const sm = new LevelStateMachine(db, sessions, options.dir, options.leveldb, fix, options.onCorruption);
    try {
      await db.open({ createIfMissing: true, ...levelOpenOptions(options.leveldb) });
    } catch (err) {
      const c = levelCorruption(err);
      if (!c) throw err;
      const e = sm.corrupted('database', `LevelDB cannot open it (${c.message})`);
      await sm.markerWrite;
      throw e;
    }
    try {
      const dropped = earlier ? undefined : await droppedLogRecords(options.dir);
      if (earlier) {
        sm.corrupted(earlier.key, `${earlier.detail} (found ${earlier.at}, recorded in ${CORRUPTION_MARKER})`, false);
      } else if (dropped) {
        sm.corrupted('database', `LevelDB dropped damaged records of its write-ahead log while opening ("${dropped}"), so whole applied batches are missing`);
      } else if (options.checkTables !== false) {
        await sm.checkTableFiles().catch((err: unknown) => {
          if (!(err instanceof StateMachineCorruptionError)) throw err; // recorded: the machine opens damaged
        });
      }
      await sm.load();
    } catch (err) {
      await sm.markerWrite;
      await db.close();
      throw err;
    }
    return sm;
  }

  private async load(): Promise<void> {
    const raw = await this.read(APPLIED_KEY);
    this.applied = raw ? this.decode(APPLIED_KEY, raw, decodeApplied) : { index: 0, term: 0 };
    const loaded: [string, Session][] = [];
    try {
      for await (const [key, value] of this.db.iterator({ gte: SESSION_PREFIX, lt: SESSION_END })) {
        loaded.push([td.decode(key.subarray(SESSION_PREFIX.length)), this.decode(key, value, (v) => decodeSession(key, v))]);
      }
    } catch (err) {
      throw this.fromLevel(err, undefined);
    }
    this.sessions.load(loaded);
    const leases: [number, Lease][] = [];
    try {
      for await (const [key, value] of this.db.iterator({ gte: LEASE_PREFIX, lt: LEASE_END })) {
        const id = leaseIdOf(key);
        if (id === undefined) throw this.corrupted(describeStoredKey(key), 'a malformed lease key');
        leases.push([id, this.decode(key, value, (v) => decodeLease(key, v))]);
      }
    } catch (err) {
      throw this.fromLevel(err, undefined);
    }
    this.leaseTable.load(leases);
  }

  /** The first damage found, if any (reads and snapshots then fail with it). */
  corruption(): StateMachineCorruptionError | undefined {
    return this.damage;
  }

  /**
   * A scrub: checks every live LevelDB table file block by block (CRC-32C, structure, and the
   * record of every value entry, old versions included) without letting LevelDB parse a damaged
   * block, then reads every current record through LevelDB (which adds the write-ahead log's) and
   * checks it, its key's place in the keyspace and key order. Finds damage in keys nobody reads and
   * in keys themselves (a damaged key byte hides the key from get()). Rejects with
   * StateMachineCorruptionError at the first damage; resolves with counts, or undefined when the
   * machine was closed meanwhile.
   */
  async verify(): Promise<VerifyResult | undefined> {
    this.assertReadable();
    const t0 = performance.now();
    const result: VerifyResult = { tables: 0, tableBytes: 0, records: 0, ms: 0 };
    if (!(await this.checkTableFiles(result))) return undefined;
    const iterator = this.db.iterator({ fillCache: false });
    let previous: Uint8Array | undefined;
    try {
      for (;;) {
        if (this.closed) return undefined;
        const chunk = await this.next(iterator);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          if (previous && compareBytes(previous, key) >= 0) throw this.corrupted(describeStoredKey(key), 'keys out of order (a damaged table)');
          previous = key;
          this.checkRecord(key, value);
          result.records++;
        }
      }
    } finally {
      await iterator.close();
    }
    result.ms = Math.round(performance.now() - t0);
    return result;
  }

  /** Checks every live table file (see leveldb-tables.ts); false when the machine was closed meanwhile. */
  private async checkTableFiles(result: VerifyResult = { tables: 0, tableBytes: 0, records: 0, ms: 0 }): Promise<boolean> {
    const sstables = (this.db as unknown as { getProperty(p: string): string }).getProperty('leveldb.sstables');
    for (const table of liveTables(sstables)) {
      if (this.closed) return false;
      const bytes = await this.readTable(table.number);
      if (!bytes) continue; // compacted away meanwhile: its entries are in a newer table
      const file = bytes.name;
      if (bytes.data.length !== table.size) {
        throw this.corrupted('database', `table ${file} is ${bytes.data.length} bytes but LevelDB's manifest says ${table.size} (truncated?)`);
      }
      const damage = checkTable(bytes.data, recordProblem);
      if (damage) {
        // Which keys the block held, when no single damaged record names one.
        const range =
          !damage.key && (damage.after || damage.upTo)
            ? `, keys ${damage.after ? `after ${describeStoredKey(damage.after)}` : 'from the first'} up to ${damage.upTo ? describeStoredKey(damage.upTo) : 'the last'}`
            : '';
        throw this.corrupted(
          damage.key ? describeStoredKey(damage.key) : `table ${file}`,
          `${damage.detail} (table ${file}, block at byte ${damage.offset}${range})`,
        );
      }
      result.tables++;
      result.tableBytes += bytes.data.length;
    }
    return true;
  }

  private async readTable(n: number): Promise<{ name: string; data: Uint8Array } | undefined> {
    for (const ext of ['.ldb', '.sst']) {
      const name = `${String(n).padStart(6, '0')}${ext}`;
      try {
        return { name, data: await readFile(path.join(this.dir, name)) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return undefined;
  }

  /**
   * Records the first damage (sticky, marker file, onCorruption) and returns the error to throw.
   * Later findings return their own error but do not replace the first.
   */
  private corrupted(where: string, detail: string, record = true): StateMachineCorruptionError {
    const err = new StateMachineCorruptionError(this.dir, where, detail, this.fix);
    if (this.damage) return err;
    this.damage = err;
    if (record) this.writeMarker({ key: where, detail, at: new Date().toISOString() });
    try {
      this.onCorruption?.(err);
    } catch {
      // A logging hook must not turn a refusal into a different failure.
    }
    return err;
  }

  private writeMarker(record: CorruptionRecord): void {
    this.markerWrite = writeFile(path.join(this.dir, CORRUPTION_MARKER), `${JSON.stringify(record)}\n`).catch(() => {
      // Best effort (the disk may be failing): the damage itself is still found again on the next read.
    });
  }

  private fromLevel(err: unknown, storedKey: Uint8Array | undefined): Error {
    const c = levelCorruption(err);
    if (!c) return err as Error;
    return this.corrupted(storedKey ? describeStoredKey(storedKey) : 'database', `LevelDB reports damaged files (${c.message})`);
  }

  private async read(storedKey: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      return await this.db.get(storedKey);
    } catch (err) {
      throw this.fromLevel(err, storedKey);
    }
  }

  private readSync(storedKey: Uint8Array): Uint8Array | undefined {
    try {
      return this.db.getSync(storedKey);
    } catch (err) {
      throw this.fromLevel(err, storedKey);
    }
  }

  private async next(iterator: { nextv(size: number): Promise<[Uint8Array, Uint8Array][]> }): Promise<[Uint8Array, Uint8Array][]> {
    try {
      return await iterator.nextv(ITER_CHUNK);
    } catch (err) {
      throw this.fromLevel(err, undefined);
    }
  }

  private decode<T>(storedKey: Uint8Array, raw: Uint8Array, decoder: (raw: Uint8Array) => T): T {
    try {
      return decoder(raw);
    } catch (err) {
      throw this.corrupted(describeStoredKey(storedKey), (err as Error).message);
    }
  }

  private decodeData(storedKey: Uint8Array, raw: Uint8Array): StoredValue {
    return this.decode(storedKey, raw, (v) => decodeStoredValue(storedKey, v));
  }

  /** Checks any stored record by its key's kind. */
  private checkRecord(key: Uint8Array, value: Uint8Array): void {
    const problem = recordProblem(key, value);
    if (problem) throw this.corrupted(describeStoredKey(key), problem);
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
        // Synchronous: applying reads each written key's previous record, one after another, and a
        // thread-pool round trip per key cost more than the read itself (measured: about 2x the
        // sync-put throughput at c=256). Blocks are nearly always in LevelDB's cache here.
        get: async (key) => {
          const k = dataKey(key);
          const raw = this.readSync(k);
          return raw ? this.decodeData(k, raw) : undefined;
        },
        keysInRange: async (start, end) => {
          const keys: Uint8Array[] = [];
          try {
            for await (const key of this.db.keys({ gte: dataKey(start), lt: end.length > 0 ? dataKey(end) : DATA_END })) {
              keys.push(key.subarray(DATA_PREFIX.length));
            }
          } catch (err) {
            throw this.fromLevel(err, undefined);
          }
          return keys;
        },
      };
      const outcome = await applyEntries(entries, view, this.sessions, this.leaseTable, this.applied);
      const ops: BatchOp[] = [];
      for (const w of outcome.writes.values()) {
        const key = dataKey(w.key);
        ops.push(w.value ? { type: 'put', key, value: encodeStoredValue(key, w.value) } : { type: 'del', key });
      }
      for (const id of outcome.sessions.evicted) if (!outcome.sessions.touched.has(id)) ops.push({ type: 'del', key: sessionKey(id) });
      for (const [id, s] of outcome.sessions.touched) {
        const key = sessionKey(id);
        ops.push({ type: 'put', key, value: encodeSession(key, s) });
      }
      for (const [id, l] of outcome.leases.touched) {
        const key = leaseKey(id);
        ops.push(l ? { type: 'put', key, value: encodeLease(key, l) } : { type: 'del', key });
      }
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(outcome.applied) });
      // No sync: the Raft log is the durable record. A machine crash can only lose whole recent
      // batches (applied index and data together), which are then re-applied from the log.
      try {
        await this.db.batch(ops);
      } catch (err) {
        throw this.fromLevel(err, undefined);
      }
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

  async get(key: Uint8Array): Promise<KeyValue | undefined> {
    if (this.swapping) await this.swapping;
    this.assertReadable();
    const k = dataKey(key);
    const raw = await this.read(k);
    if (!raw) return undefined;
    return toKeyValue(key, this.decodeData(k, raw));
  }

  async scan(options: ScanOptions): Promise<ScanResult> {
    if (this.swapping) await this.swapping;
    this.assertReadable();
    const limit = options.limit > 0 ? options.limit : Infinity;
    const items: KeyValue[] = [];
    const iterator = this.db.iterator({
      gte: dataKey(options.start),
      lt: options.end.length > 0 ? dataKey(options.end) : DATA_END,
      ...(limit === Infinity ? {} : { limit: limit + 1 }),
    });
    try {
      for (;;) {
        const chunk = await this.next(iterator);
        if (chunk.length === 0) return { items };
        for (const [k, raw] of chunk) {
          const key = k.subarray(DATA_PREFIX.length);
          if (items.length === limit) return { items, continueFrom: new Uint8Array(key) };
          items.push(toKeyValue(key, this.decodeData(k, raw)));
        }
      }
    } finally {
      await iterator.close();
    }
  }

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    this.assertReadable();
    // The iterator pins a LevelDB snapshot when created (synchronously), so applies may continue
    // while we read; the applied index is read from the same snapshot, so data and index agree.
    const iterator = this.db.iterator();
    const writer = new StateSnapshotWriter(); // packs chunk by chunk: the event loop keeps turning
    let applied: AppliedPosition = { index: 0, term: 0 };
    try {
      for (;;) {
        const chunk = await this.next(iterator);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          // Checked before it leaves: damaged data must not reach a follower inside a snapshot.
          this.checkRecord(key, value);
          if (compareBytes(key, APPLIED_KEY) === 0) applied = decodeApplied(value);
          else writer.add(key, value);
        }
      }
    } finally {
      await iterator.close();
    }
    return { index: applied.index, data: writer.finish(applied) };
  }

  /**
   * A point-in-time view at the applied index: the iterator is created inside the apply queue (no
   * batch is half-way), and LevelDB pins its snapshot when it is created, so applies go on beside
   * it and never show in it. Records are checked as they leave: damage must not reach a follower.
   */
  async snapshotStream(): Promise<StateStream> {
    this.assertReadable();
    const { iterator, applied } = await this.queue.run(async () => {
      this.assertReadable();
      return { iterator: this.db.iterator({ fillCache: false }), applied: { ...this.applied } };
    });
    const self = this;
    async function* chunks(): AsyncGenerator<[Uint8Array, Uint8Array][]> {
      try {
        for (;;) {
          const chunk = await self.next(iterator);
          if (chunk.length === 0) return;
          const out: [Uint8Array, Uint8Array][] = [];
          for (const [key, value] of chunk) {
            self.checkRecord(key, value);
            if (compareBytes(key, APPLIED_KEY) !== 0) out.push([key, value]);
          }
          yield out;
        }
      } finally {
        await iterator.close();
      }
    }
    return { applied, chunks: chunks() };
  }

  /**
   * Fills a new LevelDB beside the live one from `chunks`, and only after the last chunk (the file
   * reader has then checked the whole file) swaps it in (swapInNext). A failure part way deletes
   * the copy and leaves the old state.
   */
  restoreStream(meta: { index: number; term: number }, chunks: AsyncIterable<[Uint8Array, Uint8Array][]>): Promise<void> {
    return this.queue.run(async () => {
      this.assertOpen();
      const fill = await LevelFill.create(this.dir + NEXT_SUFFIX, this.tuning);
      try {
        for await (const chunk of chunks) await fill.write(chunk);
        await fill.finish({ index: meta.index, term: meta.term });
      } catch (err) {
        await fill.abort();
        throw err;
      }
      await this.swapInNext(meta);
    });
  }

  /**
   * Starts building the state of a snapshot file that is still arriving, in `<dir>.staging` beside
   * the live database, which goes on applying meanwhile. At most one staging exists: a new one
   * deletes the previous one (finished or not). See StagedRestore for the rest.
   */
  stageRestore(): Promise<StagedRestore> {
    return this.withStagingDir(() => this.startStaging());
  }

  /** Runs `fn` alone among the steps that delete, create or move `<dir>.staging` (two transfers starting together, an install). */
  private withStagingDir<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.stagingDirTurn.then(fn);
    this.stagingDirTurn = run.catch(() => undefined);
    return run;
  }

  private async startStaging(): Promise<StagedRestore> {
    this.assertOpen();
    const previous = this.staging;
    this.staging = undefined;
    await previous?.fill.abort();
    const fill = await LevelFill.create(this.dir + STAGING_SUFFIX, this.tuning);
    const staging: LevelStaging = { fill };
    if (this.closed) {
      await fill.abort();
      throw new StorageClosedError('LevelDB state machine');
    }
    this.staging = staging;
    return {
      write: (pairs) => fill.write(pairs),
      finish: async (applied, source) => {
        await fill.finish(applied);
        // Whoever replaced it (a new staging, close) aborted this fill first, so finish threw; never
        // delete the directory here, which may be the new staging's by now.
        if (this.staging !== staging) throw new Error('the staging was replaced or the machine closed meanwhile');
        Object.assign(staging, { source, applied });
      },
      abort: async () => {
        if (this.staging === staging) this.staging = undefined;
        await fill.abort();
      },
    };
  }

  installStaged(meta: { index: number; term: number }, source: string): Promise<boolean> {
    return this.queue.run(async () => {
      this.assertOpen();
      const taken = await this.withStagingDir(async () => {
        const s = this.staging;
        if (!s?.applied || s.source !== source || s.applied.index !== meta.index || s.applied.term !== meta.term) return false;
        this.staging = undefined; // taken: a new staging no longer deletes it
        const next = this.dir + NEXT_SUFFIX;
        await rm(next, { recursive: true, force: true });
        await rename(s.fill.dir, next);
        await fsyncDir(path.dirname(this.dir));
        return true;
      });
      if (taken) await this.swapInNext(meta);
      return taken;
    });
  }

  /**
   * Swaps the complete state in `<dir>.next` in: mark it complete, close the live database, rename
   * live → .old, .next → live, fsync the parent, drop .old, reopen. A crash before the mark leaves
   * the old state (the copy is dropped at start); after it, the start rolls the swap forward
   * (recoverStateMachineSwap). Reads wait for the few milliseconds of the swap. Runs in the queue.
   */
  private async swapInNext(meta: { index: number; term: number }): Promise<void> {
    const next = this.dir + NEXT_SUFFIX;
    await writeFile(path.join(next, RESTORE_COMPLETE), `${JSON.stringify({ index: meta.index, term: meta.term })}\n`);
    const marker = await open(path.join(next, RESTORE_COMPLETE), 'r');
    await marker.sync();
    await marker.close();
    await fsyncDir(next);
    let swapped!: () => void;
    this.swapping = new Promise<void>((resolve) => (swapped = resolve));
    try {
      await this.db.close();
      await recoverStateMachineSwap(this.dir);
      const db: Db = new Level<Uint8Array, Uint8Array>(this.dir, { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open({ createIfMissing: false, ...levelOpenOptions(this.tuning) });
      this.db = db;
      await this.load();
    } finally {
      this.swapping = undefined;
      swapped();
    }
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
      try {
        for await (const key of this.db.keys()) ops.push({ type: 'del', key });
      } catch (err) {
        throw this.fromLevel(err, undefined);
      }
      for (const [key, value] of decoded.pairs) ops.push({ type: 'put', key, value });
      const applied = { index: snapshot.meta.index, term: snapshot.meta.term };
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeApplied(applied) });
      try {
        await this.db.batch(ops, { sync: true });
      } catch (err) {
        throw this.fromLevel(err, undefined);
      }
      this.sessions.load(decoded.sessions);
      this.leaseTable.load(decoded.leases);
      this.applied = applied;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.run(async () => undefined); // let an in-flight apply finish its batch
    const staging = this.staging;
    this.staging = undefined;
    await staging?.fill.abort();
    await this.markerWrite;
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageClosedError('LevelDB state machine');
  }

  private assertReadable(): void {
    this.assertOpen();
    if (this.damage) throw this.damage;
  }
}
