// The state machine's keyspace, shared by the LevelDB and in-memory machines so that both produce
// byte-identical snapshots:
//   'd/' + user key   → StoredValue            (user data)
//   's/' + clientId   → Session                (exactly-once session table)
//   'm/applied'       → { index, term }        (last applied log position)
import type { CommandResult } from '../api/command.js';
import { packr } from './codec.js';

const te = new TextEncoder();

export const DATA_PREFIX = te.encode('d/');
export const SESSION_PREFIX = te.encode('s/');
export const APPLIED_KEY = te.encode('m/applied');

export interface StoredValue {
  value: Uint8Array;
  /** Writes since the key was (re)created; >= 1 for a stored key. */
  version: number;
  createIndex: number;
  modIndex: number;
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

export function sessionKey(clientId: string): Uint8Array {
  return concatBytes(SESSION_PREFIX, te.encode(clientId));
}

/** Own copy of bytes, so a stored value never aliases a caller's or a decoder's buffer. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

export function encodeStoredValue(v: StoredValue): Uint8Array {
  return packr.pack([v.value, v.version, v.createIndex, v.modIndex]);
}

export function decodeStoredValue(bytes: Uint8Array): StoredValue {
  const a = packr.unpack(bytes) as unknown;
  if (
    !Array.isArray(a) || a.length !== 4 || !(a[0] instanceof Uint8Array) ||
    !Number.isSafeInteger(a[1]) || !Number.isSafeInteger(a[2]) || !Number.isSafeInteger(a[3])
  ) {
    throw new Error('malformed stored value');
  }
  return { value: copyBytes(a[0]), version: a[1], createIndex: a[2], modIndex: a[3] };
}

export function encodeSession(s: Session): Uint8Array {
  // Sorted by seq so the same session always encodes to the same bytes (identical snapshots).
  const results = [...s.results.entries()].sort((x, y) => x[0] - y[0]);
  return packr.pack([s.firstUnacked, s.lastIndex, results]);
}

export function decodeSession(bytes: Uint8Array): Session {
  const a = packr.unpack(bytes) as unknown;
  if (!Array.isArray(a) || a.length !== 3 || !Number.isSafeInteger(a[0]) || !Number.isSafeInteger(a[1]) || !Array.isArray(a[2])) {
    throw new Error('malformed session');
  }
  const results = new Map<number, CommandResult>();
  for (const pair of a[2] as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !Number.isSafeInteger(pair[0]) || typeof pair[1] !== 'object' || pair[1] === null) {
      throw new Error('malformed session result');
    }
    results.set(pair[0] as number, pair[1] as CommandResult);
  }
  return { firstUnacked: a[0], lastIndex: a[1], results };
}

export function encodeApplied(p: AppliedPosition): Uint8Array {
  return packr.pack([p.index, p.term]);
}

export function decodeApplied(bytes: Uint8Array): AppliedPosition {
  const a = packr.unpack(bytes) as unknown;
  if (!Array.isArray(a) || a.length !== 2 || !Number.isSafeInteger(a[0]) || !Number.isSafeInteger(a[1])) {
    throw new Error('malformed applied index');
  }
  return { index: a[0], term: a[1] };
}

// The command language defines prefix ranges; storage uses the same definition.
export { prefixEnd } from '../api/command.js';
