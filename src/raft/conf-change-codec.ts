import type { ConfChange, ConfChangeType } from './types.ts';

// ConfChange entries are interpreted by the core itself, so their encoding lives here (the core
// may not depend on msgpackr). Layout: [version u8][type u8][idLen u16][id utf8][ctxLen u32][ctx].

const TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];
const VERSION = 1;

export class MalformedConfChangeError extends Error {
  override name = 'MalformedConfChangeError';
}

export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = new TextEncoder().encode(change.nodeId);
  const context = change.context ?? new Uint8Array(0);
  const out = new Uint8Array(1 + 1 + 2 + id.length + 4 + context.length);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = TYPES.indexOf(change.type);
  view.setUint16(2, id.length);
  out.set(id, 4);
  view.setUint32(4 + id.length, context.length);
  out.set(context, 8 + id.length);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 8 || data[0] !== VERSION) throw new MalformedConfChangeError('conf change entry has an unknown version or is truncated');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = TYPES[data[1]!];
  if (!type) throw new MalformedConfChangeError(`conf change entry has unknown type ${data[1]}`);
  const idLength = view.getUint16(2);
  if (data.length < 8 + idLength) throw new MalformedConfChangeError('conf change entry is truncated');
  const nodeId = new TextDecoder().decode(data.subarray(4, 4 + idLength));
  const contextLength = view.getUint32(4 + idLength);
  if (data.length !== 8 + idLength + contextLength) throw new MalformedConfChangeError('conf change entry has a bad context length');
  const context = data.slice(8 + idLength);
  return contextLength > 0 ? { type, nodeId, context } : { type, nodeId };
}
