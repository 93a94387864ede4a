// The serialized state-machine snapshot, identical for the LevelDB and in-memory machines: the raw
// keyspace pairs (data, leases and sessions, in key order) plus the applied position. Decoding validates
// every pair before a restore touches any state.
import { packr } from './codec.js';
import { InvalidSnapshotError } from './errors.js';
import {
  DATA_PREFIX,
  LEASE_PREFIX,
  SESSION_PREFIX,
  copyBytes,
  decodeLease,
  decodeSession,
  leaseIdOf,
  decodeStoredValue,
  openRecord,
  startsWith,
  type AppliedPosition,
  type Lease,
  type Session,
  type StoredValue,
} from './keyspace.js';

/** Single msgpack document {format, index, term, pairs}: still decoded, no longer written. */
export const SNAPSHOT_FORMAT_V1 = 'quorumkv-state/1';
/** A header record {format, index, term, chunks} followed by `chunks` records, each an array of pairs. */
export const SNAPSHOT_FORMAT = 'quorumkv-state/2';
/** Pairs per chunk record: small enough that packing one never stalls the event loop. */
const PAIRS_PER_CHUNK = 1000;

export interface DecodedStateSnapshot {
  applied: AppliedPosition;
  /** Raw keyspace pairs, validated, in key order. */
  pairs: [Uint8Array, Uint8Array][];
  data: [Uint8Array, StoredValue][];
  sessions: [string, Session][];
  leases: [number, Lease][];
}

/**
 * Builds a snapshot incrementally: pairs are packed a chunk at a time as they are added, so a
 * caller that feeds it from an async iterator never blocks the event loop for long and never holds
 * every pair as a separate object (a node's heartbeats must keep flowing while it snapshots).
 */
