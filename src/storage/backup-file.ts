// A backup file (`quorumkv snapshot save`): a snapshot file (snapshot-file.ts, byte for byte the
// format nodes keep and ship) followed by a trailer that makes the file check itself without any
// reference kept elsewhere:
//
//   snapshot part   header record, pair records, end record        (CRC-framed, record-file.ts)
//   trailer         one CRC-framed record {format, bytes, crc32,   bytes/crc32: size and CRC-32 of
//                   pairs, keys, cluster, nodeId, createdAt}        the snapshot part
//   length          u32 LE: the trailer record's framed size        (so a reader finds it from the end)
//
// Verification reads the whole file: the trailer, every record's CRC, every pair's own checksum,
// the end record's counts, the snapshot part's CRC-32 against the trailer, and the user-key count.
import { crc32 } from 'node:zlib';
import { packr } from './codec.js';
import { InvalidSnapshotError } from './errors.js';
import { type Fs, type FsFile, NODE_FS } from './fs.js';
import { DATA_PREFIX, startsWith } from './keyspace.js';
import { RECORD_HEADER_BYTES, frameRecord } from './record-file.js';
import { type Pair, type SnapshotFileHeader, readSnapshotRecords, snapshotFileRecords } from './snapshot-file.js';

export const BACKUP_FORMAT = 'quorumkv-backup/1';
const LENGTH_BYTES = 4;
/** A trailer is a few hundred bytes; a bigger one means the file is not a backup. */
const MAX_TRAILER_BYTES = 64 << 10;

/** Who the backup was taken from (recorded so a restore can insist on a new cluster identity). */
export interface BackupOrigin {
  cluster: string;
  nodeId: string;
}

export interface BackupTrailer extends BackupOrigin {
  /** Size and CRC-32 of the snapshot part. */
  bytes: number;
  crc32: number;
  /** Raw keyspace pairs (user keys, leases, sessions) and user keys among them. */
  pairs: number;
  keys: number;
  createdAt: string;
}

/** What a finished backup holds: the snapshot's header and the file's size and CRC-32 (all of it). */
export interface BackupSummary {
  header: SnapshotFileHeader;
  trailer: BackupTrailer;
  /** Size and CRC-32 of the whole file, trailer included. */
  fileBytes: number;
  fileCrc32: number;
}

export interface BackupBytes {
  /** The file's bytes in order, a record (at most about a MiB) at a time. */
  bytes: AsyncGenerator<Buffer>;
  /** Set once `bytes` has completed. */
  summary(): BackupSummary | undefined;
}

/** The bytes of a backup file of `header` and `chunks` (a point-in-time view), produced as they are consumed. */
export function backupFileBytes(header: SnapshotFileHeader, chunks: AsyncIterable<Pair[]>, origin: BackupOrigin, now = () => new Date()): BackupBytes {
  let summary: BackupSummary | undefined;
  let keys = 0;
  async function* counted(): AsyncGenerator<Pair[]> {
    for await (const chunk of chunks) {
      for (const [k] of chunk) if (startsWith(k, DATA_PREFIX)) keys++;
      yield chunk;
    }
  }
  async function* bytes(): AsyncGenerator<Buffer> {
    let size = 0;
    let crc = 0;
    let pairs = 0;
    for await (const record of snapshotFileRecords(header, counted(), (n) => (pairs = n))) {
      size += record.length;
      crc = crc32(record, crc);
      yield record;
    }
    const trailer: BackupTrailer = { bytes: size, crc32: crc, pairs, keys, cluster: origin.cluster, nodeId: origin.nodeId, createdAt: now().toISOString() };
    const tail = encodeTrailer(trailer);
    yield tail;
    summary = { header, trailer, fileBytes: size + tail.length, fileCrc32: crc32(tail, crc) };
  }
  return { bytes: bytes(), summary: () => summary };
}

function encodeTrailer(t: BackupTrailer): Buffer {
  const record = frameRecord(packr.pack({ format: BACKUP_FORMAT, ...t }));
  const length = Buffer.allocUnsafe(LENGTH_BYTES);
  length.writeUInt32LE(record.length, 0);
  return Buffer.concat([record, length]);
}

function bad(file: string, detail: string): InvalidSnapshotError {
  return new InvalidSnapshotError(`backup file ${file}: ${detail}`);
}

async function readAt(fd: FsFile, file: string, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fd.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) throw bad(file, `ends at byte ${offset + got}, expected at least ${offset + length} (truncated)`);
    got += bytesRead;
  }
  return buf;
}

