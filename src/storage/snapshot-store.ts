// Snapshot files, kept on disk and never as one buffer. A snapshot travels through the Raft core as
// a small *reference* (SnapshotRef: file name, size, CRC-32 of the whole file, index, term) in
// Snapshot.data; the bytes stay in <dir>/<name> and are written, read and shipped a bounded piece
// at a time. Files are written under a temp name, fsynced and renamed into place, so a file that
// carries a final name is complete; temp files left by a crash are dropped when the store opens.
//
// A file that is being read (sent to a follower, restored) is pinned: retainOnly() defers deleting
// it until the last reader closes, so a newer snapshot never cuts a transfer short.
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { packr } from './codec.js';
import { InvalidSnapshotError } from './errors.js';
import { type Fs, type FsFile, NODE_FS, syncDir } from './fs.js';

export interface SnapshotRef {
  name: string;
  bytes: number;
  crc32: number;
  index: number;
  term: number;
}

const REF_MAGIC = 'qkv-snapref/1';
/** A reference is a few dozen bytes; anything bigger is not one (so no decoding is even tried). */
const MAX_REF_BYTES = 512;
const NAME_RE = /^snap-(\d{16})-(\d+)-(\d+)\.qsnap$/;
/** Writes are gathered into pieces of about this size before they reach the file. */
const WRITE_BUFFER_BYTES = 1 << 20;
/**
 * fdatasync after about this many bytes (like RocksDB's bytes_per_sync): a multi-GB snapshot
 * otherwise piles up dirty pages until the kernel throttles every writer on the disk, including
 * the log's appends and a node's synchronous log lines (seen: all three nodes stalled for 30-40 s).
 */
const SYNC_EVERY_BYTES = 16 << 20;

export function encodeSnapshotRef(ref: SnapshotRef): Uint8Array {
  return packr.pack({ magic: REF_MAGIC, name: ref.name, bytes: ref.bytes, crc32: ref.crc32, index: ref.index, term: ref.term });
}

/** The reference carried in `data`, or undefined when `data` is not one (e.g. an in-memory snapshot). */
export function decodeSnapshotRef(data: Uint8Array): SnapshotRef | undefined {
  if (data.length === 0 || data.length > MAX_REF_BYTES) return undefined;
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || (v as { magic?: unknown }).magic !== REF_MAGIC) return undefined;
  const { name, bytes, crc32: crc, index, term } = v as Record<string, unknown>;
  const isInt = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (typeof name !== 'string' || !NAME_RE.test(name) || !isInt(bytes) || !isInt(crc) || !isInt(index) || !isInt(term)) {
    throw new InvalidSnapshotError(`malformed snapshot reference ${JSON.stringify(v)}`);
  }
  return { name, bytes, crc32: crc, index, term };
}

export interface SnapshotStoreOptions {
  dir: string;
  fs?: Fs;
}

export class SnapshotStore {
  private readonly fs: Fs;
  private seq = 0;
  private readonly pins = new Map<string, number>();
  /** Files retainOnly() wanted gone while they were pinned. */
  private readonly doomed = new Set<string>();

  private constructor(
    readonly dir: string,
    fs: Fs,
  ) {
    this.fs = fs;
  }

  /** Opens (creating) the directory and drops temp files of writes a crash interrupted. */
  static async open(options: SnapshotStoreOptions): Promise<SnapshotStore> {
    const fs = options.fs ?? NODE_FS;
    const created = await fs.mkdir(options.dir, { recursive: true });
    // A new directory's entry is durable only once its parent is fsynced (a crash would otherwise
    // take the files the log refers to with it).
    if (created !== undefined) {
      for (let d = options.dir; ; d = dirname(d)) {
        await syncDir(fs, dirname(d));
        if (d === created || dirname(d) === d) break;
      }
    }
    const store = new SnapshotStore(options.dir, fs);
    for (const name of await fs.readdir(options.dir)) {
      const m = NAME_RE.exec(name);
      if (m) store.seq = Math.max(store.seq, Number(m[3]));
      else if (name.endsWith('.tmp')) await fs.unlink(join(options.dir, name));
    }
    return store;
  }

  /** Names of the complete snapshot files, oldest first. */
  async list(): Promise<string[]> {
    return (await this.fs.readdir(this.dir)).filter((n) => NAME_RE.test(n)).sort();
  }

