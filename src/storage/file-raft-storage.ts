// The durable Raft log: one live append-only segment file of framed msgpack records, the latest
// snapshot in its own file, and in memory the terms and record offsets of every entry but the
// entries themselves only for the newest `memoryLogBytes` (plus conf entries): older ones are read
// back from the segment on demand (cold-log-reader.ts).
//
// Segment layout: a header record [REC_HEADER, format, baseIndex, baseTerm, voters, learners], then
// entries records (each replaces the log suffix from its first index, exactly as save() does) and
// hard-state records. Compaction and snapshot installs write a fresh checkpoint segment (header,
// hard state, surviving entries) under a temp name, fsync it, rename it into place and delete the
// older segment, so disk use stays bounded by what the log still holds. A compaction copies the
// surviving entries while saves go on and holds saves only to copy what they appended meanwhile.
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ConfState, Entry, HardState, RaftLogger, Snapshot } from '../raft/types.js';
import { packr } from './codec.js';
import { ColdLogReader, readLogEntries } from './cold-log-reader.js';
import { InvalidStorageUpdateError, StorageClosedError, StorageCorruptionError, StorageFailedError } from './errors.js';
import {
  REC_ENTRIES,
  REC_HARD_STATE,
  REC_HEADER,
  RECOVERY_CODE,
  SEGMENT_FORMAT,
  decodeEntries,
  decodePayload,
  entriesRecord,
  hardStateRecord,
  headerRecord,
  isInt,
  looksLikePayload,
} from './log-records.js';
import { LogProjection, LogState, cloneConf, planCompaction } from './log-state.js';
import { LogStateReads } from './log-state-reads.js';
import type { RaftStorage, StorageUpdate } from './raft-storage.js';
import { type Fs, type FsFile, NODE_FS, syncDir } from './fs.js';
import { frameRecord, parseRecords, scanRecordFile } from './record-file.js';

export interface FileRaftStorageOptions {
  dir: string;
  /** Membership of a brand-new node; ignored once the directory holds state. */
  bootstrap: ConfState;
  logger?: RaftLogger;
  /** Called with the duration of every durable log write (metrics: what an fsync costs). */
  onFsync?: (ms: number) => void;
  /** fsyncs slower than this are warn-logged. Default 100 ms. */
  slowFsyncMs?: number;
  /** The filesystem (default: the real one). The simulator passes a MemoryFs and crashes it. */
  fs?: Fs;
  /**
   * Bytes of the newest log entries kept in memory (default 32 MiB); older ones are read back from
   * the segment file when a lagging follower or a late apply needs them. 0 keeps none.
   */
  memoryLogBytes?: number;
  /** Bytes read at once when older entries are read back (default 8 MiB). */
  coldReadBytes?: number;
}

export const FILE_LOG_DEFAULTS = { memoryLogBytes: 32 << 20, coldReadBytes: 8 << 20 } as const;

const SNAPSHOT_FILE = 'snapshot.snap';
/** The live segment: appends are durable when their write returns (see append). */
const LIVE_SEGMENT_FLAGS = 'r+dsync';
const SEGMENT_RE = /^log-(\d{16})\.wal$/;
/** Checkpoint segments split entries into records of about this size. */
const CHECKPOINT_RECORD_BYTES = 4 << 20;

const noopLogger: RaftLogger = { info() {}, warn() {} };

function segmentName(seq: number): string {
  return `log-${String(seq).padStart(16, '0')}.wal`;
}

const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** A compaction's copy of the surviving entries into the next segment, made while saves go on. */
interface CompactionCopy {
  cut: number;
  seq: number;
  tmp: string;
  file: FsFile;
  /** Bytes written to the copy so far. */
  size: number;
  /** Offsets in the copy of entries cut + 1 .. copiedTo. */
  positions: number[];
  copiedTo: number;
  /** Lowest index a save wrote since the copy began: from there on the copy is redone under the queue. */
  dirtyFrom: number;
  /** FileRaftStorage.resets when it began: a snapshot install meanwhile makes it moot. */
  resets: number;
}

type Job =
  | { kind: 'save'; update: StorageUpdate; resolve: () => void; reject: (err: unknown) => void }
  | { kind: 'compact'; snapshot: Snapshot; retain: number; copy?: CompactionCopy; resolve: () => void; reject: (err: unknown) => void };

