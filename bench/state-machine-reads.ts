// Rough cost of the state machine's per-record checksums on the read path (not part of `npm run
// bench`): `node --import tsx bench/state-machine-reads.ts [--keys N] [--reads N] [--get-only] [--open]`.
//   decode  decodeStoredValue of a checksummed record (format 1) vs a bare one (format 0, which is
//           what every read decoded before checksums): the difference is the CRC-32. Each
//           decode gets a fresh copy of the bytes, as each LevelDB read does.
//   get     LevelStateMachine.get end to end (LevelDB, decode, copy): one at a time, and 64 at once.
//   open    LevelStateMachine.open with and without the table check (reads every table file once).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packr } from '../src/storage/codec.js';
import { encodeCommand, LevelStateMachine } from '../src/storage/index.js';
import { dataKey, decodeStoredValue, encodeStoredValue } from '../src/storage/keyspace.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const KEYS = arg('--keys', 20_000);
const READS = arg('--reads', 50_000);
const SIZES = [100, 1024, 16 * 1024];
const te = new TextEncoder();

function nsPerOp(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(n, 10_000); i++) fn(); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function usPerGet(sm: LevelStateMachine, keys: Uint8Array[], concurrency: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < READS) {
      const k = keys[(next++ * 7919) % keys.length]!;
      if (!(await sm.get(k))) throw new Error('missing key');
    }
  };
  next = 0;
  await Promise.all(Array.from({ length: concurrency }, worker)); // warm (and fill the cache)
  next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Number(process.hrtime.bigint() - t0) / 1000 / READS;
}

console.log(`node ${process.version}, ${KEYS} keys, ${READS} reads per case`);
console.log('decode (ns/op)    format 0   format 1   CRC share');
for (const size of process.argv.includes('--get-only') ? [] : SIZES) {
  const key = dataKey(te.encode('user:000123'));
  const v = { value: new Uint8Array(size).fill(0x61), version: 3, createIndex: 10, modIndex: 12 };
  const bare = packr.pack([v.value, v.version, v.createIndex, v.modIndex]);
  const sealed = encodeStoredValue(key, v);
  const n = size > 4096 ? 100_000 : 500_000;
  const old = nsPerOp(n, () => decodeStoredValue(key, new Uint8Array(bare)));
  const now = nsPerOp(n, () => decodeStoredValue(key, new Uint8Array(sealed)));
  console.log(
    `  ${String(size).padStart(6)} B value  ${old.toFixed(0).padStart(8)}   ${now.toFixed(0).padStart(8)}   ${(((now - old) / now) * 100).toFixed(0).padStart(6)} %`,
  );
}

console.log('get (µs/op)       sequential   64 in flight');
for (const size of SIZES) {
  const dir = await mkdtemp(path.join(tmpdir(), 'qkv-bench-reads-'));
  try {
    const sm = await LevelStateMachine.open({ dir });
    const keys: Uint8Array[] = [];
    const value = new Uint8Array(randomBytes(size)); // incompressible, as most stored values are
    for (let i = 0; i < KEYS; i += 500) {
      const entries = [];
      for (let j = i; j < Math.min(KEYS, i + 500); j++) {
        const key = te.encode(`user:${String(j).padStart(8, '0')}`);
        keys.push(key);
        const data = encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op: { op: 'put', key, value } });
        entries.push({ index: j + 1, term: 1, type: 'normal' as const, data });
      }
      await sm.apply(entries);
    }
    const seq = await usPerGet(sm, keys, 1);
    const par = await usPerGet(sm, keys, 64);
    console.log(`  ${String(size).padStart(6)} B value  ${seq.toFixed(2).padStart(10)}   ${par.toFixed(2).padStart(12)}`);
    await sm.close();
    if (process.argv.includes('--open')) {
      const ms = async (checkTables: boolean) => {
        const t0 = performance.now();
        await (await LevelStateMachine.open({ dir, checkTables })).close();
        return performance.now() - t0;
      };
      await ms(false); // the first open moves the write-ahead log into a table
      const off = await ms(false);
      const on = await ms(true);
      const tables = (await readdir(dir)).filter((n) => n.endsWith('.ldb'));
      const mib = (await Promise.all(tables.map((n) => stat(path.join(dir, n))))).reduce((a, st) => a + st.size, 0) / 2 ** 20;
      console.log(`    open: ${off.toFixed(0)} ms unchecked, ${on.toFixed(0)} ms with the table check (${tables.length} tables, ${mib.toFixed(1)} MiB)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