  /** A new file; nothing is visible under a final name until commit(). */
  async create(): Promise<SnapshotFileWriter> {
    const tmp = join(this.dir, `incoming-${++this.seq}.tmp`);
    const fd = await this.fs.open(tmp, 'w');
    return new SnapshotFileWriter(this.fs, fd, tmp, this.dir, () => ++this.seq);
  }

  /** Opens a complete file for reading; it stays on disk until the reader is closed. */
  async openReader(ref: SnapshotRef): Promise<SnapshotFileReader> {
    const fd = await this.fs.open(join(this.dir, ref.name), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new InvalidSnapshotError(`snapshot file ${join(this.dir, ref.name)} is missing`);
      throw err;
    });
    const { size } = await fd.stat();
    if (size !== ref.bytes) {
      await fd.close();
      throw new InvalidSnapshotError(`snapshot file ${join(this.dir, ref.name)} has ${size} bytes, expected ${ref.bytes} (truncated?)`);
    }
    this.pins.set(ref.name, (this.pins.get(ref.name) ?? 0) + 1);
    return new SnapshotFileReader(fd, ref, () => this.unpin(ref.name));
  }

  /**
   * Deletes complete files older than `keep` (the snapshot the log now rests on). Newer files are
   * left alone: they are being installed or compacted right now. `all` (at start-up, when nothing is
   * in flight) also deletes newer ones that the log never adopted.
   */
  async retainOnly(keep: SnapshotRef | undefined, all = false): Promise<void> {
    for (const name of await this.list()) {
      if (name === keep?.name) continue;
      const index = Number(NAME_RE.exec(name)![1]);
      if (!all && keep !== undefined && index > keep.index) continue;
      if (this.pins.has(name)) this.doomed.add(name);
      else await this.fs.unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  private unpin(name: string): void {
    const n = (this.pins.get(name) ?? 1) - 1;
    if (n > 0) {
      this.pins.set(name, n);
      return;
    }
    this.pins.delete(name);
    if (this.doomed.delete(name)) void this.fs.unlink(join(this.dir, name)).catch(() => undefined);
  }
}

/** Appends bytes with a running CRC-32; commit() makes the file durable under its final name. */
export class SnapshotFileWriter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private position = 0;
  private syncedAt = 0;
  private crc = 0;
  private done = false;

  constructor(
    private readonly fs: Fs,
    private readonly fd: FsFile,
    private readonly tmp: string,
    private readonly dir: string,
    private readonly nextSeq: () => number,
  ) {}

  /** Bytes appended so far. */
  get bytes(): number {
    return this.position + this.pendingBytes;
  }

  /** CRC-32 of every byte appended so far. */
  get checksum(): number {
    return this.crc;
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.done) throw new Error('snapshot writer already finished');
    this.crc = crc32(bytes, this.crc);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= WRITE_BUFFER_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    let written = 0;
    while (written < buf.length) {
      written += (await this.fd.write(buf, written, buf.length - written, this.position + written)).bytesWritten;
    }
    this.position += buf.length;
    if (this.position - this.syncedAt >= SYNC_EVERY_BYTES) {
      await this.fd.datasync();
      this.syncedAt = this.position;
    }
  }

  /** fsync, rename into place, fsync the directory. */
  async commit(index: number, term: number): Promise<SnapshotRef> {
    await this.flush();
    this.done = true;
    try {
      await this.fd.sync();
    } finally {
      await this.fd.close();
    }
    const name = `snap-${String(index).padStart(16, '0')}-${term}-${this.nextSeq()}.qsnap`;
    await this.fs.rename(this.tmp, join(this.dir, name));
    await syncDir(this.fs, this.dir);
    return { name, bytes: this.position, crc32: this.crc, index, term };
  }

  /** Drops the temp file (bad input, a failed transfer): nothing changes. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    await this.fd.close().catch(() => undefined);
    await this.fs.unlink(this.tmp).catch(() => undefined);
  }
}

export class SnapshotFileReader {
  private closed = false;

  constructor(
    private readonly fd: FsFile,
    readonly ref: SnapshotRef,
    private readonly onClose: () => void,
  ) {}

  /** Up to `length` bytes at `offset` (fewer only at the end of the file). */
  async read(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.ref.bytes - offset));
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fd.read(buf, got, n - got, offset + got);
      if (bytesRead === 0) throw new InvalidSnapshotError(`snapshot file ${this.ref.name} ended at ${offset + got}, expected ${this.ref.bytes} bytes`);
      got += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.fd.close();
    } finally {
      this.onClose();
    }
  }
}
