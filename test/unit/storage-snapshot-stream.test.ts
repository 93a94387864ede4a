import test, { type ExecutionContext } from 'ava';
import { putEntries, tempDir as fixtureDir } from './storage-fixtures.js';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidSnapshotError, LevelStateMachine } from '../../src/storage/index.js';
import { recoverStateMachineSwap } from '../../src/storage/level-state-machine.js';
import { MemoryFs } from '../../src/storage/memory-fs.js';
import { openSnapshotFile, readSnapshotFileHeader, writeSnapshotFile } from '../../src/storage/snapshot-file.js';
import { SnapshotStore, decodeSnapshotRef, encodeSnapshotRef, type SnapshotRef } from '../../src/storage/snapshot-store.js';

const te = new TextEncoder();
const td = new TextDecoder();
const conf = { voters: ['n1', 'n2'], learners: ['n3'] };

const tempDir = (t: ExecutionContext) => fixtureDir(t, 'qkv-snapstream-');
const puts = putEntries;

async function machine(t: ExecutionContext, dir: string): Promise<LevelStateMachine> {
  const sm = await LevelStateMachine.open({ dir, checkTables: false });
  t.teardown(() => sm.close());
  return sm;
}

async function snapshotOf(sm: LevelStateMachine, store: SnapshotStore): Promise<SnapshotRef> {
  const stream = await sm.snapshotStream();
  return writeSnapshotFile(store, { index: stream.applied.index, term: stream.applied.term, conf, app: te.encode('members') }, stream.chunks);
}

async function restore(sm: LevelStateMachine, store: SnapshotStore, ref: SnapshotRef): Promise<void> {
  const { chunks } = await openSnapshotFile(store, ref);
  await sm.restoreStream({ index: ref.index, term: ref.term }, chunks);
}

test('a snapshot streams from a point-in-time view while writes go on, and restores into a swapped-in database', async (t) => {
  const dir = await tempDir(t);
  const store = await SnapshotStore.open({ dir: join(dir, 'snapshots') });
  const a = await machine(t, join(dir, 'a'));
  await a.apply(puts(1, 2500));
  const stream = await a.snapshotStream(); // the view is pinned here, at 2500
  await a.apply(puts(2501, 100)); // not in the view
  const ref = await writeSnapshotFile(store, { index: stream.applied.index, term: 1, conf, app: te.encode('members') }, stream.chunks);
  t.is(ref.index, 2500);
  t.deepEqual(decodeSnapshotRef(encodeSnapshotRef(ref)), ref);
  const header = await readSnapshotFileHeader(store, ref);
  t.deepEqual(header.conf, conf);
  t.is(td.decode(header.app), 'members');

  const b = await machine(t, join(dir, 'b'));
  await b.apply(puts(1, 10, 'old')); // replaced entirely
  await restore(b, store, ref);
  t.is(b.appliedIndex(), 2500);
  t.is(td.decode((await b.get(te.encode('k002500')))!.value), 'v2500');
  t.is(await b.get(te.encode('k002501')), undefined);
  t.is(td.decode((await b.get(te.encode('k000001')))!.value), 'v1');
  // Nothing is left beside the live database.
  t.deepEqual((await readdir(dir)).sort(), ['a', 'b', 'snapshots']);
  // It keeps applying after the swap.
  await b.apply(puts(2501, 1));
  t.is(b.appliedIndex(), 2501);
});

test('a damaged or truncated snapshot file is refused with a clear error and the state is unchanged', async (t) => {
  const dir = await tempDir(t);
  const store = await SnapshotStore.open({ dir: join(dir, 'snapshots') });
  const a = await machine(t, join(dir, 'a'));
  await a.apply(puts(1, 1500));
  const ref = await snapshotOf(a, store);
  const file = join(store.dir, ref.name);
  const good = await readFile(file);

  const b = await machine(t, join(dir, 'b'));
  await b.apply(puts(1, 3, 'old'));
  const damaged = Buffer.from(good);
  damaged[Math.floor(good.length / 2)]! ^= 0xff;
  await writeFile(file, damaged);
  await t.throwsAsync(restore(b, store, ref), { instanceOf: InvalidSnapshotError, message: /checksum|CRC|decode/ });
  await writeFile(file, good.subarray(0, good.length - 20));
  await t.throwsAsync(restore(b, store, ref), { instanceOf: InvalidSnapshotError, message: /truncated/ });
  t.is(b.appliedIndex(), 3);
  t.is(td.decode((await b.get(te.encode('k000001')))!.value), 'old1');
  t.deepEqual((await readdir(dir)).sort(), ['a', 'b', 'snapshots']);
});

