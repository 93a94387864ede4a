// Damaged state-machine data is refused, never served: bytes flipped inside LevelDB's own files
// (a table, the write-ahead log), records LevelDB itself considers valid but that are wrong (written
// past the encoding: only the per-record CRC can tell), and the stored format of before checksums.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { packr } from '../../src/storage/codec.js';
import { CORRUPTION_MARKER } from '../../src/storage/level-state-machine.js';
import * as keyspace from '../../src/storage/keyspace.js';
import type { Entry } from '../../src/raft/types.js';
import { LevelStateMachine, MemoryStateMachine, StateMachineCorruptionError, encodeCommand, type Command, type StateMachine } from '../../src/storage/index.js';

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string) => te.encode(s);
const s = (u: Uint8Array) => td.decode(u);
const hex = (k: string) => Buffer.from(k).toString('hex');
const dataKey = (k: string) => new Uint8Array(Buffer.concat([Buffer.from('d/'), Buffer.from(k)]));
const REBUILD = 'quorumkv rebuild --config /etc/qkv/cluster.json --node n9';
const all = { start: new Uint8Array(), end: new Uint8Array(), limit: 0 };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-corrupt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Random, incompressible values: their bytes appear verbatim in LevelDB's files (Snappy finds nothing to share). */
function values(...keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [k, randomBytes(24).toString('base64url')]));
}

async function applyPuts(sm: StateMachine, kv: Record<string, string>, session: Partial<Command> = {}): Promise<void> {
  let index = sm.appliedIndex();
  for (const [key, value] of Object.entries(kv)) {
    const command: Command = { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'put', key: b(key), value: b(value) }, ...session };
    const entry: Entry = { index: ++index, term: 1, type: 'normal', data: encodeCommand(command) };
    await sm.apply([entry]); // one LevelDB batch (one write-ahead log record) per entry
  }
}

/** Flips one bit in the middle of `needle` inside the dir's only file with `ext` that holds it. */
async function flipInside(dir: string, ext: string, needle: string): Promise<string> {
  const hits: string[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(ext))) {
    const file = join(dir, name);
    const bytes = await readFile(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes[at + (needle.length >> 1)]! ^= 0x04;
    await writeFile(file, bytes);
    hits.push(name);
  }
  if (hits.length !== 1) throw new Error(`expected the value in exactly one ${ext} file of ${dir}, found it in ${hits.length}`);
  return hits[0]!;
}

/** Values written and then moved by LevelDB from its write-ahead log into a table (.ldb) file. */
async function tableWith(dir: string, kv: Record<string, string>): Promise<void> {
  const sm = await LevelStateMachine.open({ dir });
  await applyPuts(sm, kv);
  await sm.close();
  // LevelDB turns the replayed log into a level-0 table when it opens.
  await (await LevelStateMachine.open({ dir })).close();
  const names = await readdir(dir);
  if (!names.some((n) => n.endsWith('.ldb'))) throw new Error(`no table file in ${names.join(', ')}`);
}

async function openRaw(dir: string): Promise<Level<Uint8Array, Uint8Array>> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return db;
}

test('a byte flipped inside a table file: the open finds it, names the key, and the machine refuses every read', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo', 'charlie');
  await tableWith(dir, kv);
  await flipInside(dir, '.ldb', kv.bravo!);

  const reports: StateMachineCorruptionError[] = [];
  const sm = await LevelStateMachine.open({ dir, rebuildCommand: REBUILD, onCorruption: (e) => reports.push(e) });
  t.teardown(() => sm.close());
  const err = sm.corruption()!;
  t.true(err instanceof StateMachineCorruptionError);
  t.is(err.dir, dir);
  t.is(err.key, `key ${hex('bravo')}`);
  t.regex(err.detail, /^data block checksum mismatch, and this record fails too: checksum mismatch .*\(table \d{6}\.ldb, block at byte \d+\)$/);
  t.true(err.message.includes(dir) && err.message.includes(hex('bravo')) && err.message.includes(REBUILD), err.message);
  t.deepEqual(reports, [err]);
  // Nothing is served, not even keys that check out: a disk that damaged one value is not trusted for the others.
  await t.throwsAsync(sm.get(b('bravo')), { is: err });
  await t.throwsAsync(sm.get(b('alpha')), { is: err });
  await t.throwsAsync(sm.scan(all), { is: err });
  await t.throwsAsync(sm.snapshot(), { is: err });
  await sm.close();

  // ...and no later open serves it either, until the node is rebuilt (the marker remembers).
  await stat(join(dir, CORRUPTION_MARKER));
  const again = await LevelStateMachine.open({ dir, rebuildCommand: REBUILD, onCorruption: (e) => reports.push(e) });
  t.teardown(() => again.close());
  await t.throwsAsync(again.get(b('alpha')), { instanceOf: StateMachineCorruptionError, message: /recorded in QUORUMKV-CORRUPT\.json/ });
  t.is(again.corruption()!.key, `key ${hex('bravo')}`);
  t.is(reports.length, 2, 'reported once per open');
});

