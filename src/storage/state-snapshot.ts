// The serialized state-machine snapshot, identical for the LevelDB and in-memory machines: the raw
// keyspace pairs (data and sessions, in key order) plus the applied position. Decoding validates
// every pair before a restore touches any state.
import { packr } from './codec.ts';
import { InvalidSnapshotError } from './errors.ts';
import {
  DATA_PREFIX, SESSION_PREFIX, copyBytes, decodeSession, decodeStoredValue, startsWith,
  type AppliedPosition, type Session, type StoredValue,
} from './keyspace.ts';

export const SNAPSHOT_FORMAT = 'quorumkv-state/1';

export interface DecodedStateSnapshot {
  applied: AppliedPosition;
  /** Raw keyspace pairs, validated, in key order. */
  pairs: [Uint8Array, Uint8Array][];
  data: [Uint8Array, StoredValue][];
  sessions: [string, Session][];
}

export function encodeStateSnapshot(applied: AppliedPosition, pairs: [Uint8Array, Uint8Array][]): Uint8Array {
  return packr.pack({ format: SNAPSHOT_FORMAT, index: applied.index, term: applied.term, pairs });
}

const td = new TextDecoder('utf-8', { fatal: true });

export function decodeStateSnapshot(bytes: Uint8Array): DecodedStateSnapshot {
  let doc: unknown;
  try {
    doc = packr.unpack(bytes);
  } catch (err) {
    throw new InvalidSnapshotError(`not msgpack (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null) throw new InvalidSnapshotError('not a map');
  const { format, index, term, pairs } = doc as Record<string, unknown>;
  if (format !== SNAPSHOT_FORMAT) throw new InvalidSnapshotError(`unknown format ${JSON.stringify(format)} (expected ${SNAPSHOT_FORMAT})`);
  if (!Number.isSafeInteger(index) || (index as number) < 0 || !Number.isSafeInteger(term) || (term as number) < 0) {
    throw new InvalidSnapshotError('index/term must be non-negative integers');
  }
  if (!Array.isArray(pairs)) throw new InvalidSnapshotError('pairs must be an array');
  const out: DecodedStateSnapshot = { applied: { index: index as number, term: term as number }, pairs: [], data: [], sessions: [] };
  pairs.forEach((pair: unknown, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array)) {
      throw new InvalidSnapshotError(`pair ${i} is not [key bytes, value bytes]`);
    }
    const key = copyBytes(pair[0]);
    const value = copyBytes(pair[1]);
    try {
      if (startsWith(key, DATA_PREFIX)) {
        out.data.push([key.subarray(DATA_PREFIX.length), decodeStoredValue(value)]);
      } else if (startsWith(key, SESSION_PREFIX)) {
        out.sessions.push([td.decode(key.subarray(SESSION_PREFIX.length)), decodeSession(value)]);
      } else {
        throw new Error('key outside the data and session prefixes');
      }
    } catch (err) {
      throw new InvalidSnapshotError(`pair ${i}: ${(err as Error).message}`);
    }
    out.pairs.push([key, value]);
  });
  return out;
}
