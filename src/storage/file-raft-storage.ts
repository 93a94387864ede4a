// The durable Raft log: one live append-only segment file of framed msgpack records, the latest
// snapshot in its own file, and an in-memory copy of the uncompacted log that serves every read.
//
// Segment layout: a header record [REC_HEADER, format, baseIndex, baseTerm, voters, learners], then
// entries records (each replaces the log suffix from its first index, exactly as save() does) and
// hard-state records. Compaction and snapshot installs write a fresh checkpoint segment (header,
// hard state, surviving entries) under a temp name, fsync it, rename it into place and delete the
// older segment, so disk use stays bounded by what the log still holds.
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ConfState, Entry, HardState, RaftLogger, Snapshot } from '../raft/types.js';
import { packr } from './codec.js';
import { InvalidStorageUpdateError, StorageClosedError, StorageCorruptionError, StorageFailedError } from './errors.js';
import { LogProjection, LogState, cloneConf, planCompaction } from './log-state.js';
import { LogStateReads } from './log-state-reads.js';
import type { RaftStorage, StorageUpdate } from './raft-storage.js';
import { type Fs, type FsFile, NODE_FS, syncDir } from './fs.js';
import { frameRecord, parseRecords } from './record-file.js';

export interface FileRaftStorageOptions {
  dir: string;
  /** Membership of a brand-new node; ignored once the directory holds state. */
  bootstrap: ConfState;
  logger?: RaftLogger;
  /** Called with the duration of every log fsync (metrics). */
  onFsync?: (ms: number) => void;
  /** fsyncs slower than this are warn-logged. Default 100 ms. */
  slowFsyncMs?: number;
  /** The filesystem (default: the real one). The simulator passes a MemoryFs and crashes it. */
  fs?: Fs;
}

const FORMAT = 1;
const REC_HEADER = 0;
const REC_ENTRIES = 1;
const REC_HARD_STATE = 2;
const SNAPSHOT_FILE = 'snapshot.snap';
const SEGMENT_RE = /^log-(\d{16})\.wal$/;
/** Checkpoint segments split entries into records of about this size. */
const CHECKPOINT_RECORD_BYTES = 4 << 20;
const TYPE_CODE = { normal: 0, conf: 1 } as const;

const noopLogger: RaftLogger = { info() {}, warn() {} };

function segmentName(seq: number): string {
  return `log-${String(seq).padStart(16, '0')}.wal`;
}

function entriesRecord(entries: readonly Entry[]): Buffer {
  return frameRecord(packr.pack([REC_ENTRIES, entries.map((e) => [e.index, e.term, TYPE_CODE[e.type], e.data])]));
}

/** Hard-state records carry a 5th field only while the node rebuilds, so others read as before. */
const RECOVERY_CODE = { pristine: 1, rebuilding: 2 } as const;

function hardStateRecord(hs: HardState): Buffer {
  const fields: unknown[] = [REC_HARD_STATE, hs.term, hs.vote, hs.commit];
  if (hs.recovery) fields.push(RECOVERY_CODE[hs.recovery]);
  return frameRecord(packr.pack(fields));
}

function headerRecord(baseIndex: number, baseTerm: number, conf: ConfState): Buffer {
  return frameRecord(packr.pack([REC_HEADER, FORMAT, baseIndex, baseTerm, conf.voters, conf.learners]));
}