test('without the table check, get of the damaged key rejects (never the bytes), then every read does', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo', 'charlie');
  await tableWith(dir, kv);
  await flipInside(dir, '.ldb', kv.bravo!);

  const reports: StateMachineCorruptionError[] = [];
  const sm = await LevelStateMachine.open({ dir, rebuildCommand: REBUILD, checkTables: false, onCorruption: (e) => reports.push(e) });
  t.teardown(() => sm.close());
  // Until the damage is found, keys that check out are served (each value is verified on its own).
  t.is(s((await sm.get(b('alpha')))!.value), kv.alpha!);

  const err = await t.throwsAsync(sm.get(b('bravo')), { instanceOf: StateMachineCorruptionError });
  t.is(err!.key, `key ${hex('bravo')}`);
  t.regex(err!.detail, /^checksum mismatch/);
  t.true(err!.message.includes(REBUILD));
  t.is(sm.corruption(), err);
  await t.throwsAsync(sm.get(b('alpha')), { is: err });
  await t.throwsAsync(sm.scan(all), { is: err });
  await t.throwsAsync(sm.snapshot(), { is: err });
  t.deepEqual(reports, [err], 'reported once');
  await sm.close();
  await stat(join(dir, CORRUPTION_MARKER));
});

test('without the table check, a scan over a damaged value rejects; it never returns the damaged value', async (t) => {
  const dir = await tempDir(t);
  const kv = values('k1', 'k2', 'k3');
  await tableWith(dir, kv);
  await flipInside(dir, '.ldb', kv.k3!);
  const sm = await LevelStateMachine.open({ dir, checkTables: false });
  t.teardown(() => sm.close());
  t.deepEqual(
    (await sm.scan({ start: b('k1'), end: b('k3'), limit: 0 })).items.map((i) => s(i.value)),
    [kv.k1, kv.k2],
  );
  const err = await t.throwsAsync(sm.scan(all), { instanceOf: StateMachineCorruptionError });
  t.is(err!.key, `key ${hex('k3')}`);
});

test('a byte flipped inside a key in a table file: a get would say "not found"; the table check finds it at open', async (t) => {
  const dir = await tempDir(t);
  await tableWith(dir, values('alpha', 'bravo', 'charlie'));
  await flipInside(dir, '.ldb', 'bravo');
  const unchecked = await LevelStateMachine.open({ dir, checkTables: false });
  t.is(await unchecked.get(b('bravo')), undefined, 'what LevelDB alone answers');
  await unchecked.close();
  const sm = await LevelStateMachine.open({ dir });
  t.teardown(() => sm.close());
  t.regex(sm.corruption()!.detail, /block checksum mismatch/);
  await t.throwsAsync(sm.get(b('bravo')), { instanceOf: StateMachineCorruptionError });
});

test('a byte flipped inside the write-ahead log (.log): the machine opens refusing every read, not a silent "not found"', async (t) => {
  // LevelDB (paranoid_checks off, and classic-level cannot turn it on) skips a log record that fails
  // its CRC together with the rest of its 32 KiB block, then deletes the log: later batches (and
  // their applied index) may survive while earlier ones are gone. No per-key check can see a
  // missing key, so nothing is served at all.
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo', 'charlie');
  const sm0 = await LevelStateMachine.open({ dir });
  await applyPuts(sm0, kv);
  await sm0.close();
  await flipInside(dir, '.log', kv.bravo!);

  const sm = await LevelStateMachine.open({ dir, rebuildCommand: REBUILD });
  const err = sm.corruption()!;
  t.true(err instanceof StateMachineCorruptionError);
  t.is(err.key, 'database');
  t.regex(err.detail, /dropped damaged records/);
  t.true(err.message.includes(REBUILD));
  await t.throwsAsync(sm.get(b('alpha')), { is: err });
  await t.throwsAsync(sm.get(b('bravo')), { is: err });
  await sm.close();
  // LevelDB has rewritten its files by now; the marker keeps the refusal.
  const again = await LevelStateMachine.open({ dir });
  t.teardown(() => again.close());
  await t.throwsAsync(again.get(b('alpha')), { instanceOf: StateMachineCorruptionError, message: /dropped damaged records/ });
});

