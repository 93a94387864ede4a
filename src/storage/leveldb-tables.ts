// Checks LevelDB table files the way LevelDB itself would with `verify_checksums` (which
// classic-level does not let us turn on): every block's masked CRC-32C, the footer's magic, and the
// block structure, without handing a damaged block to LevelDB (which, unchecked, returns wrong
// entries, silently skips some, or aborts the process on an assertion).
//
// Table format (LevelDB's doc/table_format.md, stable since LevelDB 1.0):
//   blocks, each followed by a 5-byte trailer: type (0 raw, 1 Snappy) and the masked CRC-32C of
//   the stored block bytes plus the type byte;
//   a 48-byte footer: the metaindex and index BlockHandles (varint64 offset, varint64 size),
//   padding, and the 8-byte magic number.
// The index block maps a separator key to each data block's handle; the metaindex block maps
// "filter.<policy>" to the filter block. Keys in data and index blocks are internal keys: the user
// key followed by 8 bytes of (sequence << 8 | type), little-endian; type 1 is a value.

const FOOTER_BYTES = 48;
const TRAILER_BYTES = 5;
const MAGIC = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]; // 0xdb4775248b80fb57, little-endian
const MASK_DELTA = 0xa282ead8;
/** A block above this (uncompressed) is not something LevelDB wrote (blocks are ~4 KiB, values rarely MiBs). */
const MAX_BLOCK_BYTES = 256 * 1024 * 1024;

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), slice-by-8.
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/** CRC-32C of bytes[start, end). */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function unmask(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

/** A table's bytes do not check out. */
export class DamagedTableError extends Error {
  override name = 'DamagedTableError';
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** [value, next position] of a varint of at most `maxBytes` (5: 32-bit, 10: 64-bit, kept below 2^53). */
function varint(bytes: Uint8Array, pos: number, end: number, maxBytes: number): [number, number] {
  let value = 0;
  for (let i = 0; i < maxBytes; i++) {
    if (pos >= end) throw new DamagedTableError('varint runs past its block');
    const b = bytes[pos++]!;
    value += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) {
      if (!Number.isSafeInteger(value)) throw new DamagedTableError('varint out of range');
      return [value, pos];
    }
  }
  throw new DamagedTableError('varint too long');
}

/** Decompresses a raw Snappy stream (the format LevelDB stores compressed blocks in). */
export function snappyUncompress(src: Uint8Array): Uint8Array {
  const [length, start] = varint(src, 0, src.length, 5);
  if (length > MAX_BLOCK_BYTES) throw new DamagedTableError(`compressed block claims ${length} bytes`);
  const out = new Uint8Array(length);
  let o = 0;
  let pos = start;
  while (pos < src.length) {
    const tag = src[pos++]!;
    let len: number;
    let offset: number;
    switch (tag & 3) {
      case 0: {
        len = tag >>> 2;
        if (len >= 60) {
          const n = len - 59;
          if (pos + n > src.length) throw new DamagedTableError('truncated Snappy literal');
          len = 0;
          for (let i = 0; i < n; i++) len += src[pos + i]! * 2 ** (8 * i);
          pos += n;
        }
        len += 1;
        if (pos + len > src.length || o + len > length) throw new DamagedTableError('Snappy literal out of bounds');
        out.set(src.subarray(pos, pos + len), o);
        pos += len;
        o += len;
        continue;
      }
      case 1:
        if (pos >= src.length) throw new DamagedTableError('truncated Snappy copy');
        len = ((tag >>> 2) & 7) + 4;
        offset = ((tag >>> 5) << 8) | src[pos++]!;
        break;
      case 2:
        if (pos + 2 > src.length) throw new DamagedTableError('truncated Snappy copy');
        len = (tag >>> 2) + 1;
        offset = src[pos]! | (src[pos + 1]! << 8);
        pos += 2;
        break;
      default:
        if (pos + 4 > src.length) throw new DamagedTableError('truncated Snappy copy');
        len = (tag >>> 2) + 1;
        offset = u32(src, pos);
        pos += 4;
    }
    if (offset === 0 || offset > o || o + len > length) throw new DamagedTableError('Snappy copy out of bounds');
    if (offset >= len) {
      out.copyWithin(o, o - offset, o - offset + len);
      o += len;
    } else {
      for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!; // overlapping: a run
    }
  }
  if (o !== length) throw new DamagedTableError(`Snappy block decodes to ${o} bytes, not the ${length} it claims`);
  return out;
}

interface Handle {
  offset: number;
  size: number;
}

function handleAt(bytes: Uint8Array, pos: number, end: number): [Handle, number] {
  const [offset, p] = varint(bytes, pos, end, 10);
  const [size, next] = varint(bytes, p, end, 10);
  return [{ offset, size }, next];
}

/** The block's contents after checking its trailer's CRC (throws DamagedTableError). */
function readBlock(file: Uint8Array, h: Handle, what: string): Uint8Array {
  const blocksEnd = file.length - FOOTER_BYTES;
  if (h.offset + h.size + TRAILER_BYTES > blocksEnd) throw new DamagedTableError(`${what} block handle points outside the file`);
  const typeAt = h.offset + h.size;
  if (unmask(u32(file, typeAt + 1)) !== crc32c(file, h.offset, typeAt + 1)) throw new DamagedTableError(`${what} block checksum mismatch`);
  const type = file[typeAt];
  const stored = file.subarray(h.offset, typeAt);
  if (type === 0) return stored;
  if (type === 1) return snappyUncompress(stored);
  throw new DamagedTableError(`${what} block has unknown type ${type}`);
}

/** The [key, value] entries of a (prefix-compressed) block. */
function blockEntries(block: Uint8Array, what: string): [Uint8Array, Uint8Array][] {
  if (block.length < 4) throw new DamagedTableError(`${what} block is too short`);
  const restarts = u32(block, block.length - 4);
  const entriesEnd = block.length - 4 * (restarts + 1);
  if (restarts === 0 || entriesEnd < 0) throw new DamagedTableError(`${what} block has a bad restart count`);
  const out: [Uint8Array, Uint8Array][] = [];
  let key = new Uint8Array(0);
  let pos = 0;
  while (pos < entriesEnd) {
    let shared: number;
    let unshared: number;
    let valueBytes: number;
    [shared, pos] = varint(block, pos, entriesEnd, 5);
    [unshared, pos] = varint(block, pos, entriesEnd, 5);
    [valueBytes, pos] = varint(block, pos, entriesEnd, 5);
    if (shared > key.length || pos + unshared + valueBytes > entriesEnd) throw new DamagedTableError(`bad entry in ${what} block`);
    const next = new Uint8Array(shared + unshared);
    next.set(key.subarray(0, shared), 0);
    next.set(block.subarray(pos, pos + unshared), shared);
    pos += unshared;
    key = next;
    out.push([key, block.subarray(pos, pos + valueBytes)]);
    pos += valueBytes;
  }
  return out;
}

export interface TableDamage {
  /** Byte offset in the table file of the damaged block (or of the footer). */
  offset: number;
  detail: string;
  /** The stored (user-level) key whose record failed `checkRecord`, when one is known. */
  key?: Uint8Array;
  /** User-key bounds of the damaged data block, when known: (after, upTo]. */
  after?: Uint8Array;
  upTo?: Uint8Array;
}

/**
 * Checks one table file's bytes. `checkRecord(key, value)` is run on every value entry of every data
 * block (also of a block failing its CRC, to name the damaged key) and returns a problem or
 * undefined. Returns the first damage found, or undefined.
 */
export function checkTable(file: Uint8Array, checkRecord: (key: Uint8Array, value: Uint8Array) => string | undefined): TableDamage | undefined {
  if (file.length < FOOTER_BYTES) return { offset: 0, detail: `${file.length} bytes is shorter than a table footer` };
  const footerAt = file.length - FOOTER_BYTES;
  for (let i = 0; i < 8; i++) {
    if (file[file.length - 8 + i] !== MAGIC[i]) return { offset: footerAt, detail: 'bad table magic number (the end of the file is damaged)' };
  }
  let index: [Uint8Array, Uint8Array][];
  try {
    const [meta, p] = handleAt(file, footerAt, footerAt + 40);
    const [indexHandle] = handleAt(file, p, footerAt + 40);
    for (const [, v] of blockEntries(readBlock(file, meta, 'metaindex'), 'metaindex')) readBlock(file, handleAt(v, 0, v.length)[0], 'filter');
    index = blockEntries(readBlock(file, indexHandle, 'index'), 'index');
  } catch (err) {
    if (!(err instanceof DamagedTableError)) throw err;
    return { offset: footerAt, detail: err.message };
  }
  let after: Uint8Array | undefined;
  for (const [separator, v] of index) {
    const upTo = separator.length >= 8 ? separator.subarray(0, separator.length - 8) : separator;
    let h: Handle;
    try {
      h = handleAt(v, 0, v.length)[0];
    } catch (err) {
      return { offset: footerAt, detail: `index entry: ${(err as Error).message}` };
    }
    let damage: string | undefined;
    let contents: Uint8Array | undefined;
    try {
      contents = readBlock(file, h, 'data');
    } catch (err) {
      if (!(err instanceof DamagedTableError)) throw err;
      damage = err.message;
      // Still try to read it, to name the key whose record is damaged.
      const stored = file.subarray(h.offset, Math.min(h.offset + h.size, footerAt));
      try {
        contents = file[h.offset + h.size] === 1 ? snappyUncompress(stored) : stored;
      } catch {
        contents = undefined;
      }
    }
    if (contents) {
      try {
        for (const [k, value] of blockEntries(contents, 'data')) {
          if (k.length < 8 || k[k.length - 8] !== 1) continue; // a deletion marker has no record
          const key = k.subarray(0, k.length - 8);
          const problem = checkRecord(key, value);
          if (problem) return { offset: h.offset, detail: damage ? `${damage}, and this record fails too: ${problem}` : problem, key, after, upTo };
        }
      } catch (err) {
        if (!(err instanceof DamagedTableError)) throw err;
        damage ??= err.message;
      }
    }
    if (damage) return { offset: h.offset, detail: damage, after, upTo };
    after = upTo;
  }
  return undefined;
}

/** The live tables, [file number, size], from LevelDB's `leveldb.sstables` property. */
export function liveTables(sstablesProperty: string): { number: number; size: number }[] {
  const out: { number: number; size: number }[] = [];
  for (const m of sstablesProperty.matchAll(/^ (\d+):(\d+)\[/gm)) out.push({ number: Number(m[1]), size: Number(m[2]) });
  return out;
}