/** Cheap pre-check used when resyncing after a bad record: payload is [kind, ...] with a known kind. */
function looksLikePayload(p: Buffer): boolean {
  return p.length >= 2 && p[0]! >= 0x92 && p[0]! <= 0x96 && p[1]! <= REC_HARD_STATE;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

type Job =
  | { kind: 'save'; update: StorageUpdate; resolve: () => void; reject: (err: unknown) => void }
  | { kind: 'compact'; snapshot: Snapshot; retain: number; resolve: () => void; reject: (err: unknown) => void };

export class FileRaftStorage extends LogStateReads implements RaftStorage {
  protected readonly state: LogState;
  private readonly logger: RaftLogger;
  private fd: FsFile | undefined;
  private readonly fs: Fs;
  private segmentSeq: number;
  private fileSize: number;
  /** Membership persisted in every segment header: the node's bootstrap conf. */
  private readonly bootstrapConf: ConfState;
  private queue: Job[] = [];
  private draining: Promise<void> | undefined;
  private failure: StorageFailedError | undefined;
  /** Snapshot-file writes run one at a time, outside the save queue, and only ever move forward. */
  private snapshotFileChain: Promise<unknown> = Promise.resolve();
  private snapshotFileIndex: number;
  private closed = false;

  private constructor(
    private readonly options: FileRaftStorageOptions,
    init: { state: LogState; fd: FsFile; seq: number; size: number; bootstrapConf: ConfState },
  ) {
    super();
    this.state = init.state;
    this.fd = init.fd;
    this.segmentSeq = init.seq;
    this.fileSize = init.size;
    this.bootstrapConf = init.bootstrapConf;
    this.logger = options.logger ?? noopLogger;
    this.fs = options.fs ?? NODE_FS;
    this.snapshotFileIndex = init.state.snap.meta.index;
  }

  static async open(options: FileRaftStorageOptions): Promise<FileRaftStorage> {
    return (await FileRaftStorage.inspect(options)).open();
  }

  /**
   * Reads the directory and validates the log without changing anything on disk: no bootstrap, no
   * torn-tail truncation, no temp-file cleanup, no checkpoint rewrite. Those happen in open() of
   * the result, so a caller can check the log against the rest of the data dir first and refuse to
   * start with every file exactly as it found it. A missing directory reads as a fresh one.
   */
  static async inspect(options: FileRaftStorageOptions): Promise<InspectedRaftLog> {
    const { dir } = options;
    const logger = options.logger ?? noopLogger;
    const fs = options.fs ?? NODE_FS;
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      names = [];
    }
    // Temp files are writes that never got renamed into place: never part of the durable state.
    const temps = names.filter((name) => name.endsWith('.tmp'));
    const segments = names
      .map((n) => SEGMENT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const snapshot = names.includes(SNAPSHOT_FILE) ? await readSnapshotFile(fs, join(dir, SNAPSHOT_FILE)) : undefined;
    const removeTemps = async () => {
      for (const name of temps) await fs.unlink(join(dir, name));
    };

    if (segments.length === 0) {
      if (snapshot) {
        throw new StorageCorruptionError(join(dir, SNAPSHOT_FILE), 0, 'a snapshot exists but the log segment is missing');
      }
      const state = new LogState(options.bootstrap);
      return {
        fresh: true,
        state,
        open: async () => {
          const created = await fs.mkdir(dir, { recursive: true });
          // A directory entry is durable only once its parent directory is fsynced: without this
          // a crash could take the whole new log (and the vote it will hold) with it.
          if (created !== undefined) {
            for (let d = dir; ; d = dirname(d)) {
              await syncDir(fs, dirname(d));
              if (d === created || dirname(d) === d) break;
            }
          }
          await removeTemps();
          const seq = 1;
          await writeCheckpoint(fs, dir, seq, state, options.bootstrap);
          const fd = await fs.open(join(dir, segmentName(seq)), 'r+');
          const size = (await fd.stat()).size;
          return new FileRaftStorage(options, { state, fd, seq, size, bootstrapConf: cloneConf(options.bootstrap) });
        },
      };
    }

    const seq = segments[segments.length - 1]!;
    const file = join(dir, segmentName(seq));
    const replayed = await replaySegment(fs, file, snapshot);
    const { state, bootstrapConf } = replayed;

    // A crash between writing a received snapshot and resetting the log leaves a log that does not
    // contain the snapshot's last entry: open() finishes the reset.
    let rewrite = false;
    if (snapshot) {
      const s = snapshot.meta;
      if (s.index < state.baseIndex) {
        throw new StorageCorruptionError(file, 0, `the log starts after index ${state.baseIndex} but the snapshot only covers up to ${s.index}`);
      }
      if (s.index > state.lastIndex() || state.term(s.index) !== s.term) {
        if (state.hardState.commit > s.index && state.hardState.commit <= state.lastIndex()) {
          throw new StorageCorruptionError(file, 0, `committed entry ${s.index} has term ${state.term(s.index)} but the snapshot says ${s.term}`);
        }
        state.resetTo(snapshot);
        rewrite = true;
      }
    }
    if (state.hardState.commit > state.lastIndex()) {
      throw new StorageCorruptionError(
        file,
        replayed.tornAt ?? replayed.size,
        `the hard state says index ${state.hardState.commit} is committed but the log ends at ${state.lastIndex()}` +
          (replayed.tornAt !== undefined ? ' after cutting a torn tail: committed entries were lost' : ''),
      );
    }
    return {
      fresh: false,
      state,
      open: async () => {
        await removeTemps();
        let size = replayed.size;
        if (replayed.tornAt !== undefined && !rewrite) {
          // An interrupted last write: nothing after it was ever acknowledged.
          const fd = await fs.open(file, 'r+');
          try {
            await fd.truncate(replayed.tornAt);
            await fd.sync();
          } finally {
            await fd.close();
          }
          logger.warn('log.torn_tail_truncated', { file, offset: replayed.tornAt, bytesDropped: replayed.fileBytes - replayed.tornAt });
        }
        let liveSeq = seq;
        if (rewrite) {
          liveSeq = seq + 1;
          await writeCheckpoint(fs, dir, liveSeq, state, bootstrapConf);
        }
        for (const old of segments) if (old !== liveSeq) await fs.unlink(join(dir, segmentName(old)));
        const fd = await fs.open(join(dir, segmentName(liveSeq)), 'r+');
        if (rewrite) size = (await fd.stat()).size;
        logger.info('log.opened', { dir, firstIndex: state.firstIndex(), lastIndex: state.lastIndex(), snapshotIndex: state.snap.meta.index });
        return new FileRaftStorage(options, { state, fd, seq: liveSeq, size, bootstrapConf });
      },
    };
  }

  // ---- LogStorage (reads see only what is durable) ----

  // ---- writes ----

  save(update: StorageUpdate): Promise<void> {
    return this.enqueue((resolve, reject) => ({ kind: 'save', update, resolve, reject }));
  }

  /**
   * The snapshot file (the whole state, possibly tens of MB) is written and fsynced OUTSIDE the
   * save queue: holding group commits for that long would stall the node's Ready loop, and with it
   * its heartbeats, long enough to trigger elections. Only the short log switch is exclusive. A
   * crash in between is safe: open() keeps the log, which still holds the snapshot's last entry.
   */
  async compact(snapshot: Snapshot, retainEntries: number): Promise<void> {
    if (this.closed) throw new StorageClosedError(`raft log in ${this.options.dir}`);
    if (this.failure) throw this.failure;
    if (planCompaction(this.state, snapshot, retainEntries) === undefined) return;
    if (!(await this.writeSnapshotFileInOrder(snapshot))) return;
    return this.enqueue((resolve, reject) => ({ kind: 'compact', snapshot, retain: retainEntries, resolve, reject }));
  }

  /** Write `snapshot` unless a file at least as new was written meanwhile. Returns whether it wrote. */
  private writeSnapshotFileInOrder(snapshot: Snapshot): Promise<boolean> {
    const write = async (): Promise<boolean> => {
      if (snapshot.meta.index <= this.snapshotFileIndex) return false;
      await this.writeSnapshotFile(snapshot);
      this.snapshotFileIndex = snapshot.meta.index;
      return true;
    };
    const result = this.snapshotFileChain.then(write);
    this.snapshotFileChain = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.draining;
    await this.fd?.close();
    this.fd = undefined;
  }

  private enqueue(make: (resolve: () => void, reject: (err: unknown) => void) => Job): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError(`raft log in ${this.options.dir}`));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.queue.push(make(resolve, reject));
      if (!this.draining) this.draining = this.drain();
    });
  }

  /**
   * Group commit: every save queued while the previous write+fsync ran is written and fsynced
   * together; each caller resolves only after the fsync that covers its data.
   */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'compact' || head.update?.snapshot) {
          this.queue.shift();
          await this.runExclusive(head);
        } else {
          let n = 1;
          while (n < this.queue.length) {
            const job = this.queue[n]!;
            if (job.kind !== 'save' || job.update?.snapshot) break;
            n++;
          }
          await this.writeGroup(this.queue.splice(0, n) as Extract<Job, { kind: 'save' }>[]);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private async writeGroup(jobs: Extract<Job, { kind: 'save' }>[]): Promise<void> {
    const projection = new LogProjection(this.state);
    const accepted: { job: (typeof jobs)[number]; entries: Entry[] }[] = [];
    const buffers: Buffer[] = [];
    for (const job of jobs) {
      try {
        const { entries } = projection.accept(job.update);
        if (entries.length > 0) buffers.push(entriesRecord(entries));
        if (job.update.hardState) buffers.push(hardStateRecord(job.update.hardState));
        accepted.push({ job, entries });
      } catch (err) {
        job.reject(err); // a bad update changes nothing; the rest of the group still goes ahead
      }
    }
    if (accepted.length === 0) return;
    try {
      // Entries always sync (an update that carries any is never sync: false); a group of
      // commit-only hard states is written and left to the next sync.
      const sync = accepted.some((a) => a.job.update.sync !== false || a.entries.length > 0);
      if (buffers.length > 0) await this.append(Buffer.concat(buffers), sync);
    } catch (err) {
      this.fail(
        err,
        accepted.map((a) => a.job),
      );
      return;
    }
    for (const { job, entries } of accepted) {
      this.state.append(entries);
      if (job.update.hardState) this.state.hardState = { ...job.update.hardState };
    }
    for (const { job } of accepted) job.resolve();
  }

  private async runExclusive(job: Job): Promise<void> {
    try {
      if (job.kind === 'compact') await this.runCompact(job.snapshot, job.retain);
      else await this.runSnapshotSave(job.update);
      job.resolve();
    } catch (err) {
      if (err instanceof InvalidStorageUpdateError) job.reject(err);
      else this.fail(err, [job]);
    }
  }

  private async runSnapshotSave(update: StorageUpdate): Promise<void> {
    const projection = new LogProjection(this.state);
    const { snapshot, entries } = projection.accept(update);
    if (!snapshot) {
      // Stale snapshot: store the rest of the update like any other save.
      return new Promise<void>((resolve, reject) => this.writeGroup([{ kind: 'save', update: { ...update, snapshot: undefined }, resolve, reject }]));
    }
    await this.writeSnapshotFileInOrder(snapshot);
    const next = new LogState(this.bootstrapConf);
    next.resetTo(snapshot);
    next.append(entries);
    next.hardState = { ...(update.hardState ?? this.state.hardState) };
    await this.rotateTo(next);
    this.state.resetTo(snapshot);
    this.state.append(entries);
    this.state.hardState = next.hardState;
    this.logger.info('log.snapshot_installed', { index: snapshot.meta.index, term: snapshot.meta.term });
  }

  private async runCompact(snapshot: Snapshot, retain: number): Promise<void> {
    const cut = planCompaction(this.state, snapshot, retain);
    if (cut === undefined) return; // not newer than the snapshot we hold
    const { index } = snapshot.meta;
    // The snapshot file was written by compact() before this job was queued.
    if (cut > this.state.baseIndex) {
      const next = new LogState(this.bootstrapConf);
      next.baseIndex = cut;
      next.baseTerm = this.state.term(cut);
      next.ents = this.state.ents.slice(cut - this.state.baseIndex);
      next.hardState = this.state.hardState;
      await this.rotateTo(next);
    }
    this.state.snap = snapshot;
    this.state.compactTo(cut);
    this.logger.info('log.compacted', { snapshotIndex: index, firstIndex: this.state.firstIndex(), lastIndex: this.state.lastIndex() });
  }

  /** Make `next` the whole durable log: a new checkpoint segment replaces the live one. */
  private async rotateTo(next: LogState): Promise<void> {
    const seq = this.segmentSeq + 1;
    await writeCheckpoint(this.fs, this.options.dir, seq, next, this.bootstrapConf);
    const fd = await this.fs.open(join(this.options.dir, segmentName(seq)), 'r+');
    const size = (await fd.stat()).size;
    const oldFd = this.fd;
    const oldSeq = this.segmentSeq;
    this.fd = fd;
    this.segmentSeq = seq;
    this.fileSize = size;
    await oldFd?.close();
    // Safe to lose on a crash: open() keeps only the newest segment and deletes the rest.
    await this.fs.unlink(join(this.options.dir, segmentName(oldSeq)));
  }

  private async writeSnapshotFile(snapshot: Snapshot): Promise<void> {
    const { meta, data } = snapshot;
    const record = frameRecord(packr.pack([meta.index, meta.term, meta.conf.voters, meta.conf.learners, data]));
    await writeFileDurably(this.fs, this.options.dir, SNAPSHOT_FILE, [record]);
  }

  private async append(buf: Buffer, sync: boolean): Promise<void> {
    const fd = this.fd;
    if (!fd) throw new StorageClosedError(`raft log in ${this.options.dir}`);
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await fd.write(buf, written, buf.length - written, this.fileSize + written);
      written += bytesWritten;
    }
    if (!sync) {
      this.fileSize += buf.length;
      return;
    }
    const started = performance.now();
    await fd.datasync();
    const ms = performance.now() - started;
    this.fileSize += buf.length;
    this.options.onFsync?.(ms);
    if (ms > (this.options.slowFsyncMs ?? 100)) this.logger.warn('log.slow_fsync', { ms: Math.round(ms), bytes: buf.length });
  }

  /** A failed write or fsync leaves the file in an unknown state: stop accepting writes. */
  private fail(err: unknown, jobs: Job[]): void {
    this.failure ??= new StorageFailedError(this.options.dir, err);
    this.logger.warn('log.write_failed', { dir: this.options.dir, error: String(err) });
    for (const job of [...jobs, ...this.queue.splice(0)]) job.reject(this.failure);
  }
}

