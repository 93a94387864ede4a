// The simulator's hands on a node's disk and state machine, wrapped around the real ones:
//   SimRaftStorage        the runtime's RaftStorage over MemoryRaftStorage or FileRaftStorage (over
//                         MemoryFs): crash points before/after a save, a slow disk, and the report
//                         of each durable save to the checkers;
//   ObservedStateMachine  the real MemoryStateMachine: every apply and restore is reported to the
//                         checkers with a hash chain over the applied history, which snapshots carry
//                         in a trailer so a restore can be checked against what was applied elsewhere.
// Both belong to one process incarnation at a time (attach): once it died, calls never settle.
import type { CommandResult, KeyValue, LeaseInfo } from '../../src/api/command.js';
import { decodeConfChange } from '../../src/raft/conf-change-codec.js';
import type { ConfState, Entry, HardState, Snapshot } from '../../src/raft/types.js';
import { decodeCommand } from '../../src/storage/codec.js';
import { FileRaftStorage } from '../../src/storage/file-raft-storage.js';
import { decodeEntries, decodePayload } from '../../src/storage/log-records.js';
import type { MemoryFs } from '../../src/storage/memory-fs.js';
import type { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import type { RaftStorage, StorageUpdate } from '../../src/storage/raft-storage.js';
import type { ApplyListener, ScanOptions, ScanResult, StateMachine, StateStream } from '../../src/storage/state-machine.js';
import { parseRecords } from '../../src/storage/record-file.js';
import { fnv1a } from './prng.js';
import type { SimProcess } from './sim-clock.js';

/** A promise that never settles: the process is gone. A new one each time (a shared one would
 *  keep every caller's continuation, and the whole dead cluster with it, alive for ever). */
function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}
const decoder = new TextDecoder();

// ---- entry digests ----------------------------------------------------------------------------

const digests = new WeakMap<Entry, string>();

/**
 * A stable, human-readable identity for an entry's payload: 'noop', 'conf|addVoter|n4', or for a
 * client put 'w|<key>|<value>|<clientId>#<seq>' (values are unique per run).
 */
export function digestOf(entry: Entry): string {
  let d = digests.get(entry);
  if (d !== undefined) return d;
  if (entry.type === 'conf') {
    try {
      const cc = decodeConfChange(entry.data);
      d = `conf|${cc.type}|${cc.nodeId}`;
    } catch {
      d = 'conf|malformed';
    }
  } else if (entry.data.length === 0) {
    d = 'noop';
  } else {
    try {
      const c = decodeCommand(entry.data);
      d = c.op.op === 'put' ? `w|${decoder.decode(c.op.key)}|${decoder.decode(c.op.value)}|${c.clientId}#${c.seq}` : `cmd|${c.op.op}|${c.clientId}#${c.seq}`;
    } catch {
      d = 'cmd|malformed';
    }
  }
  digests.set(entry, d);
  return d;
}

/** The session ('clientId#seq') and key of a client put, from its digest. */
export function parseWrite(digest: string): { key: string; value: string; session: string } | undefined {
  if (!digest.startsWith('w|')) return undefined;
  const parts = digest.split('|');
  if (parts.length !== 4) return undefined;
  return { key: parts[1]!, value: parts[2]!, session: parts[3]! };
}

export const CHAIN_START = 0x811c9dc5;

export function chainNext(chain: number, index: number, term: number, digest: string): number {
  return fnv1a(`${index}:${term}:${digest}`, chain);
}

// ---- the Raft storage ---------------------------------------------------------------------------

export interface SavePlan {
  /** Die before anything of this save is durable. */
  crashBefore: boolean;
  /** The save takes this long (a slow disk) before it is durable. */
  delayMs: number;
  /** Die right after it is durable, before the runtime hears so. */
  crashAfter: boolean;
}

export interface StorageHooks {
  plan(update: StorageUpdate): SavePlan;
  /** Resolves after `ms` on the process's event loop (never, if it dies meanwhile). */
  sleep(ms: number): Promise<void>;
  crashNow(why: string): void;
  /** Something became durable (a save or a compaction): the checkers look at the log again. */
  durable(): void;
  /** Mutation check: what a broken runtime would write instead of `hs`. */
  hardStateToWrite(hs: HardState): HardState;
}

/**
 * Entries [lo, hi) as durably held, for the checkers: read straight from the segment bytes when
 * the log is on (memory) disk, so that a check never starts a read the runtime would then see.
 */