export class StateSnapshotWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: [Uint8Array, Uint8Array][] = [];

  add(key: Uint8Array, value: Uint8Array): void {
    this.pending.push([key, value]);
    if (this.pending.length >= PAIRS_PER_CHUNK) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(packr.pack(this.pending));
    this.pending = [];
  }

  finish(applied: AppliedPosition): Uint8Array {
    this.flush();
    const header = packr.pack({ format: SNAPSHOT_FORMAT, index: applied.index, term: applied.term, chunks: this.chunks.length });
    const out = new Uint8Array(header.length + this.chunks.reduce((n, c) => n + c.length, 0));
    out.set(header, 0);
    let offset = header.length;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

export function encodeStateSnapshot(applied: AppliedPosition, pairs: [Uint8Array, Uint8Array][]): Uint8Array {
  const writer = new StateSnapshotWriter();
  for (const [key, value] of pairs) writer.add(key, value);
  return writer.finish(applied);
}

const td = new TextDecoder('utf-8', { fatal: true });

export function decodeStateSnapshot(bytes: Uint8Array): DecodedStateSnapshot {
  let records: unknown[];
  try {
    records = packr.unpackMultiple(bytes) as unknown[];
  } catch (err) {
    throw new InvalidSnapshotError(`not msgpack (${(err as Error).message})`);
  }
  const doc = records[0];
  if (typeof doc !== 'object' || doc === null) throw new InvalidSnapshotError('not a map');
  const { format, index, term } = doc as Record<string, unknown>;
  let pairs: unknown;
  if (format === SNAPSHOT_FORMAT_V1) {
    if (records.length !== 1) throw new InvalidSnapshotError('trailing records after a single-document snapshot');
    pairs = (doc as Record<string, unknown>).pairs;
  } else if (format === SNAPSHOT_FORMAT) {
    const chunks = (doc as Record<string, unknown>).chunks;
    if (!Number.isSafeInteger(chunks) || chunks !== records.length - 1) {
      throw new InvalidSnapshotError(`header announces ${String(chunks)} chunks but ${records.length - 1} follow (truncated?)`);
    }
    if (!records.slice(1).every(Array.isArray)) throw new InvalidSnapshotError('a chunk is not an array of pairs');
    pairs = (records.slice(1) as unknown[][]).flat();
  } else {
    throw new InvalidSnapshotError(`unknown format ${JSON.stringify(format)} (expected ${SNAPSHOT_FORMAT})`);
  }
  if (!Number.isSafeInteger(index) || (index as number) < 0 || !Number.isSafeInteger(term) || (term as number) < 0) {
    throw new InvalidSnapshotError('index/term must be non-negative integers');
  }
  if (!Array.isArray(pairs)) throw new InvalidSnapshotError('pairs must be an array');
  const out: DecodedStateSnapshot = { applied: { index: index as number, term: term as number }, pairs: [], data: [], sessions: [], leases: [] };
  pairs.forEach((pair: unknown, i) => {
    const [key, value, decoded] = validatePair(pair, i);
    if (decoded.kind === 'data') out.data.push([decoded.key, decoded.value]);
    else if (decoded.kind === 'lease') out.leases.push([decoded.id, decoded.lease]);
    else out.sessions.push([decoded.id, decoded.session]);
    out.pairs.push([key, value]);
  });
  return out;
}

export type DecodedPair =
  | { kind: 'data'; key: Uint8Array; value: StoredValue }
  | { kind: 'lease'; id: number; lease: Lease }
  | { kind: 'session'; id: string; session: Session };

/** Checks one snapshot pair (shape, keyspace, record checksum) and returns copies and the decoded record. */
export function validatePair(pair: unknown, i: number): [Uint8Array, Uint8Array, DecodedPair] {
  if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array)) {
    throw new InvalidSnapshotError(`pair ${i} is not [key bytes, value bytes]`);
  }
  const key = copyBytes(pair[0]);
  const value = copyBytes(pair[1]);
  try {
    if (startsWith(key, DATA_PREFIX)) return [key, value, { kind: 'data', key: key.subarray(DATA_PREFIX.length), value: decodeStoredValue(key, value) }];
    if (startsWith(key, SESSION_PREFIX)) {
      return [key, value, { kind: 'session', id: td.decode(key.subarray(SESSION_PREFIX.length)), session: decodeSession(key, value) }];
    }
    if (startsWith(key, LEASE_PREFIX)) {
      const id = leaseIdOf(key);
      if (id === undefined) throw new Error('malformed lease key');
      return [key, value, { kind: 'lease', id, lease: decodeLease(key, value) }];
    }
    throw new Error('key outside the data, lease and session prefixes');
  } catch (err) {
    throw new InvalidSnapshotError(`pair ${i}: ${(err as Error).message}`);
  }
}

/**
 * The restore-time check of one pair read from a snapshot file, without decoding it: its shape, its
 * keyspace and its record checksum (records of the bare format 0 carry none and are decoded
 * instead). The file's record and whole-file CRCs already hold; this catches a pair that was
 * damaged before the file was written. Returns the pair as read (views, not copies).
 */
export function checkPair(pair: unknown, i: number): [Uint8Array, Uint8Array] {
  if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array)) {
    throw new InvalidSnapshotError(`pair ${i} is not [key bytes, value bytes]`);
  }
  const [key, value] = pair as [Uint8Array, Uint8Array];
  if (!startsWith(key, DATA_PREFIX) && !startsWith(key, SESSION_PREFIX) && !startsWith(key, LEASE_PREFIX)) {
    throw new InvalidSnapshotError(`pair ${i}: key outside the data, lease and session prefixes`);
  }
  if (startsWith(key, LEASE_PREFIX) && leaseIdOf(key) === undefined) throw new InvalidSnapshotError(`pair ${i}: malformed lease key`);
  let version: number;
  try {
    version = openRecord(key, value).version;
  } catch (err) {
    throw new InvalidSnapshotError(`pair ${i}: ${(err as Error).message}`);
  }
  if (version === 0) validatePair(pair, i);
  return [key, value];
}