/** Write `name` atomically and durably: temp file, fsync, rename, fsync the directory. */
async function writeFileDurably(fs: Fs, dir: string, name: string, buffers: Buffer[]): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fd = await fs.open(tmp, 'w');
  try {
    for (const b of buffers) {
      let written = 0;
      while (written < b.length) written += (await fd.write(b, written, b.length - written)).bytesWritten;
    }
    await fd.sync();
  } finally {
    await fd.close();
  }
  await fs.rename(tmp, join(dir, name));
  await syncDir(fs, dir);
}

async function writeCheckpoint(fs: Fs, dir: string, seq: number, state: LogState, conf: ConfState): Promise<void> {
  const buffers: Buffer[] = [headerRecord(state.baseIndex, state.baseTerm, conf), hardStateRecord(state.hardState)];
  let chunk: Entry[] = [];
  let bytes = 0;
  for (const e of state.ents) {
    chunk.push(e);
    bytes += e.data.length + 16;
    if (bytes >= CHECKPOINT_RECORD_BYTES) {
      buffers.push(entriesRecord(chunk));
      chunk = [];
      bytes = 0;
    }
  }
  if (chunk.length > 0) buffers.push(entriesRecord(chunk));
  await writeFileDurably(fs, dir, segmentName(seq), buffers);
}