function parseTrailer(file: string, payload: Buffer): BackupTrailer {
  let v: Record<string, unknown>;
  try {
    v = packr.unpack(payload) as Record<string, unknown>;
  } catch (err) {
    throw bad(file, `the trailer does not decode (${(err as Error).message})`);
  }
  const isInt = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (typeof v !== 'object' || v === null || v.format !== BACKUP_FORMAT)
    throw bad(file, `not a ${BACKUP_FORMAT} file (trailer format ${JSON.stringify(v?.format)})`);
  const { bytes, crc32: crc, pairs, keys, cluster, nodeId, createdAt } = v;
  if (
    !isInt(bytes) ||
    !isInt(crc) ||
    !isInt(pairs) ||
    !isInt(keys) ||
    typeof cluster !== 'string' ||
    typeof nodeId !== 'string' ||
    typeof createdAt !== 'string'
  ) {
    throw bad(file, 'malformed trailer');
  }
  return { bytes, crc32: crc, pairs, keys, cluster, nodeId, createdAt };
}

export interface OpenedBackupFile {
  header: SnapshotFileHeader;
  trailer: BackupTrailer;
  fileBytes: number;
  /** CRC-32 of the whole file, valid once `chunks` completed (it checked the snapshot part's). */
  fileCrc32: number;
  /**
   * Validated pair chunks. Throws InvalidSnapshotError on any damage, at the latest before it
   * completes (counts, CRC-32, user keys); the file is closed when it completes or is abandoned.
   */
  chunks: AsyncIterable<Pair[]>;
}

/** Opens a backup file: checks its trailer and header now, everything else while `chunks` is read. */
export async function openBackupFile(file: string, fs: Fs = NODE_FS): Promise<OpenedBackupFile> {
  const fd = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw bad(file, 'does not exist');
    throw err;
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await fd.close();
  };
  try {
    const { size } = await fd.stat();
    if (size < LENGTH_BYTES + RECORD_HEADER_BYTES) throw bad(file, `has ${size} bytes: too short to be a backup (truncated)`);
    const lengthBytes = await readAt(fd, file, size - LENGTH_BYTES, LENGTH_BYTES);
    const tailLength = lengthBytes.readUInt32LE(0);
    if (tailLength < RECORD_HEADER_BYTES + 1 || tailLength > MAX_TRAILER_BYTES || tailLength > size - LENGTH_BYTES) {
      throw bad(file, `no valid trailer at its end (length ${tailLength}): truncated, damaged, or not a backup file`);
    }
    const tailAt = size - LENGTH_BYTES - tailLength;
    const tail = await readAt(fd, file, tailAt, tailLength);
    const payloadLength = tail.readUInt32LE(0);
    const payload = tail.subarray(RECORD_HEADER_BYTES);
    if (payloadLength !== payload.length || crc32(payload) !== tail.readUInt32LE(4))
      throw bad(file, `trailer at byte ${tailAt} fails its checksum (damaged or truncated)`);
    const trailer = parseTrailer(file, payload);
    if (trailer.bytes !== tailAt) throw bad(file, `the trailer says the snapshot part has ${trailer.bytes} bytes but it has ${tailAt} (truncated or damaged)`);
    const contents = await readSnapshotRecords(
      (o, n) => readAt(fd, file, o, Math.max(0, Math.min(n, tailAt - o))),
      { name: file, bytes: tailAt, crc32: trailer.crc32 },
      close,
    );
    async function* chunks(): AsyncGenerator<Pair[]> {
      let pairs = 0;
      let keys = 0;
      for await (const chunk of contents.chunks) {
        pairs += chunk.length;
        for (const [k] of chunk) if (startsWith(k, DATA_PREFIX)) keys++;
        yield chunk;
      }
      if (pairs !== trailer.pairs || keys !== trailer.keys) {
        throw bad(file, `holds ${pairs} pairs / ${keys} keys but its trailer says ${trailer.pairs} / ${trailer.keys}`);
      }
    }
    return { header: contents.header, trailer, fileBytes: size, fileCrc32: crc32(lengthBytes, crc32(tail, trailer.crc32)), chunks: chunks() };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Reads and checks the whole file (nothing is kept in memory); its summary, or InvalidSnapshotError. */
export async function verifyBackupFile(file: string, fs: Fs = NODE_FS): Promise<BackupSummary> {
  const opened = await openBackupFile(file, fs);
  for await (const _ of opened.chunks);
  return { header: opened.header, trailer: opened.trailer, fileBytes: opened.fileBytes, fileCrc32: opened.fileCrc32 };
}
