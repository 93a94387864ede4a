// The records of a Raft log segment (see file-raft-storage.ts for the layout): encoders, and the
// decoder of an entries record shared by the start-up replay and the reads of older entries.
import type { ConfState, Entry, HardState } from '../raft/types.js';
import { packr } from './codec.js';
import { frameRecord } from './record-file.js';

export const SEGMENT_FORMAT = 1;
export const REC_HEADER = 0;
export const REC_ENTRIES = 1;
export const REC_HARD_STATE = 2;
const TYPE_CODE = { normal: 0, conf: 1 } as const;

export function entriesRecord(entries: readonly Entry[]): Buffer {
  return frameRecord(packr.pack([REC_ENTRIES, entries.map((e) => [e.index, e.term, TYPE_CODE[e.type], e.data])]));
}

/** Hard-state records carry a 5th field only while the node rebuilds, so others read as before. */
export const RECOVERY_CODE = { pristine: 1, rebuilding: 2 } as const;

export function hardStateRecord(hs: HardState): Buffer {
  const fields: unknown[] = [REC_HARD_STATE, hs.term, hs.vote, hs.commit];
  if (hs.recovery) fields.push(RECOVERY_CODE[hs.recovery]);
  return frameRecord(packr.pack(fields));
}

export function headerRecord(baseIndex: number, baseTerm: number, conf: ConfState): Buffer {
  return frameRecord(packr.pack([REC_HEADER, SEGMENT_FORMAT, baseIndex, baseTerm, conf.voters, conf.learners]));
}

/** Cheap pre-check used when resyncing after a bad record: payload is [kind, ...] with a known kind. */
export function looksLikePayload(p: Buffer): boolean {
  return p.length >= 2 && p[0]! >= 0x92 && p[0]! <= 0x96 && p[1]! <= REC_HARD_STATE;
}

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A record's payload as the array it encodes, or undefined when it does not decode to one. */
export function decodePayload(payload: Buffer): unknown[] | undefined {
  try {
    const v = packr.unpack(payload);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The entries of a decoded entries record, contiguous, each with its own copy of the data (an
 * entry must not pin the read buffer). Returns a reason string when the record is malformed.
 */
export function decodeEntries(r: unknown[]): Entry[] | string {
  const list = r[1];
  if (r.length !== 2 || !Array.isArray(list) || list.length === 0) return 'malformed entries record';
  const entries: Entry[] = [];
  for (const e of list as unknown[]) {
    if (!Array.isArray(e) || e.length !== 4 || !isInt(e[0]) || !isInt(e[1]) || (e[2] !== 0 && e[2] !== 1) || !(e[3] instanceof Uint8Array)) {
      return 'malformed entry in entries record';
    }
    const prev = entries[entries.length - 1];
    if (prev && e[0] !== prev.index + 1) return `entries record is not contiguous (${prev.index} then ${e[0]})`;
    entries.push({ index: e[0], term: e[1], type: e[2] === 1 ? 'conf' : 'normal', data: new Uint8Array(e[3]) });
  }
  return entries;
}
