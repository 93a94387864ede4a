// The state machine's keyspace, shared by the LevelDB and in-memory machines so that both produce
// byte-identical snapshots:
//   'd/' + user key   → StoredValue            (user data)
//   'l/' + lease id   → Lease                  (TTL ttlMs, attached keys; id as 16 hex digits)
//   's/' + clientId   → Session                (exactly-once session table)
//   'm/applied'       → { index, term }        (last applied log position)
//
// Every value is stored as a checksummed record (format 1):
//   0xc1 | version 0x01 | msgpack body | CRC-32 (big-endian) of (stored key ‖ all bytes before it)
// The CRC covers the LevelDB key too, so a value moved to (or read under) another key, a flipped
// key byte and a flipped value byte all fail it. LevelDB's own block CRCs are not checked on reads
// or during compaction by classic-level (it does not expose verify_checksums), and a compaction
// rewrites a damaged block under a fresh CRC; this one travels with the value through snapshots.
//
// Values written before checksums (format 0) are a bare msgpack array, which never starts with
// 0xc1 (the one byte msgpack leaves unused), so they still decode — strictly (exact shape, no
// trailing bytes) — and are rewritten as format 1 by the next write of their key. A single damaged
// byte of a format-1 record cannot turn it into a valid format-0 value: with byte 0 changed, byte 1
// (0x01) would have to begin a 4-element msgpack array of bytes, and it cannot.
import { crc32 } from 'node:zlib';
import type { CommandResult } from '../api/command.js';
import { packr } from './codec.js';

const te = new TextEncoder();

export const DATA_PREFIX = te.encode('d/');
export const SESSION_PREFIX = te.encode('s/');
export const LEASE_PREFIX = te.encode('l/');
export const APPLIED_KEY = te.encode('m/applied');

export interface StoredValue {
  value: Uint8Array;
  /** Writes since the key was (re)created; >= 1 for a stored key. */
  version: number;
  createIndex: number;
  modIndex: number;
  /** Lease the key is attached to; absent = none. */
  lease?: number;
}

/** A lease: its TTL and the keys attached to it (by bytesToKeyString, ascending). */
export interface Lease {
  ttlMs: number;
  keys: Map<string, Uint8Array>;
}

export interface Session {
  /** Results below this seq were forgotten at the client's request. */
  firstUnacked: number;
  /** Log index of the last command from this client: the LRU clock, so eviction depends only on the log. */
  lastIndex: number;
  results: Map<number, CommandResult>;
}

export interface AppliedPosition {
  index: number;
  term: number;
}

/** Lexicographic byte order, the order LevelDB sorts keys in. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** A string with one UTF-16 unit per byte: compares in byte order, usable as a Map key. */
export function bytesToKeyString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export function keyStringToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

export function dataKey(key: Uint8Array): Uint8Array {
  return concatBytes(DATA_PREFIX, key);
}

export function leaseKey(id: number): Uint8Array {
  return concatBytes(LEASE_PREFIX, te.encode(id.toString(16).padStart(16, '0')));
}

/** The lease id of a stored lease key, or undefined when the key is not one. */
export function leaseIdOf(storedKey: Uint8Array): number | undefined {
  if (!startsWith(storedKey, LEASE_PREFIX) || storedKey.length !== LEASE_PREFIX.length + 16) return undefined;
  const hex = Buffer.from(storedKey.subarray(LEASE_PREFIX.length)).toString('latin1');
  if (!/^[0-9a-f]{16}$/.test(hex)) return undefined;
  const id = Number.parseInt(hex, 16);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

export function encodeLease(storedKey: Uint8Array, l: Lease): Uint8Array {
  const keys = [...l.keys.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, k]) => k);
  return sealRecord(storedKey, packr.pack([l.ttlMs, keys]));
}

export function decodeLease(storedKey: Uint8Array, bytes: Uint8Array): Lease {
  const { body, version } = openRecord(storedKey, bytes);
  const a = unpackBody(body, version, 'lease');
  if (!Array.isArray(a) || a.length !== 2 || !Number.isSafeInteger(a[0]) || !Array.isArray(a[1]) || !a[1].every((k) => k instanceof Uint8Array)) {
    throw new DamagedRecordError(`malformed lease (format ${version})`);
  }
  const keys = new Map<string, Uint8Array>();
  for (const k of a[1] as Uint8Array[]) keys.set(bytesToKeyString(k), copyBytes(k));
  return { ttlMs: a[0], keys };
}

export function sessionKey(clientId: string): Uint8Array {
  return concatBytes(SESSION_PREFIX, te.encode(clientId));
}

/** Own copy of bytes, so a stored value never aliases a caller's or a decoder's buffer. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** First byte of a checksummed record: the one byte msgpack never produces (see the header). */
const RECORD_MAGIC = 0xc1;
/** The record format written today; 0 is the bare msgpack of before. */
export const STORED_RECORD_VERSION = 1;
const RECORD_OVERHEAD = 6; // magic, version, CRC-32

/** A stored record that fails its checksum or does not decode: the bytes on disk are damaged. */
export class DamagedRecordError extends Error {
  override name = 'DamagedRecordError';
}

