import type { ConfChange, ConfChangeType, ConfState } from './types.js';

// ConfChange entries are interpreted by the core itself, so their encoding lives here (the core
// may not depend on msgpackr). Each entry carries the change AND the whole configuration that
// results from it: a node that joins and replays the log from index 1 never saw the bootstrap
// membership, so applying deltas alone would leave it with a wrong (e.g. one-voter) view.
//
// Layout: [version u8][type u8][idLen u16][id][ctxLen u32][ctx][voters u16 (len u16, id)*][learners u16 (len u16, id)*]

const TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];
const VERSION = 2;

export class MalformedConfChangeError extends Error {
  override name = 'MalformedConfChangeError';
}

/** A decoded conf entry: the change and the membership it produces. */
export interface ConfEntry {
  change: ConfChange;
  result: ConfState;
}

/** The membership after applying `change` to `conf` (pure; does not validate). */
export function applyConfChangeTo(conf: ConfState, change: ConfChange): ConfState {
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  switch (change.type) {
    case 'addVoter':
      learners.delete(change.nodeId);
      voters.add(change.nodeId);
      break;
    case 'addLearner':
      if (!voters.has(change.nodeId)) learners.add(change.nodeId);
      break;
    case 'removeNode':
      voters.delete(change.nodeId);
      learners.delete(change.nodeId);
      break;
  }
  return { voters: [...voters].sort(), learners: [...learners].sort() };
}

class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }
  u8(value: number): void {
    this.push(Uint8Array.of(value));
  }
  u16(value: number): void {
    this.push(Uint8Array.of(value >> 8, value & 0xff));
  }
  u32(value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value);
    this.push(bytes);
  }
  bytes16(value: Uint8Array): void {
    this.u16(value.length);
    this.push(value);
  }
  bytes32(value: Uint8Array): void {
    this.u32(value.length);
    this.push(value);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

class Reader {
  private offset = 0;
  private readonly view: DataView;
  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }
  private need(n: number): void {
    if (this.offset + n > this.data.length) throw new MalformedConfChangeError('conf change entry is truncated');
  }
  u8(): number {
    this.need(1);
    return this.data[this.offset++]!;
  }
  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }
  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.data.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  done(): boolean {
    return this.offset === this.data.length;
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function writeIds(writer: Writer, ids: readonly string[]): void {
  writer.u16(ids.length);
  for (const id of ids) writer.bytes16(utf8.encode(id));
}

function readIds(reader: Reader): string[] {
  const count = reader.u16();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(fromUtf8.decode(reader.bytes(reader.u16())));
  return ids;
}

/** Encode a change together with the membership it results in. */
export function encodeConfEntry(change: ConfChange, result: ConfState): Uint8Array {
  const writer = new Writer();
  writer.u8(VERSION);
  writer.u8(TYPES.indexOf(change.type));
  writer.bytes16(utf8.encode(change.nodeId));
  writer.bytes32(change.context ?? new Uint8Array(0));
  writeIds(writer, result.voters);
  writeIds(writer, result.learners);
  return writer.finish();
}

export function decodeConfEntry(data: Uint8Array): ConfEntry {
  const reader = new Reader(data);
  if (reader.u8() !== VERSION) throw new MalformedConfChangeError('conf change entry has an unknown version');
  const type = TYPES[reader.u8()];
  if (!type) throw new MalformedConfChangeError('conf change entry has an unknown type');
  const nodeId = fromUtf8.decode(reader.bytes(reader.u16()));
  const context = reader.bytes(reader.u32());
  const voters = readIds(reader);
  const learners = readIds(reader);
  if (!reader.done()) throw new MalformedConfChangeError('conf change entry has trailing bytes');
  const change: ConfChange = context.length > 0 ? { type, nodeId, context } : { type, nodeId };
  return { change, result: { voters, learners } };
}

/** The change alone (for the runtime, which only needs to know whom to connect to). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  return decodeConfEntry(data).change;
}
