// Keys and values cross the wire as bytes; the SDK accepts strings (UTF-8) for convenience.
import { ClientUsageError } from '../api/errors.js';

export type Bytes = string | Uint8Array;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

export function toBytes(v: Bytes, what: string): Uint8Array {
  if (typeof v === 'string') return encoder.encode(v);
  if (v instanceof Uint8Array) return v;
  throw new ClientUsageError(`${what} must be a string or a Uint8Array, got ${v === null ? 'null' : typeof v}`);
}

/** UTF-8 text of bytes; invalid sequences become U+FFFD. */
export function bytesToText(b: Uint8Array): string {
  return decoder.decode(b);
}

/** UTF-8 text, or undefined when the bytes are not valid UTF-8 (so callers can fall back to base64). */
export function bytesToStrictText(b: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(b);
  } catch {
    return undefined;
  }
}
