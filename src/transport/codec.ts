// Wire encoding of Raft messages: msgpackr with self-describing records (each encoded batch carries
// its own record definitions, so no state is shared between encoder and decoder and a restarted
// peer decodes the next batch as well as the first). Decoding validates every field because the
// bytes come from the network: a malformed batch raises MalformedMessageError and is dropped whole.
import { Packr } from 'msgpackr';
import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '../raft/types.js';
import { MalformedMessageError } from './errors.js';

// mapsAsObjects: plain msgpack maps (from any other encoder) decode to objects, which validation accepts.
const packr = new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false });

const MESSAGE_TYPES: ReadonlySet<string> = new Set<MessageType>([
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
  'transferLeader',
]);

const ENTRY_TYPES: ReadonlySet<string> = new Set<EntryType>(['normal', 'conf']);

/** A host:port never needs more (a DNS name is at most 253 characters). */
const MAX_ADDRESS_CHARS = 300;

export function encodeMessages(messages: readonly Message[]): Uint8Array {
  return packr.pack(messages);
}

/**
 * Decode and validate a batch. Returned objects are fresh (unknown fields stripped) and every
 * `data` is a plain Uint8Array; entry data may view `bytes`, so callers must not reuse the buffer.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new MalformedMessageError('', `not valid msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(value)) throw new MalformedMessageError('', `expected an array of messages, got ${describe(value)}`);
  const out: Message[] = new Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = readMessage(value[i], `[${i}]`);
  return out;
}

/**
 * The element count of a msgpack array from its header alone (undefined when `bytes` does not
 * start with an array header): lets the receiver refuse a batch of too many messages unread.
 */
export function msgpackArrayLength(bytes: Uint8Array): number | undefined {
  const b = bytes[0];
  if (b === undefined) return undefined;
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b === 0xdc && bytes.length >= 3) return (bytes[1]! << 8) | bytes[2]!;
  if (b === 0xdd && bytes.length >= 5) return ((bytes[1]! << 24) >>> 0) + ((bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!);
  return undefined;
}

/** Rough wire size of a message, used for queue and batch byte limits (never for correctness). */
export function estimateMessageBytes(m: Message): number {
  let n = 64 + (m.context?.length ?? 0);
  for (const e of m.entries) n += 24 + e.data.byteLength;
  if (m.snapshot) n += 64 + m.snapshot.data.byteLength;
  return n;
}

function readMessage(v: unknown, path: string): Message {
  const o = record(v, path);
  const type = o.type;
  if (typeof type !== 'string' || !MESSAGE_TYPES.has(type)) {
    throw new MalformedMessageError(`${path}.type`, `unknown message type ${describe(type)}`);
  }
  const entriesValue = o.entries;
  if (!Array.isArray(entriesValue)) throw new MalformedMessageError(`${path}.entries`, `expected an array, got ${describe(entriesValue)}`);
  const entries: Entry[] = new Array(entriesValue.length);
  for (let i = 0; i < entriesValue.length; i++) entries[i] = readEntry(entriesValue[i], `${path}.entries[${i}]`);
  const m: Message = {
    type: type as MessageType,
    from: nodeId(o.from, `${path}.from`),
    to: nodeId(o.to, `${path}.to`),
    term: count(o.term, `${path}.term`),
    logTerm: count(o.logTerm, `${path}.logTerm`),
    index: count(o.index, `${path}.index`),
    entries,
    commit: count(o.commit, `${path}.commit`),
    reject: bool(o.reject, `${path}.reject`),
    rejectHint: count(o.rejectHint, `${path}.rejectHint`),
  };
  if (o.rejectTerm !== undefined) m.rejectTerm = count(o.rejectTerm, `${path}.rejectTerm`);
  if (o.context !== undefined) m.context = str(o.context, `${path}.context`);
  if (o.leaderCommit !== undefined) m.leaderCommit = count(o.leaderCommit, `${path}.leaderCommit`);
  if (o.commitOnly !== undefined) m.commitOnly = bool(o.commitOnly, `${path}.commitOnly`);
  if (o.leaderHint !== undefined) m.leaderHint = nodeId(o.leaderHint, `${path}.leaderHint`);
  if (o.leaderAddress !== undefined) {
    m.leaderAddress = str(o.leaderAddress, `${path}.leaderAddress`);
    if (m.leaderAddress.length > MAX_ADDRESS_CHARS) throw new MalformedMessageError(`${path}.leaderAddress`, `longer than ${MAX_ADDRESS_CHARS} characters`);
  }
  if (o.snapshot !== undefined) m.snapshot = readSnapshot(o.snapshot, `${path}.snapshot`);
  if (m.type === 'snap' && !m.snapshot) throw new MalformedMessageError(`${path}.snapshot`, `a 'snap' message must carry a snapshot`);
  return m;
}

function readEntry(v: unknown, path: string): Entry {
  const o = record(v, path);
  const type = o.type;
  if (typeof type !== 'string' || !ENTRY_TYPES.has(type)) {
    throw new MalformedMessageError(`${path}.type`, `unknown entry type ${describe(type)}`);
  }
  return {
    term: count(o.term, `${path}.term`),
    index: count(o.index, `${path}.index`),
    type: type as EntryType,
    data: bytes(o.data, `${path}.data`),
  };
}

function readSnapshot(v: unknown, path: string): Snapshot {
  const o = record(v, path);
  const meta = record(o.meta, `${path}.meta`);
  const conf = record(meta.conf, `${path}.meta.conf`);
  const confState: ConfState = {
    voters: nodeIds(conf.voters, `${path}.meta.conf.voters`),
    learners: nodeIds(conf.learners, `${path}.meta.conf.learners`),
  };
  return {
    meta: { index: count(meta.index, `${path}.meta.index`), term: count(meta.term, `${path}.meta.term`), conf: confState },
    data: bytes(o.data, `${path}.data`),
  };
}

function record(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new MalformedMessageError(path, `expected an object, got ${describe(v)}`);
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new MalformedMessageError(path, `expected a plain object, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

function count(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new MalformedMessageError(path, `expected a non-negative safe integer, got ${describe(v)}`);
  }
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new MalformedMessageError(path, `expected a boolean, got ${describe(v)}`);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new MalformedMessageError(path, `expected a string, got ${describe(v)}`);
  return v;
}

function nodeId(v: unknown, path: string): string {
  const s = str(v, path);
  if (s.length === 0) throw new MalformedMessageError(path, 'expected a non-empty node id');
  return s;
}

function nodeIds(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw new MalformedMessageError(path, `expected an array of node ids, got ${describe(v)}`);
  return v.map((id, i) => nodeId(id, `${path}[${i}]`));
}

function bytes(v: unknown, path: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new MalformedMessageError(path, `expected bytes, got ${describe(v)}`);
  // msgpackr hands out Buffers; a plain Uint8Array view keeps both transports' output identical.
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (typeof v === 'object') return `an object of class ${(v as object).constructor?.name ?? 'null-prototype'}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}`;
  return `${typeof v} ${String(v)}`;
}
