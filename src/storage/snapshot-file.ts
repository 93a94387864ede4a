// The streamed snapshot file: a sequence of CRC-framed records (record-file.ts framing)
//
//   header   {format, index, term, voters, learners, app}   app: opaque bytes of the runtime (its
//                                                           member address table)
//   pairs    [[key, value], ...]                            raw keyspace pairs in key order, at most
//                                                           PAIRS_PER_RECORD / RECORD_BYTES each
//   end      {end: true, records, pairs}                    counts, so a truncated file is caught
//
// The header is small and first, so membership and metadata are read without touching the state.
// Writing consumes an async iterator of pair chunks (a LevelDB point-in-time view) and never holds
// more than one record; reading yields one validated chunk at a time and checks the whole file's
// CRC-32 and the end record before it finishes, so a consumer that commits only after the last
// chunk never commits a damaged or truncated file.
import type { ConfState } from '../raft/types.js';
import { packr } from './codec.js';
import { InvalidSnapshotError } from './errors.js';
import { RECORD_HEADER_BYTES, frameRecord } from './record-file.js';
import { crc32 } from 'node:zlib';
import type { SnapshotRef, SnapshotStore } from './snapshot-store.js';
import { checkPair } from './state-snapshot.js';

export const SNAPSHOT_FILE_FORMAT = 'quorumkv-snap/3';
/** A record holds at most this many pairs or about this many bytes: packing one stays well under a millisecond or two. */
const PAIRS_PER_RECORD = 1000;
const RECORD_BYTES = 1 << 20;
/** Largest record a reader accepts (one pair of the largest key and value, plus framing). */
const MAX_RECORD_BYTES = 64 << 20;
const READ_AHEAD_BYTES = 1 << 20;

export type Pair = [Uint8Array, Uint8Array];

export interface SnapshotFileHeader {
  index: number;
  term: number;
  conf: ConfState;
  /** The runtime's own metadata (member addresses), opaque to storage. */
  app: Uint8Array;
}

export interface SnapshotWriteProgress {
  bytes: number;
  pairs: number;
}

/**
 * The file's bytes, one framed record at a time (header, pair records, end record), consuming
 * `chunks` as it goes: a file on disk and a backup streamed to a client are the same bytes.
 * `onRecord` is called after each pair record with the pairs framed so far.
 */
export async function* snapshotFileRecords(
  header: SnapshotFileHeader,
  chunks: AsyncIterable<Pair[]>,
  onRecord?: (pairs: number) => void,
): AsyncGenerator<Buffer> {
  yield frameRecord(
    packr.pack({
      format: SNAPSHOT_FILE_FORMAT,
      index: header.index,
      term: header.term,
      voters: header.conf.voters,
      learners: header.conf.learners,
      app: header.app,
    }),
  );
  let records = 0;
  let pairs = 0;
  let pending: Pair[] = [];
  let pendingBytes = 0;
  for await (const chunk of chunks) {
    for (const pair of chunk) {
      pending.push(pair);
      pairs++;
      pendingBytes += pair[0].length + pair[1].length;
      if (pending.length >= PAIRS_PER_RECORD || pendingBytes >= RECORD_BYTES) {
        yield frameRecord(packr.pack(pending));
        records++;
        pending = [];
        pendingBytes = 0;
        onRecord?.(pairs);
      }
    }
  }
  if (pending.length > 0) {
    yield frameRecord(packr.pack(pending));
    records++;
    onRecord?.(pairs);
  }
  yield frameRecord(packr.pack({ end: true, records, pairs }));
}