/** A compaction copy given up because the log was reset or closed meanwhile. */
class CopyAbandoned extends Error {
  override name = 'CopyAbandoned';
}

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
  /** Highest segment number used or reserved (a compaction copy reserves its own). */
  private lastSeq: number;
  /** Snapshot installs so far (each resets the log). */
  private resets = 0;
  private copy: CompactionCopy | undefined;
  /** state.hardState holds a commit index that no record in the live segment has yet (see writeGroup). */
  private hardStateUnwritten = false;
  private compactionChain: Promise<unknown> = Promise.resolve();
  private readonly cold: ColdLogReader;
  private entriesLoadedListener: (() => void) | undefined;

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
    this.lastSeq = init.seq;
    this.cold = new ColdLogReader({
      state: this.state,
      file: () => (this.fd ? { file: this.fd, name: join(options.dir, segmentName(this.segmentSeq)) } : undefined),
      readBytes: options.coldReadBytes ?? FILE_LOG_DEFAULTS.coldReadBytes,
      onLoaded: () => this.entriesLoadedListener?.(),
    });
    this.state.cold = this.cold;
  }

  /**
   * Where entries [lo, hi) are: the live segment and each entry's record offset. For diagnostics
   * and the simulator's checkers, which read the durable log without going through the core's path.
   */
  locate(lo: number, hi: number): { file: string; positions: number[] } {
    const base = this.state.baseIndex;
    const positions = (this.state.positions ?? []).slice(Math.max(0, lo - base - 1), Math.max(0, hi - base - 1));
    return { file: join(this.options.dir, segmentName(this.segmentSeq)), positions };
  }

  /** `listener` runs when entries the core asked for were read back from disk (see LogStorage). */
  onEntriesLoaded(listener: () => void): void {
    this.entriesLoadedListener = listener;
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
      const state = newLogState(options.bootstrap, options);
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
          await writeCheckpoint(fs, dir, seq, state.baseIndex, state.baseTerm, state.hardState, [], options.bootstrap);
          const fd = await fs.open(join(dir, segmentName(seq)), LIVE_SEGMENT_FLAGS);
          const size = (await fd.stat()).size;
          return new FileRaftStorage(options, { state, fd, seq, size, bootstrapConf: cloneConf(options.bootstrap) });
        },
      };
    }

    const seq = segments[segments.length - 1]!;
    const file = join(dir, segmentName(seq));
    const replayed = await replaySegment(fs, file, snapshot, options);
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
          await writeCheckpoint(fs, dir, liveSeq, state.baseIndex, state.baseTerm, state.hardState, [], bootstrapConf);
        }
        for (const old of segments) if (old !== liveSeq) await fs.unlink(join(dir, segmentName(old)));
        const fd = await fs.open(join(dir, segmentName(liveSeq)), LIVE_SEGMENT_FLAGS);
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
    const run = this.compactionChain.then(() => this.compactBehind(snapshot, retainEntries));
    this.compactionChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Copy the entries that survive the compaction into the next segment while saves go on, then
   * switch to it under the save queue (which only copies what was written meanwhile).
   */
  private async compactBehind(snapshot: Snapshot, retain: number): Promise<void> {
    if (this.closed) throw new StorageClosedError(`raft log in ${this.options.dir}`);
    if (this.failure) throw this.failure;
    const cut = planCompaction(this.state, snapshot, retain);
    if (cut === undefined) return;
    let copy: CompactionCopy | undefined;
    if (cut > this.state.baseIndex) {
      try {
        copy = await this.copySurvivors(cut);
      } catch (err) {
        if (err instanceof CopyAbandoned) return;
        throw err;
      }
    }
    return this.enqueue((resolve, reject) => ({ kind: 'compact', snapshot, retain, copy, resolve, reject }));
  }

  private async copySurvivors(cut: number): Promise<CompactionCopy> {
    const seq = ++this.lastSeq;
    const tmp = join(this.options.dir, `${segmentName(seq)}.tmp`);
    const file = await this.fs.open(tmp, 'w');
    const copy: CompactionCopy = { cut, seq, tmp, file, size: 0, positions: [], copiedTo: cut, dirtyFrom: Infinity, resets: this.resets };
    this.copy = copy;
    try {
      await this.writeCopy(copy, [headerRecord(cut, this.state.term(cut), this.bootstrapConf), hardStateRecord(this.state.hardState)]);
      const last = this.state.lastIndex();
      while (copy.copiedTo < last) {
        if (this.closed || this.resets !== copy.resets) throw new CopyAbandoned();
        const lo = copy.copiedTo + 1;
        if (lo >= copy.dirtyFrom || lo > this.state.lastIndex()) break;
        const generation = this.state.generation;
        let entries: Entry[];
        try {
          entries = await this.readDurable(lo, Math.min(last, this.state.lastIndex()) + 1, CHECKPOINT_RECORD_BYTES);
        } catch (err) {
          if (generation !== this.state.generation) break; // raced a save that replaced entries: redone below
          throw err;
        }
        await this.copyEntries(copy, entries);
      }
      // The long fsync, outside the save queue; the switch syncs only what it adds.
      await file.sync();
      return copy;
    } catch (err) {
      await this.discardCopy(copy);
      throw err;
    }
  }

  /** Entries [lo, hi) up to about maxBytes, from memory or read back from the segment. */
  private async readDurable(lo: number, hi: number, maxBytes: number): Promise<Entry[]> {
    if (lo >= this.state.firstHotIndex()) return this.state.hotEntries(lo, hi, maxBytes);
    const fd = this.fd;
    if (!fd) throw new StorageClosedError(`raft log in ${this.options.dir}`);
    const upto = Math.min(hi, this.state.firstHotIndex());
    return readLogEntries(fd, join(this.options.dir, segmentName(this.segmentSeq)), this.state, lo, upto, maxBytes, CHECKPOINT_RECORD_BYTES);
  }

  private async copyEntries(copy: CompactionCopy, entries: Entry[]): Promise<void> {
    const offset = copy.size;
    await this.writeCopy(copy, [entriesRecord(entries)]);
    for (let i = 0; i < entries.length; i++) copy.positions.push(offset);
    copy.copiedTo = entries[entries.length - 1]!.index;
  }

  private async writeCopy(copy: CompactionCopy, buffers: Buffer[]): Promise<void> {
    const buf = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
    let written = 0;
    while (written < buf.length) written += (await copy.file.write(buf, written, buf.length - written, copy.size + written)).bytesWritten;
    copy.size += buf.length;
  }

  private async discardCopy(copy: CompactionCopy): Promise<void> {
    if (this.copy === copy) this.copy = undefined;
    await copy.file.close().catch(() => undefined);
    await this.fs.unlink(copy.tmp).catch(() => undefined);
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
    await this.compactionChain;
    await this.draining;
    await this.cold.idle();
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
    const accepted: { job: (typeof jobs)[number]; entries: Entry[]; position: number }[] = [];
    for (const job of jobs) {
      try {
        accepted.push({ job, entries: projection.accept(job.update).entries, position: 0 });
      } catch (err) {
        job.reject(err); // a bad update changes nothing; the rest of the group still goes ahead
      }
    }
    if (accepted.length === 0) return;
    // A group of commit-only hard states is not written at all: the commit index need not survive a
    // crash (see StorageUpdate.sync), so it costs no I/O and goes to disk in front of the next
    // synced write. Entries, and a term, vote or recovery state that changed, always sync.
    let hardState = this.state.hardState;
    let sync = false;
    for (const { job, entries } of accepted) {
      const next = job.update.hardState;
      if (job.update.sync !== false || entries.length > 0 || (next && !onlyCommitMoved(hardState, next))) sync = true;
      if (next) hardState = next;
    }
    if (!sync) {
      this.state.hardState = { ...hardState };
      this.hardStateUnwritten = true;
      for (const { job } of accepted) job.resolve();
      return;
    }
    const buffers: Buffer[] = [];
    let offset = this.fileSize;
    const push = (record: Buffer) => {
      buffers.push(record);
      offset += record.length;
    };
    if (this.hardStateUnwritten) push(hardStateRecord(this.state.hardState));
    for (const a of accepted) {
      a.position = offset;
      if (a.entries.length > 0) push(entriesRecord(a.entries));
      if (a.job.update.hardState) push(hardStateRecord(a.job.update.hardState));
    }
    try {
      if (buffers.length > 0) await this.append(Buffer.concat(buffers));
    } catch (err) {
      this.fail(
        err,
        accepted.map((a) => a.job),
      );
      return;
    }
    this.hardStateUnwritten = false;
    for (const { job, entries, position } of accepted) {
      this.state.append(entries, position);
      if (entries.length > 0 && this.copy) this.copy.dirtyFrom = Math.min(this.copy.dirtyFrom, entries[0]!.index);
      if (job.update.hardState) this.state.hardState = { ...job.update.hardState };
    }
    for (const { job } of accepted) job.resolve();
  }

  private async runExclusive(job: Job): Promise<void> {
    try {
      if (job.kind === 'compact') await this.runCompact(job.snapshot, job.retain, job.copy);
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
    const hardState = { ...(update.hardState ?? this.state.hardState) };
    const seq = ++this.lastSeq;
    const { meta } = snapshot;
    const positions = await writeCheckpoint(this.fs, this.options.dir, seq, meta.index, meta.term, hardState, entries, this.bootstrapConf);
    this.resets++;
    await this.switchTo(seq, () => {
      this.state.resetTo(snapshot);
      this.state.append(entries, positions);
      this.state.hardState = hardState;
    });
    this.logger.info('log.snapshot_installed', { index: snapshot.meta.index, term: snapshot.meta.term });
  }

  private async runCompact(snapshot: Snapshot, retain: number, copy: CompactionCopy | undefined): Promise<void> {
    const cut = planCompaction(this.state, snapshot, retain);
    if (cut === undefined || (copy && (copy.resets !== this.resets || copy.cut !== cut))) {
      if (copy) await this.discardCopy(copy); // not newer than the snapshot we hold, or the log was reset
      return;
    }
    const { index } = snapshot.meta;
    // The snapshot file was written by compact() before this job was queued.
    if (copy && cut > this.state.baseIndex) {
      this.copy = undefined;
      try {
        // What saves wrote since the copy began (usually a few records, in memory).
        const from = Math.min(copy.dirtyFrom, copy.copiedTo + 1);
        copy.positions.length = from - cut - 1;
        copy.copiedTo = from - 1;
        while (copy.copiedTo < this.state.lastIndex()) {
          await this.copyEntries(copy, await this.readDurable(copy.copiedTo + 1, this.state.lastIndex() + 1, CHECKPOINT_RECORD_BYTES));
        }
        await this.writeCopy(copy, [hardStateRecord(this.state.hardState)]);
        await copy.file.sync();
        await copy.file.close();
        await this.fs.rename(copy.tmp, join(this.options.dir, segmentName(copy.seq)));
        await syncDir(this.fs, this.options.dir);
      } catch (err) {
        await this.discardCopy(copy);
        throw err;
      }
      await this.switchTo(copy.seq, () => {
        this.state.snap = snapshot;
        this.state.compactTo(cut);
        this.state.replacePositions(copy.positions);
      });
    } else {
      if (copy) await this.discardCopy(copy);
      this.state.snap = snapshot;
      this.state.compactTo(cut);
    }
    this.logger.info('log.compacted', { snapshotIndex: index, firstIndex: this.state.firstIndex(), lastIndex: this.state.lastIndex() });
  }

  /** Segment `seq` (durable, in place) becomes the live one; `adopt` updates the log to match it. */
  private async switchTo(seq: number, adopt: () => void): Promise<void> {
    const fd = await this.fs.open(join(this.options.dir, segmentName(seq)), LIVE_SEGMENT_FLAGS);
    const size = (await fd.stat()).size;
    const oldFd = this.fd;
    const oldSeq = this.segmentSeq;
    this.fd = fd;
    this.segmentSeq = seq;
    this.fileSize = size;
    adopt();
    await this.cold.idle(); // a read of older entries may still use the old file
    await oldFd?.close();
    // Safe to lose on a crash: open() keeps only the newest segment and deletes the rest.
    await this.fs.unlink(join(this.options.dir, segmentName(oldSeq)));
  }

  private async writeSnapshotFile(snapshot: Snapshot): Promise<void> {
    const { meta, data } = snapshot;
    const record = frameRecord(packr.pack([meta.index, meta.term, meta.conf.voters, meta.conf.learners, data]));
    await writeFileDurably(this.fs, this.options.dir, SNAPSHOT_FILE, [record]);
  }

  /**
   * Writes `buf` at the end of the live segment, durably: the segment is open with O_DSYNC, so each
   * write returns once its data (and the file's new size) is on disk, in one system call.
   */
  private async append(buf: Buffer): Promise<void> {
    const fd = this.fd;
    if (!fd) throw new StorageClosedError(`raft log in ${this.options.dir}`);
    const started = performance.now();
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await fd.write(buf, written, buf.length - written, this.fileSize + written);
      written += bytesWritten;
    }
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

/** `next` differs from `prev` in the commit index alone. */
function onlyCommitMoved(prev: HardState, next: HardState): boolean {
  return next.term === prev.term && next.vote === prev.vote && next.recovery === prev.recovery;
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

/** Writes segment `seq` durably with these entries; returns the record offset of each entry. */
async function writeCheckpoint(
  fs: Fs,
  dir: string,
  seq: number,
  baseIndex: number,
  baseTerm: number,
  hardState: HardState,
  entries: readonly Entry[],
  conf: ConfState,
): Promise<number[]> {
  const buffers: Buffer[] = [headerRecord(baseIndex, baseTerm, conf), hardStateRecord(hardState)];
  let offset = buffers[0]!.length + buffers[1]!.length;
  const positions: number[] = [];
  let chunk: Entry[] = [];
  let bytes = 0;
  const flush = () => {
    const record = entriesRecord(chunk);
    for (let i = 0; i < chunk.length; i++) positions.push(offset);
    buffers.push(record);
    offset += record.length;
    chunk = [];
    bytes = 0;
  };
  for (const e of entries) {
    chunk.push(e);
    bytes += e.data.length + 16;
    if (bytes >= CHECKPOINT_RECORD_BYTES) flush();
  }
  if (chunk.length > 0) flush();
  await writeFileDurably(fs, dir, segmentName(seq), buffers);
  return positions;
}

function newLogState(conf: ConfState, options: FileRaftStorageOptions): LogState {
  const state = new LogState(conf);
  state.positions = [];
  state.hotBudget = options.memoryLogBytes ?? FILE_LOG_DEFAULTS.memoryLogBytes;
  return state;
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

/** Reads a segment in pieces (it changes nothing: a torn tail is reported in tornAt, for open() to cut). */
async function replaySegment(fs: Fs, file: string, snapshot: Snapshot | undefined, options: FileRaftStorageOptions): Promise<Replayed> {
  const corrupt = (offset: number, detail: string) => new StorageCorruptionError(file, offset, detail);
  let state: LogState | undefined;
  let bootstrapConf: ConfState | undefined;
  let failure: Error | undefined;
  const onRecord = (offset: number, payload: Buffer): void => {
    const r = decodePayload(payload);
    if (!r) throw corrupt(offset, 'record checksum is valid but its payload does not decode');
    if (!state) {
      if (r[0] !== REC_HEADER || r[1] !== SEGMENT_FORMAT || !isInt(r[2]) || !isInt(r[3]) || !isIdList(r[4]) || !isIdList(r[5])) {
        throw corrupt(0, `the first record is not a format-${SEGMENT_FORMAT} segment header`);
      }
      bootstrapConf = { voters: r[4], learners: r[5] };
      state = newLogState(bootstrapConf, options);
      if (snapshot) state.snap = snapshot;
      else if (r[2] > 0) throw corrupt(0, `the log starts after index ${r[2]} but no snapshot file covers it`);
      state.startAfter(r[2], r[3]);
      return;
    }
    if (r[0] === REC_HARD_STATE) {
      if ((r.length !== 4 && r.length !== 5) || !isInt(r[1]) || typeof r[2] !== 'string' || !isInt(r[3])) throw corrupt(offset, 'malformed hard-state record');
      const recovery = r.length === 5 ? (['pristine', 'rebuilding'] as const).find((k) => RECOVERY_CODE[k] === r[4]) : undefined;
      if (r.length === 5 && !recovery) throw corrupt(offset, `unknown recovery code ${String(r[4])} in a hard-state record`);
      state.hardState = { term: r[1], vote: r[2], commit: r[3] };
      if (recovery) state.hardState.recovery = recovery;
    } else if (r[0] === REC_ENTRIES) {
      const entries = decodeEntries(r);
      if (typeof entries === 'string') throw corrupt(offset, entries);
      const firstIndex = entries[0]!.index;
      if (firstIndex <= state.baseIndex) throw corrupt(offset, `entry ${firstIndex} is at or below the segment base ${state.baseIndex}`);
      if (firstIndex > state.lastIndex() + 1) {
        throw corrupt(offset, `gap in the log: entry ${firstIndex} follows last index ${state.lastIndex()}`);
      }
      state.append(entries, offset);
    } else {
      throw corrupt(offset, `unknown record kind ${String(r[0])}`);
    }
  };
  const fd = await fs.open(file, 'r');
  let fileBytes: number;
  let scan: Awaited<ReturnType<typeof scanRecordFile>>;
  try {
    fileBytes = (await fd.stat()).size;
    // The first malformed record is reported after the framing check, as a whole-file parse would.
    scan = await scanRecordFile(
      fd,
      fileBytes,
      (offset, payload) => {
        if (failure) return;
        try {
          onRecord(offset, payload);
        } catch (err) {
          failure = err as Error;
        }
      },
      looksLikePayload,
    );
  } finally {
    await fd.close();
  }
  let size = fileBytes;
  if (scan.badOffset !== undefined) {
    if (scan.validAfterBad) {
      throw new StorageCorruptionError(file, scan.badOffset, 'damaged record (bad length or checksum) followed by valid records');
    }
    if (scan.badOffset === 0) throw new StorageCorruptionError(file, 0, 'the segment header record is damaged');
    size = scan.badOffset;
  }
  if (failure) throw failure;
  if (!state || !bootstrapConf) throw corrupt(0, 'the segment has no header record');
  return { state, bootstrapConf, size, fileBytes, tornAt: scan.badOffset };
}