async function readSnapshotFile(fs: Fs, file: string): Promise<Snapshot> {
  const buf = await fs.readFile(file);
  const parsed = parseRecords(buf, () => true);
  // Written to a temp name and renamed only after fsync, so any damage here is real corruption.
  if (parsed.records.length !== 1 || parsed.badOffset !== undefined) {
    throw new StorageCorruptionError(file, parsed.badOffset ?? 0, 'the snapshot file is damaged (checksum or length mismatch)');
  }
  let a: unknown;
  try {
    a = packr.unpack(parsed.records[0]!.payload);
  } catch {
    a = undefined;
  }
  if (!Array.isArray(a) || a.length !== 5 || !isInt(a[0]) || !isInt(a[1]) || !isIdList(a[2]) || !isIdList(a[3]) || !(a[4] instanceof Uint8Array)) {
    throw new StorageCorruptionError(file, 0, 'the snapshot record does not have the expected shape');
  }
  return { meta: { index: a[0], term: a[1], conf: { voters: a[2], learners: a[3] } }, data: new Uint8Array(a[4]) };
}

interface Replayed {
  state: LogState;
  bootstrapConf: ConfState;
  /** Bytes of valid records (where appends continue). */
  size: number;
  /** The file's length as found. */
  fileBytes: number;
  /** Where a torn last write starts, when there is one. */
  tornAt?: number;
}