test('the per-record checksum catches a record LevelDB considers valid: a value stored under another key', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo');
  const sm1 = await LevelStateMachine.open({ dir });
  await applyPuts(sm1, kv);
  await sm1.close();
  const db = await openRaw(dir);
  await db.put(dataKey('bravo'), (await db.get(dataKey('alpha')))!); // a fresh, valid LevelDB write
  await db.close();

  // (The table check at open would find it too: LevelDB moves it into a table as it opens.)
  const sm = await LevelStateMachine.open({ dir, checkTables: false });
  t.teardown(() => sm.close());
  const err = await t.throwsAsync(sm.get(b('bravo')), { instanceOf: StateMachineCorruptionError });
  t.is(err!.key, `key ${hex('bravo')}`);
});

test('the per-record checksum catches a damaged value that LevelDB rewrote with a valid block CRC (as a compaction does)', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo');
  const sm1 = await LevelStateMachine.open({ dir });
  await applyPuts(sm1, kv);
  await sm1.close();
  const db = await openRaw(dir);
  const raw = Buffer.from((await db.get(dataKey('bravo')))!);
  raw[raw.indexOf(kv.bravo!) + 10]! ^= 0x01;
  await db.put(dataKey('bravo'), raw);
  await (db as unknown as { compactRange(a: Uint8Array, b: Uint8Array): Promise<void> }).compactRange(dataKey('a'), dataKey('z')); // into a table, under fresh block CRCs
  await db.close();

  const sm = await LevelStateMachine.open({ dir, checkTables: false });
  t.teardown(() => sm.close());
  t.is(s((await sm.get(b('alpha')))!.value), kv.alpha!);
  await t.throwsAsync(sm.get(b('bravo')), { instanceOf: StateMachineCorruptionError, message: /checksum mismatch/ });
});

test('the table check at open also runs the per-record checksum: a damaged value under a valid block CRC is found before any read', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo');
  await tableWith(dir, kv);
  const db = await openRaw(dir);
  const raw = Buffer.from((await db.get(dataKey('bravo')))!);
  raw[raw.indexOf(kv.bravo!) + 10]! ^= 0x01;
  await db.put(dataKey('bravo'), raw);
  await (db as unknown as { compactRange(a: Uint8Array, b: Uint8Array): Promise<void> }).compactRange(dataKey('a'), dataKey('z'));
  await db.close();
  const sm = await LevelStateMachine.open({ dir });
  t.teardown(() => sm.close());
  t.is(sm.corruption()!.key, `key ${hex('bravo')}`);
  t.regex(sm.corruption()!.detail, /^checksum mismatch .*table \d{6}\.ldb/);
});

test('the per-record checksum catches a damaged session and a damaged applied index at open', async (t) => {
  for (const [what, key] of [
    ['session of client "c1"', 's/c1'],
    ['applied index', 'm/applied'],
  ] as const) {
    const dir = await tempDir(t);
    const sm1 = await LevelStateMachine.open({ dir });
    await applyPuts(sm1, values('alpha'), { clientId: 'c1', seq: 1, firstUnacked: 1 });
    await sm1.close();
    const db = await openRaw(dir);
    const raw = Buffer.from((await db.get(b(key)))!);
    raw[raw.length - 6]! ^= 0x01; // inside the msgpack body, just before the CRC
    await db.put(b(key), raw);
    await db.close();
    const err = await t.throwsAsync(LevelStateMachine.open({ dir }), { instanceOf: StateMachineCorruptionError }, key);
    t.is(err!.key, what);
  }
});

test('verify() finds damage no get can see: a key whose bytes changed', async (t) => {
  const dir = await tempDir(t);
  const kv = values('alpha', 'bravo');
  const sm1 = await LevelStateMachine.open({ dir });
  await applyPuts(sm1, kv);
  await sm1.close();
  const db = await openRaw(dir);
  await db.batch([
    { type: 'put', key: dataKey('brave'), value: (await db.get(dataKey('bravo')))! }, // 'bravo' with one key byte changed
    { type: 'del', key: dataKey('bravo') },
  ]);
  await db.close();

  const sm = await LevelStateMachine.open({ dir, checkTables: false }); // (with it, the open would find it)
  t.teardown(() => sm.close());
  t.is(await sm.get(b('bravo')), undefined); // gone: a get cannot tell
  const err = await t.throwsAsync(sm.verify(), { instanceOf: StateMachineCorruptionError });
  t.is(err!.key, `key ${hex('brave')}`);
});

