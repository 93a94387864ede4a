// CRC-32 (IEEE 802.3, the zlib/gzip polynomial) of snapshot data, so that a receiver can tell a
// damaged or truncated transfer from a good one before handing it to Raft.
import * as zlib from 'node:zlib';

type Crc32Fn = (data: Uint8Array, value?: number) => number;

// Node >= 20.15 ships a native crc32; older 20.x lines fall back to a table-driven one.
const native: Crc32Fn | undefined = (zlib as unknown as { crc32?: Crc32Fn }).crc32;

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

function portableCrc32(data: Uint8Array, value = 0): number {
  table ??= makeTable();
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it) when given. */
export function crc32(data: Uint8Array, value = 0): number {
  return native ? native(data, value) >>> 0 : portableCrc32(data, value);
}

/** Exposed so tests can check the fallback against the native implementation. */
export { portableCrc32 };