/** Frames a msgpack body as a checksummed record stored under `storedKey` (the full LevelDB key). */
export function sealRecord(storedKey: Uint8Array, body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(body.length + RECORD_OVERHEAD);
  out[0] = RECORD_MAGIC;
  out[1] = STORED_RECORD_VERSION;
  out.set(body, 2);
  const end = out.length - 4;
  out.writeUInt32BE(crc32(out.subarray(0, end), crc32(storedKey)), end);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * The msgpack body of a record read under `storedKey`, after checking its CRC; a format-0 value
 * (no frame) is returned as is. Throws DamagedRecordError.
 */
export function openRecord(storedKey: Uint8Array, bytes: Uint8Array): { body: Uint8Array; version: number } {
  if (bytes.length === 0) throw new DamagedRecordError('empty record');
  if (bytes[0] !== RECORD_MAGIC) return { body: bytes, version: 0 };
  if (bytes.length < RECORD_OVERHEAD) throw new DamagedRecordError(`truncated record (${bytes.length} bytes)`);
  const end = bytes.length - 4;
  const stored = ((bytes[end]! << 24) | (bytes[end + 1]! << 16) | (bytes[end + 2]! << 8) | bytes[end + 3]!) >>> 0;
  const computed = crc32(bytes.subarray(0, end), crc32(storedKey));
  if (stored !== computed) {
    throw new DamagedRecordError(`checksum mismatch (stored crc32 ${hex32(stored)}, computed ${hex32(computed)})`);
  }
  if (bytes[1] !== STORED_RECORD_VERSION) {
    throw new DamagedRecordError(`unknown record format ${bytes[1]} (written by a newer quorumkv? this one reads formats 0-${STORED_RECORD_VERSION})`);
  }
  return { body: bytes.subarray(2, end), version: STORED_RECORD_VERSION };
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function unpackBody(body: Uint8Array, version: number, what: string): unknown {
  try {
    return packr.unpack(body) as unknown;
  } catch (err) {
    throw new DamagedRecordError(`${what} does not decode (format ${version}: ${(err as Error).message})`);
  }
}

/** `storedKey` is the full LevelDB key (dataKey(userKey)): the checksum covers it. */
export function encodeStoredValue(storedKey: Uint8Array, v: StoredValue): Uint8Array {
  // A key without a lease keeps the 4-element shape, byte-identical to before leases existed.
  const body = v.lease ? [v.value, v.version, v.createIndex, v.modIndex, v.lease] : [v.value, v.version, v.createIndex, v.modIndex];
  return sealRecord(storedKey, packr.pack(body));
}

/** Throws DamagedRecordError when the bytes fail their checksum or do not decode. */
export function decodeStoredValue(storedKey: Uint8Array, bytes: Uint8Array): StoredValue {
  const { body, version } = openRecord(storedKey, bytes);
  const a = unpackBody(body, version, 'stored value');
  const withLease = version === STORED_RECORD_VERSION && Array.isArray(a) && a.length === 5;
  if (
    !Array.isArray(a) ||
    (a.length !== 4 && !withLease) ||
    !(a[0] instanceof Uint8Array) ||
    !Number.isSafeInteger(a[1]) ||
    !Number.isSafeInteger(a[2]) ||
    !Number.isSafeInteger(a[3]) ||
    (withLease && (!Number.isSafeInteger(a[4]) || a[4] <= 0))
  ) {
    throw new DamagedRecordError(`malformed stored value (format ${version})`);
  }
  const v: StoredValue = { value: copyBytes(a[0]), version: a[1], createIndex: a[2], modIndex: a[3] };
  if (withLease) v.lease = a[4] as number;
  return v;
}

/** `storedKey` is sessionKey(clientId): the checksum covers it. */
export function encodeSession(storedKey: Uint8Array, s: Session): Uint8Array {
  // Sorted by seq so the same session always encodes to the same bytes (identical snapshots).
  const results = [...s.results.entries()].sort((x, y) => x[0] - y[0]);
  return sealRecord(storedKey, packr.pack([s.firstUnacked, s.lastIndex, results]));
}

export function decodeSession(storedKey: Uint8Array, bytes: Uint8Array): Session {
  const { body, version } = openRecord(storedKey, bytes);
  const a = unpackBody(body, version, 'session');
  if (!Array.isArray(a) || a.length !== 3 || !Number.isSafeInteger(a[0]) || !Number.isSafeInteger(a[1]) || !Array.isArray(a[2])) {
    throw new DamagedRecordError(`malformed session (format ${version})`);
  }
  const results = new Map<number, CommandResult>();
  for (const pair of a[2] as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !Number.isSafeInteger(pair[0]) || typeof pair[1] !== 'object' || pair[1] === null) {
      throw new DamagedRecordError(`malformed session result (format ${version})`);
    }
    results.set(pair[0] as number, pair[1] as CommandResult);
  }
  return { firstUnacked: a[0], lastIndex: a[1], results };
}

export function encodeApplied(p: AppliedPosition): Uint8Array {
  return sealRecord(APPLIED_KEY, packr.pack([p.index, p.term]));
}

export function decodeApplied(bytes: Uint8Array): AppliedPosition {
  const { body, version } = openRecord(APPLIED_KEY, bytes);
  const a = unpackBody(body, version, 'applied index');
  if (!Array.isArray(a) || a.length !== 2 || !Number.isSafeInteger(a[0]) || !Number.isSafeInteger(a[1])) {
    throw new DamagedRecordError(`malformed applied index (format ${version})`);
  }
  return { index: a[0], term: a[1] };
}

// The command language defines prefix ranges; storage uses the same definition.
export { prefixEnd } from '../api/command.js';
