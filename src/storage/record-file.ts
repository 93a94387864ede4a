// Framing of the append-only log files: each record is [length u32 LE][crc32 u32 LE][payload].
// Parsing tells a torn tail (an interrupted last write, safe to cut off) from damage in the middle
// (followed by valid records, which must stop the node).
import { crc32 } from 'node:zlib';
import type { FsFile } from './fs.js';

export const RECORD_HEADER_BYTES = 8;

export function frameRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

export interface ParsedRecord {
  offset: number;
  payload: Buffer;
}

export interface ParseResult {
  records: ParsedRecord[];
  /** Offset of the first bad record, if any (everything from here on is unusable). */
  badOffset?: number;
  /** True when a valid record follows the bad one, i.e. the damage is not a torn tail. */
  validAfterBad: boolean;
}

/**
 * `looksLikePayload` is a cheap filter on a candidate payload's first bytes, so that the resync scan
 * after a bad record only computes checksums where a real record could start.
 */
export function parseRecords(buf: Buffer, looksLikePayload: (payload: Buffer) => boolean): ParseResult {
  const records: ParsedRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const record = recordAt(buf, offset);
    if (!record) return { records, badOffset: offset, validAfterBad: findValidRecord(buf, offset + 1, looksLikePayload) };
    records.push({ offset, payload: record });
    offset += RECORD_HEADER_BYTES + record.length;
  }
  return { records, validAfterBad: false };
}

function recordAt(buf: Buffer, offset: number): Buffer | undefined {
  if (buf.length - offset < RECORD_HEADER_BYTES) return undefined;
  const length = buf.readUInt32LE(offset);
  if (length === 0 || length > buf.length - offset - RECORD_HEADER_BYTES) return undefined;
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  return crc32(payload) === buf.readUInt32LE(offset + 4) ? payload : undefined;
}

export function findValidRecord(buf: Buffer, from: number, looksLikePayload: (payload: Buffer) => boolean): boolean {
  for (let p = from; p + RECORD_HEADER_BYTES < buf.length; p++) {
    const length = buf.readUInt32LE(p);
    if (length === 0 || length > buf.length - p - RECORD_HEADER_BYTES) continue;
    const payload = buf.subarray(p + RECORD_HEADER_BYTES, p + RECORD_HEADER_BYTES + length);
    if (!looksLikePayload(payload)) continue;
    if (crc32(payload) === buf.readUInt32LE(p + 4)) return true;
  }
  return false;
}

/** `length` bytes of `file` from `position`, fewer only where the file ends. */
export async function readAt(file: FsFile, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

export interface ScanResult {
  /** Bytes of valid records from the start (where appends continue). */
  end: number;
  /** Offset of the first bad record, if any. */
  badOffset?: number;
  /** True when a valid record follows the bad one (damage, not a torn tail). */
  validAfterBad: boolean;
}

/**
 * parseRecords over a file of `size` bytes, read in pieces of about `chunkBytes` (a record larger
 * than that is read whole) instead of all at once. `onRecord` gets each valid record's offset and
 * payload, a view into a buffer that is not kept: copy what must outlive the call.
 */
export async function scanRecordFile(
  file: FsFile,
  size: number,
  onRecord: (offset: number, payload: Buffer) => void,
  looksLikePayload: (payload: Buffer) => boolean,
  chunkBytes = 4 << 20,
): Promise<ScanResult> {
  let offset = 0;
  const bad = async (at: number): Promise<ScanResult> => {
    const rest = await readAt(file, at, size - at);
    return { end: at, badOffset: at, validAfterBad: findValidRecord(rest, 1, looksLikePayload) };
  };
  while (offset < size) {
    let buf = await readAt(file, offset, Math.min(chunkBytes, size - offset));
    if (buf.length < Math.min(chunkBytes, size - offset)) size = offset + buf.length; // shrank while read
    let p = 0;
    for (;;) {
      if (buf.length - p < RECORD_HEADER_BYTES) {
        if (offset + p + RECORD_HEADER_BYTES > size && offset + p < size) return bad(offset + p);
        break;
      }
      const length = buf.readUInt32LE(p);
      if (length === 0 || offset + p + RECORD_HEADER_BYTES + length > size) return bad(offset + p);
      if (p + RECORD_HEADER_BYTES + length > buf.length) {
        if (p > 0) break; // continue from this record with the next read
        buf = await readAt(file, offset, RECORD_HEADER_BYTES + length);
        if (buf.length < RECORD_HEADER_BYTES + length) return bad(offset);
        continue;
      }
      const payload = buf.subarray(p + RECORD_HEADER_BYTES, p + RECORD_HEADER_BYTES + length);
      if (crc32(payload) !== buf.readUInt32LE(p + 4)) return bad(offset + p);
      onRecord(offset + p, payload);
      p += RECORD_HEADER_BYTES + length;
    }
    offset += p;
  }
  return { end: offset, validAfterBad: false };
}