test('verify() counts every record of an undamaged machine', async (t) => {
  const sm = await LevelStateMachine.open({ dir: await tempDir(t) });
  t.teardown(() => sm.close());
  await applyPuts(sm, values('a', 'b', 'c'));
  await applyPuts(sm, values('d'), { clientId: 'c1', seq: 1, firstUnacked: 1 });
  t.like(await sm.verify(), { records: 6 }); // four values, one session, the applied index
});

test('every single-byte change and every truncation of a stored record is detected, never decoded', (t) => {
  const key = dataKey('some-key');
  const record = keyspace.encodeStoredValue(key, { value: b('value bytes'), version: 3, createIndex: 7, modIndex: 11 });
  t.is(record[0], 0xc1);
  t.is(record[1], keyspace.STORED_RECORD_VERSION);
  t.deepEqual(keyspace.decodeStoredValue(key, record), { value: b('value bytes'), version: 3, createIndex: 7, modIndex: 11 });
  let tried = 0;
  for (let i = 0; i < record.length; i++) {
    for (let v = 0; v < 256; v++) {
      if (v === record[i]) continue;
      const damaged = new Uint8Array(record);
      damaged[i] = v;
      tried++;
      t.throws(() => keyspace.decodeStoredValue(key, damaged), { instanceOf: keyspace.DamagedRecordError }, `byte ${i} = ${v}`);
    }
  }
  for (let n = 0; n < record.length; n++) {
    t.throws(() => keyspace.decodeStoredValue(key, record.subarray(0, n)), { instanceOf: keyspace.DamagedRecordError }, `first ${n} bytes`);
  }
  t.throws(() => keyspace.decodeStoredValue(dataKey('other-key'), record), { instanceOf: keyspace.DamagedRecordError, message: /checksum mismatch/ });
  t.is(tried, record.length * 255);
});

test('a data dir written before checksums (format 0) still reads, snapshots, restores, and is rewritten as format 1', async (t) => {
  const dir = await tempDir(t);
  const db = await openRaw(dir);
  // Exactly what the previous encoding wrote: bare msgpack arrays.
  await db.batch([
    { type: 'put', key: dataKey('old'), value: packr.pack([b('legacy value'), 3, 5, 9]) },
    { type: 'put', key: b('s/c1'), value: packr.pack([1, 9, [[1, { index: 9, result: { op: 'put', prevExisted: true } }]]]) },
    { type: 'put', key: b('m/applied'), value: packr.pack([9, 2]) },
  ]);
  await db.close();

  const sm = await LevelStateMachine.open({ dir });
  t.is(sm.appliedIndex(), 9);
  t.is(sm.appliedTerm(), 2);
  const kv = (await sm.get(b('old')))!;
  t.deepEqual([s(kv.value), kv.version, kv.createIndex, kv.modIndex], ['legacy value', 3, 5, 9]);
  t.deepEqual(
    (await sm.scan(all)).items.map((i) => s(i.key)),
    ['old'],
  );
  t.like(await sm.verify(), { records: 3 });
  // A snapshot carries the old records as they are; a receiver decodes them.
  const snap = await sm.snapshot();
  const fresh = new MemoryStateMachine();
  await fresh.restore({ meta: { index: snap.index, term: 2, conf: { voters: ['n1'], learners: [] } }, data: snap.data });
  t.is(s((await fresh.get(b('old')))!.value), 'legacy value');
  // The old session still answers a retry.
  const retry: Command = { clientId: 'c1', seq: 1, firstUnacked: 1, op: { op: 'put', key: b('old'), value: b('again') } };
  const [dup] = await sm.apply([{ index: 10, term: 2, type: 'normal', data: encodeCommand(retry) }]);
  t.like(dup, { index: 9, duplicate: true });
  // The next write of a key stores it in the checksummed format.
  await applyPuts(sm, { old: 'new value' });
  await sm.close();
  const after = await openRaw(dir);
  t.teardown(() => after.close());
  for (const key of [dataKey('old'), b('m/applied'), b('s/c1')]) {
    const raw = (await after.get(key))!;
    t.deepEqual([raw[0], raw[1]], [0xc1, keyspace.STORED_RECORD_VERSION], s(key));
  }
});