export function durableEntries(storage: RaftStorage, lo: number, hi: number, fs: MemoryFs | undefined): Entry[] {
  if (!(storage instanceof FileRaftStorage) || !fs) return storage.entries(lo, hi);
  const { file, positions } = storage.locate(lo, hi);
  const bytes = fs.peek(file);
  if (!bytes) throw new Error(`the live segment ${file} is missing`);
  const out: Entry[] = [];
  const records = new Map<number, Entry[]>();
  for (let index = lo; index < hi; index++) {
    const at = positions[index - lo]!;
    let entries = records.get(at);
    if (!entries) {
      const parsed = parseRecords(bytes.subarray(at), () => true).records[0];
      const decoded = parsed ? decodeEntries(decodePayload(parsed.payload) ?? []) : 'no record';
      if (typeof decoded === 'string') throw new Error(`entry ${index}: record at ${at} of ${file}: ${decoded}`);
      entries = decoded;
      records.set(at, entries);
    }
    const e = entries.find((x) => x.index === index);
    if (!e) throw new Error(`entry ${index} is not in the record at ${at} of ${file}`);
    out.push(e);
  }
  return out;
}

export class SimRaftStorage implements RaftStorage {
  constructor(
    readonly inner: RaftStorage,
    private readonly proc: SimProcess,
    private readonly hooks: StorageHooks,
  ) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.inner.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.inner.entries(lo, hi, maxBytes);
  }
  confEntries(lo: number, hi: number): Entry[] {
    if (this.inner.confEntries) return this.inner.confEntries(lo, hi);
    return this.inner.entries(lo, hi).filter((e) => e.type === 'conf');
  }
  onEntriesLoaded(listener: () => void): void {
    this.inner.onEntriesLoaded?.(() => {
      if (this.proc.alive) listener();
    });
  }
  term(index: number): number {
    return this.inner.term(index);
  }

  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  snapshot(): Snapshot {
    return this.inner.snapshot();
  }

  async save(update: StorageUpdate): Promise<void> {
    if (!this.proc.alive) return never();
    const plan = this.hooks.plan(update);
    if (plan.crashBefore) this.hooks.crashNow('before persisting a Ready');
    if (!this.proc.alive) return never();
    if (plan.delayMs > 0) await this.hooks.sleep(plan.delayMs);
    if (!this.proc.alive) return never();
    const toWrite = update.hardState ? { ...update, hardState: this.hooks.hardStateToWrite(update.hardState) } : update;
    await this.inner.save(toWrite);
    this.hooks.durable();
    if (!this.proc.alive) return never();
    // Decided when the save began; after a slow disk the simulator may have stopped the faults
    // meanwhile, and then the node lives on (the crash point must not fire late).
    if (plan.crashAfter) this.hooks.crashNow('after persisting a Ready, before the runtime went on');
    if (!this.proc.alive) return never();
  }

  async compact(snapshot: Snapshot, retainEntries: number): Promise<void> {
    if (!this.proc.alive) return never();
    await this.inner.compact(snapshot, retainEntries);
    this.hooks.durable();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

// ---- the state machine ------------------------------------------------------------------------------

export interface AppliedEntry {
  prevApplied: number;
  entry: Entry;
  digest: string;
  chain: number;
  result: CommandResult | null;
}

export interface StateMachineObserver {
  applied(a: AppliedEntry): void;
  /** A snapshot whose data claims applied history `chain` (undefined: no trailer) replaces the state. */
  restoring(prevApplied: number, index: number, chain: number | undefined): void;
  /** A crash point right after an apply batch. */
  crashAfterApply(): boolean;
  crashNow(why: string): void;
}

const TRAILER = 0x5349_4d43; // 'SIMC'

// Streamed snapshots carry no trailer (the file holds keyspace pairs only): a snapshot's applied
// history is found by its content instead. A machine that streams a snapshot registers the chain
// under (index, hash of every pair); a restore hashes what it is fed and looks the chain up, so a
// restore of anything that was not exactly some machine's view at that index carries no history.
const streamedChains = new Map<string, number>();
const MAX_STREAMED_CHAINS = 4096;

function hashBytes(h: number, bytes: Uint8Array): number {
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return Math.imul(h ^ bytes.length, 0x01000193);
}

/** Passes `chunks` through, hashing them; `done` gets the hash once the last one was taken. */
async function* hashed(
  index: number,
  chunks: AsyncIterable<[Uint8Array, Uint8Array][]>,
  done: (key: string) => void,
): AsyncGenerator<[Uint8Array, Uint8Array][]> {
  let h = CHAIN_START ^ index;
  for await (const chunk of chunks) {
    for (const [k, v] of chunk) h = hashBytes(hashBytes(h, k), v);
    yield chunk;
  }
  done(`${index}:${h >>> 0}`);
}

export class ObservedStateMachine implements StateMachine {
  applied = 0;
  chain = CHAIN_START;
  private readonly chains = new Map<number, number>();
  private proc: SimProcess | undefined;
  private observer: StateMachineObserver | undefined;
  /** Mutation check 'early-reads': reads see the state from before the latest apply batch. */
  lagReads = false;
  private beforeLastBatch = new Map<string, KeyValue | undefined>();

  constructor(readonly inner: MemoryStateMachine) {}

  /** The incarnation that uses this state machine now. */
  attach(proc: SimProcess, observer: StateMachineObserver): void {
    this.proc = proc;
    this.observer = observer;
  }

  appliedIndex(): number {
    return this.inner.appliedIndex();
  }

  async apply(entries: Entry[]): Promise<(CommandResult | null)[]> {
    const proc = this.proc;
    const observer = this.observer;
    if (!proc?.alive || !observer) return never();
    if (this.lagReads) {
      const before = new Map<string, KeyValue | undefined>();
      for (const e of entries) {
        const w = parseWrite(digestOf(e));
        if (w && !before.has(w.key)) before.set(w.key, await this.inner.get(new TextEncoder().encode(w.key)));
      }
      this.beforeLastBatch = before;
    }
    const results = await this.inner.apply(entries);
    // Reported whatever happened to the process meanwhile: the batch is applied, atomically.
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index <= this.applied) continue;
      const digest = digestOf(e);
      const chain = chainNext(this.chain, e.index, e.term, digest);
      observer.applied({ prevApplied: this.applied, entry: e, digest, chain, result: results[i] ?? null });
      this.applied = e.index;
      this.chain = chain;
      this.chains.set(e.index, chain);
      this.chains.delete(e.index - 512);
    }
    if (!proc.alive) return never();
    if (observer.crashAfterApply()) observer.crashNow('after applying, before the runtime went on');
    if (!proc.alive) return never();
    return results;
  }

  async get(key: Uint8Array): Promise<KeyValue | undefined> {
    if (this.lagReads) {
      const k = decoder.decode(key);
      if (this.beforeLastBatch.has(k)) return this.beforeLastBatch.get(k);
    }
    return this.inner.get(key);
  }

  scan(options: ScanOptions): Promise<ScanResult> {
    return this.inner.scan(options);
  }

  onApply(listener: ApplyListener | undefined): void {
    this.inner.onApply(listener);
  }

  leases(): LeaseInfo[] {
    return this.inner.leases();
  }

  lease(id: number): LeaseInfo | undefined {
    return this.inner.lease(id);
  }

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    const atCall = { applied: this.applied, chain: this.chain };
    const snap = await this.inner.snapshot();
    const chain = snap.index === atCall.applied ? atCall.chain : this.chains.get(snap.index);
    if (chain === undefined) throw new Error(`simulator: no applied-history chain for snapshot index ${snap.index}`);
    const data = new Uint8Array(snap.data.length + 8);
    data.set(snap.data);
    const view = new DataView(data.buffer);
    view.setUint32(snap.data.length, chain);
    view.setUint32(snap.data.length + 4, TRAILER);
    return { index: snap.index, data };
  }

  async snapshotStream(): Promise<StateStream> {
    const atCall = { applied: this.applied, chain: this.chain };
    const stream = await this.inner.snapshotStream();
    const { index } = stream.applied;
    const chain = index === atCall.applied ? atCall.chain : this.chains.get(index);
    if (chain === undefined) throw new Error(`simulator: no applied-history chain for snapshot index ${index}`);
    const chunks = hashed(index, stream.chunks, (key) => {
      streamedChains.set(key, chain);
      if (streamedChains.size > MAX_STREAMED_CHAINS) streamedChains.delete(streamedChains.keys().next().value!);
    });
    return { applied: stream.applied, chunks };
  }

  async restoreStream(meta: { index: number; term: number }, chunks: AsyncIterable<[Uint8Array, Uint8Array][]>): Promise<void> {
    const proc = this.proc;
    const observer = this.observer;
    if (!proc?.alive || !observer) return never();
    let chain: number | undefined;
    // Reported after the last chunk was read and before the machine swaps the state in.
    const watched = hashed(meta.index, chunks, (key) => {
      chain = streamedChains.get(key);
      observer.restoring(this.applied, meta.index, chain);
    });
    await this.inner.restoreStream(meta, watched);
    this.applied = meta.index;
    this.chain = chain ?? CHAIN_START;
    this.chains.clear();
    this.chains.set(this.applied, this.chain);
    this.beforeLastBatch = new Map();
  }

  async restore(snapshot: Snapshot): Promise<void> {
    const proc = this.proc;
    if (!proc?.alive || !this.observer) return never();
    const d = snapshot.data;
    let chain: number | undefined;
    let data = d;
    if (d.length >= 8) {
      const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
      if (view.getUint32(d.length - 4) === TRAILER) {
        chain = view.getUint32(d.length - 8);
        data = d.subarray(0, d.length - 8);
      }
    }
    this.observer.restoring(this.applied, snapshot.meta.index, chain);
    await this.inner.restore({ meta: snapshot.meta, data });
    this.applied = snapshot.meta.index;
    this.chain = chain ?? CHAIN_START;
    this.chains.clear();
    this.chains.set(this.applied, this.chain);
    this.beforeLastBatch = new Map();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
