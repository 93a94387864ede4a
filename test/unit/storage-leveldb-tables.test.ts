// The LevelDB table check (src/storage/leveldb-tables.ts) against real table files written by
// classic-level: a clean table passes, and every damaged byte is found — except the footer's
// padding, which LevelDB never reads.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { checkTable, crc32c, liveTables } from '../../src/storage/leveldb-tables.js';

const none = () => undefined;

async function tableFile(): Promise<{ bytes: Buffer; sstables: string; name: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-tables-'));
  try {
    const db = new Level<string, string>(dir, { blockSize: 1024 });
    await db.open();
    // Incompressible values (raw blocks) and repetitive ones (Snappy blocks), several blocks of each.
    for (let i = 0; i < 12; i++) await db.put(`r${String(i).padStart(3, '0')}`, randomBytes(150).toString('base64'));
    for (let i = 0; i < 12; i++) await db.put(`z${String(i).padStart(3, '0')}`, `${'abc'.repeat(100)}${i}`);
    await (db as unknown as { compactRange(a: string, b: string): Promise<void> }).compactRange('a', 'zzz');
    const sstables = (db as unknown as { getProperty(p: string): string }).getProperty('leveldb.sstables');
    await db.close();
    const names = (await readdir(dir)).filter((n) => n.endsWith('.ldb'));
    if (names.length !== 1) throw new Error(`expected one table, got ${names.join(', ')}`);
    return { bytes: await readFile(join(dir, names[0]!)), sstables, name: names[0]! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function varintLength(bytes: Uint8Array, pos: number): number {
  let n = 0;
  while (bytes[pos + n]! >= 0x80) n++;
  return n + 1;
}

test('CRC-32C matches the standard check value', (t) => {
  t.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  const long = randomBytes(1000);
  t.is(crc32c(long, 3, 997), crc32c(long.subarray(3, 997)));
});

test('a clean table passes and every value entry is handed to the record check; sstables lists it', async (t) => {
  const { bytes, sstables, name } = await tableFile();
  const seen: string[] = [];
  t.is(
    checkTable(bytes, (key) => {
      seen.push(Buffer.from(key).toString());
      return undefined;
    }),
    undefined,
  );
  t.is(seen.length, 24);
  t.deepEqual(liveTables(sstables), [{ number: Number(name.slice(0, 6)), size: bytes.length }]);
  // A record the caller rejects is reported with its key and the block it sits in.
  const damage = checkTable(bytes, (key) => (Buffer.from(key).toString() === 'z005' ? 'bad record' : undefined));
  t.is(Buffer.from(damage!.key!).toString(), 'z005');
  t.is(damage!.detail, 'bad record');
});

test('every single damaged byte of a table is found, except the footer padding LevelDB never reads', async (t) => {
  const { bytes } = await tableFile();
  const footer = bytes.length - 48;
  let handles = 0;
  for (let i = 0; i < 4; i++) handles += varintLength(bytes, footer + handles);
  const padding = [footer + handles, bytes.length - 8];
  let missed = 0;
  let checked = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (i >= padding[0]! && i < padding[1]!) continue;
    for (const mask of [0x01, 0x80]) {
      // The continuation bit of the handles' last byte, followed by a zero padding byte, encodes the same number.
      if (i === footer + handles - 1 && mask === 0x80) continue;
      const damaged = Buffer.from(bytes);
      damaged[i]! ^= mask;
      checked++;
      if (!checkTable(damaged, none)) missed++;
    }
  }
  t.is(missed, 0, `of ${checked} damaged copies`);
  t.true(checked > 2000);
});

test('a truncated table is found', async (t) => {
  const { bytes } = await tableFile();
  for (const n of [0, 47, 48, bytes.length >> 1, bytes.length - 1]) t.truthy(checkTable(bytes.subarray(0, n), none), `${n} bytes`);
});