/** What FileRaftStorage.inspect found; nothing has been written yet. */
export interface InspectedRaftLog {
  /** No log segment: open() bootstraps a new log with the configured membership. */
  readonly fresh: boolean;
  /** The durable state as open() will start from (hard state, log, snapshot). Read only. */
  readonly state: Pick<LogState, 'hardState' | 'snap' | 'firstIndex' | 'lastIndex'>;
  /** Applies the repairs (bootstrap, torn tail, temp files, checkpoint) and opens the log for writing. */
  open(): Promise<FileRaftStorage>;
}

/** Reads a segment (it changes nothing: a torn tail is reported in tornAt, for open() to cut). */
async function replaySegment(fs: Fs, file: string, snapshot: Snapshot | undefined): Promise<Replayed> {
  const buf = await fs.readFile(file);
  const parsed = parseRecords(buf, looksLikePayload);
  let size = buf.length;
  if (parsed.badOffset !== undefined) {
    if (parsed.validAfterBad) {
      throw new StorageCorruptionError(file, parsed.badOffset, 'damaged record (bad length or checksum) followed by valid records');
    }
    if (parsed.badOffset === 0) throw new StorageCorruptionError(file, 0, 'the segment header record is damaged');
    size = parsed.badOffset;
  }
  const records = parsed.records;
  const corrupt = (offset: number, detail: string) => new StorageCorruptionError(file, offset, detail);
  const decode = (offset: number, payload: Buffer): unknown[] => {
    try {
      const v = packr.unpack(payload);
      if (Array.isArray(v)) return v;
    } catch {
      // fall through
    }
    throw corrupt(offset, 'record checksum is valid but its payload does not decode');
  };

  const first = records[0];
  if (!first) throw corrupt(0, 'the segment has no header record');
  const h = decode(first.offset, first.payload);
  if (h[0] !== REC_HEADER || h[1] !== FORMAT || !isInt(h[2]) || !isInt(h[3]) || !isIdList(h[4]) || !isIdList(h[5])) {
    throw corrupt(0, `the first record is not a format-${FORMAT} segment header`);
  }
  const bootstrapConf: ConfState = { voters: h[4], learners: h[5] };
  const state = new LogState(bootstrapConf);
  if (snapshot) state.snap = snapshot;
  else if (h[2] > 0) throw corrupt(0, `the log starts after index ${h[2]} but no snapshot file covers it`);
  state.baseIndex = h[2];
  state.baseTerm = h[3];

  for (const { offset, payload } of records.slice(1)) {
    const r = decode(offset, payload);
    if (r[0] === REC_HARD_STATE) {
      if ((r.length !== 4 && r.length !== 5) || !isInt(r[1]) || typeof r[2] !== 'string' || !isInt(r[3])) throw corrupt(offset, 'malformed hard-state record');
      const recovery = r.length === 5 ? (['pristine', 'rebuilding'] as const).find((k) => RECOVERY_CODE[k] === r[4]) : undefined;
      if (r.length === 5 && !recovery) throw corrupt(offset, `unknown recovery code ${String(r[4])} in a hard-state record`);
      state.hardState = { term: r[1], vote: r[2], commit: r[3] };
      if (recovery) state.hardState.recovery = recovery;
    } else if (r[0] === REC_ENTRIES) {
      const list = r[1];
      if (r.length !== 2 || !Array.isArray(list) || list.length === 0) throw corrupt(offset, 'malformed entries record');
      const entries: Entry[] = [];
      for (const e of list as unknown[]) {
        if (!Array.isArray(e) || e.length !== 4 || !isInt(e[0]) || !isInt(e[1]) || (e[2] !== 0 && e[2] !== 1) || !(e[3] instanceof Uint8Array)) {
          throw corrupt(offset, 'malformed entry in entries record');
        }
        const prev = entries[entries.length - 1];
        if (prev && e[0] !== prev.index + 1) throw corrupt(offset, `entries record is not contiguous (${prev.index} then ${e[0]})`);
        // Copy so the entry does not pin the whole file buffer in memory.
        entries.push({ index: e[0], term: e[1], type: e[2] === 1 ? 'conf' : 'normal', data: new Uint8Array(e[3]) });
      }
      const firstIndex = entries[0]!.index;
      if (firstIndex <= state.baseIndex) throw corrupt(offset, `entry ${firstIndex} is at or below the segment base ${state.baseIndex}`);
      if (firstIndex > state.lastIndex() + 1) {
        throw corrupt(offset, `gap in the log: entry ${firstIndex} follows last index ${state.lastIndex()}`);
      }
      state.append(entries);
    } else {
      throw corrupt(offset, `unknown record kind ${String(r[0])}`);
    }
  }
  return { state, bootstrapConf, size, fileBytes: buf.length, tornAt: parsed.badOffset };
}