test('a pair damaged before the file was written (valid file CRCs, bad record CRC) is refused and nothing changes', async (t) => {
  const dir = await tempDir(t);
  const store = await SnapshotStore.open({ dir: join(dir, 'snapshots') });
  const a = await machine(t, join(dir, 'a'));
  await a.apply(puts(1, 20));
  const stream = await a.snapshotStream();
  async function* damaged(): AsyncGenerator<[Uint8Array, Uint8Array][]> {
    for await (const chunk of stream.chunks) {
      const [k, v] = chunk[5]!;
      const bad = Uint8Array.from(v);
      bad[bad.length - 6]! ^= 0x01;
      chunk[5] = [k, bad];
      yield chunk;
    }
  }
  const ref = await writeSnapshotFile(store, { index: 20, term: 1, conf, app: new Uint8Array() }, damaged());
  const b = await machine(t, join(dir, 'b'));
  await b.apply(puts(1, 2, 'old'));
  await t.throwsAsync(restore(b, store, ref), { instanceOf: InvalidSnapshotError, message: /pair 5: checksum mismatch/ });
  t.is(b.appliedIndex(), 2);
  t.is(td.decode((await b.get(te.encode('k000002')))!.value), 'old2');
});

test('a swap cut by a crash rolls forward once the new database is complete, and is dropped before', async (t) => {
  const dir = await tempDir(t);
  const live = join(dir, 'kv');
  await mkdir(live);
  await writeFile(join(live, 'old-state'), 'old');
  // Incomplete copy: dropped, the old state stays.
  await mkdir(`${live}.next`);
  t.is(await recoverStateMachineSwap(live), 'dropped-incomplete');
  t.is(await readFile(join(live, 'old-state'), 'utf8'), 'old');
  // Complete copy, crash after parking the old one: rolled forward.
  await mkdir(`${live}.next`);
  await writeFile(join(`${live}.next`, 'new-state'), 'new');
  await writeFile(join(`${live}.next`, 'QUORUMKV-RESTORE-COMPLETE'), '{}');
  await rm(live, { recursive: true });
  await mkdir(`${live}.old`);
  t.is(await recoverStateMachineSwap(live), 'rolled-forward');
  t.is(await readFile(join(live, 'new-state'), 'utf8'), 'new');
  t.deepEqual((await readdir(dir)).sort(), ['kv']);
  t.deepEqual(await readdir(live), ['new-state']);
  t.is(await recoverStateMachineSwap(live), 'none');
  t.truthy(await stat(live));
});

test('the store over the in-memory twin: temp files of a crash are dropped, old files go, pinned ones only once read', async (t) => {
  const fs = new MemoryFs();
  const store = await SnapshotStore.open({ dir: '/data/snaps', fs });
  async function* none(): AsyncGenerator<[Uint8Array, Uint8Array][]> {}
  const r1 = await writeSnapshotFile(store, { index: 5, term: 1, conf, app: new Uint8Array() }, none());
  const r2 = await writeSnapshotFile(store, { index: 9, term: 1, conf, app: new Uint8Array() }, none());
  const w = await store.create();
  await w.append(te.encode('partial'));
  t.is((await fs.readdir('/data/snaps')).length, 3);
  const reader = await store.openReader(r1);
  await store.retainOnly(r2);
  t.deepEqual(await store.list(), [r1.name, r2.name]); // r1 is being read
  await reader.close();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(await store.list(), [r2.name]);
  fs.crash();
  const reopened = await SnapshotStore.open({ dir: '/data/snaps', fs });
  // Committed files survive, the temp file is gone; an unlink that was not fsynced may come back,
  // and the start-up sweep (what RaftNode.create runs) removes it again.
  t.false((await fs.readdir('/data/snaps')).some((n) => n.endsWith('.tmp')));
  await reopened.retainOnly(r2, true);
  t.deepEqual(await fs.readdir('/data/snaps'), [r2.name]);
  t.deepEqual((await readSnapshotFileHeader(reopened, r2)).conf, conf);
});