/** Streams `chunks` into a new file of `store`; returns its reference. Aborts (deletes it) on any error. */
export async function writeSnapshotFile(
  store: SnapshotStore,
  header: SnapshotFileHeader,
  chunks: AsyncIterable<Pair[]>,
  onProgress?: (p: SnapshotWriteProgress) => void,
): Promise<SnapshotRef> {
  const writer = await store.create();
  try {
    let pairs = 0;
    for await (const record of snapshotFileRecords(header, chunks, (n) => (pairs = n))) {
      await writer.append(record);
      if (pairs > 0) onProgress?.({ bytes: writer.bytes, pairs });
    }
    return await writer.commit(header.index, header.term);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** What a reader checks a file against: its size and the CRC-32 of all its bytes. */
export type SnapshotSource = Pick<SnapshotRef, 'name' | 'bytes' | 'crc32'>;

/** Reads framed records one at a time from a file, checking each record's CRC and the whole file's. */
class RecordCursor {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private base = 0;
  private offset = 0;
  private crc = 0;

  constructor(
    private readonly read: (offset: number, length: number) => Promise<Buffer>,
    private readonly ref: SnapshotSource,
  ) {}

  get atEnd(): boolean {
    return this.offset >= this.ref.bytes;
  }

  private async ensure(n: number): Promise<void> {
    const have = this.base + this.buf.length - this.offset;
    if (have >= n) return;
    const from = this.base + this.buf.length;
    const more = await this.read(from, Math.max(n - have, READ_AHEAD_BYTES));
    this.crc = crc32(more, this.crc);
    this.buf = Buffer.concat([this.buf.subarray(this.offset - this.base), more]);
    this.base = this.offset;
    if (this.base + this.buf.length - this.offset < n) throw this.bad(this.offset, 'the file ends inside a record (truncated)');
  }

  async next(): Promise<unknown> {
    await this.ensure(RECORD_HEADER_BYTES);
    const at = this.offset - this.base;
    const length = this.buf.readUInt32LE(at);
    const sum = this.buf.readUInt32LE(at + 4);
    if (length === 0 || length > MAX_RECORD_BYTES) throw this.bad(this.offset, `record length ${length} is out of range`);
    await this.ensure(RECORD_HEADER_BYTES + length);
    const start = this.offset - this.base + RECORD_HEADER_BYTES;
    const payload = this.buf.subarray(start, start + length);
    if (crc32(payload) !== sum) throw this.bad(this.offset, 'record checksum mismatch');
    const recordAt = this.offset;
    this.offset += RECORD_HEADER_BYTES + length;
    try {
      return packr.unpack(payload);
    } catch (err) {
      throw this.bad(recordAt, `record does not decode (${(err as Error).message})`);
    }
  }

  /** After the last record: the whole file matched its reference. */
  finish(): void {
    if (this.offset !== this.ref.bytes) throw this.bad(this.offset, `trailing bytes after the end record (file has ${this.ref.bytes})`);
    if (this.crc !== this.ref.crc32) throw this.bad(0, `whole-file CRC-32 ${this.crc} does not match ${this.ref.crc32}`);
  }

  bad(offset: number, detail: string): InvalidSnapshotError {
    return new InvalidSnapshotError(`snapshot file ${this.ref.name} at byte ${offset}: ${detail}`);
  }
}

function parseHeader(v: unknown, cursor: RecordCursor): SnapshotFileHeader {
  const h = v as Record<string, unknown> | null;
  const isInt = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  const isIds = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  if (typeof h !== 'object' || h === null || h.format !== SNAPSHOT_FILE_FORMAT) {
    throw cursor.bad(0, `not a ${SNAPSHOT_FILE_FORMAT} file (format ${JSON.stringify(h?.format)})`);
  }
  if (!isInt(h.index) || !isInt(h.term) || !isIds(h.voters) || !isIds(h.learners) || !(h.app instanceof Uint8Array)) {
    throw cursor.bad(0, 'malformed header record');
  }
  return { index: h.index, term: h.term, conf: { voters: h.voters, learners: h.learners }, app: new Uint8Array(h.app) };
}

/** The header of a stored snapshot file (reads only its first record). */
export async function readSnapshotFileHeader(store: SnapshotStore, ref: SnapshotRef): Promise<SnapshotFileHeader> {
  const reader = await store.openReader(ref);
  try {
    const cursor = new RecordCursor((o, n) => reader.read(o, n), ref);
    const header = parseHeader(await cursor.next(), cursor);
    if (header.index !== ref.index || header.term !== ref.term) {
      throw cursor.bad(0, `header says ${header.index}/${header.term} but the reference ${ref.index}/${ref.term}`);
    }
    return header;
  } finally {
    await reader.close();
  }
}

export interface SnapshotFileContents {
  header: SnapshotFileHeader;
  /** Validated pair chunks in file order. Throws InvalidSnapshotError on damage, at the latest before it completes. */
  chunks: AsyncIterable<Pair[]>;
}

/** Opens a stored snapshot file for a restore; the file is pinned until `chunks` completes or is abandoned. */
export async function openSnapshotFile(store: SnapshotStore, ref: SnapshotRef): Promise<SnapshotFileContents> {
  const reader = await store.openReader(ref);
  return readSnapshotRecords(
    (o, n) => reader.read(o, n),
    ref,
    () => reader.close(),
  );
}

/**
 * Reads snapshot records from any byte source of `source.bytes` bytes (a stored file, the snapshot
 * part of a backup file). `close` is called once the chunks complete or are abandoned, or when the
 * header is bad.
 */
export async function readSnapshotRecords(
  read: (offset: number, length: number) => Promise<Buffer>,
  source: SnapshotSource,
  close: () => Promise<void>,
): Promise<SnapshotFileContents> {
  const ref = source;
  const cursor = new RecordCursor(read, ref);
  let header: SnapshotFileHeader;
  try {
    header = parseHeader(await cursor.next(), cursor);
  } catch (err) {
    await close();
    throw err;
  }
  async function* chunks(): AsyncGenerator<Pair[]> {
    try {
      let records = 0;
      let pairs = 0;
      for (;;) {
        if (cursor.atEnd) throw cursor.bad(ref.bytes, 'no end record (truncated)');
        const r = await cursor.next();
        if (Array.isArray(r)) {
          const out: Pair[] = [];
          for (const p of r) out.push(checkPair(p, pairs++));
          records++;
          yield out;
          continue;
        }
        const end = r as { end?: unknown; records?: unknown; pairs?: unknown } | null;
        if (end?.end !== true) throw cursor.bad(0, 'unexpected record kind');
        if (end.records !== records || end.pairs !== pairs) {
          throw cursor.bad(0, `end record counts ${String(end.records)} records / ${String(end.pairs)} pairs but ${records} / ${pairs} were read`);
        }
        cursor.finish();
        return;
      }
    } finally {
      await close();
    }
  }
  return { header, chunks: chunks() };
}
