// A snapshot file's state built while the file arrives (snapshot-staging.ts, stageRestore and
// installStaged): fed the same pieces the file gets, it is swapped in only when it was finished
// from a whole, checked file of that name; a damaged or cut transfer, a replaced staging and a
// crash leave the live state alone and nothing beside it.
import test, { type ExecutionContext } from 'ava';
import { putEntries, tempDir as fixtureDir } from './storage-fixtures.js';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelStateMachine, MemoryStateMachine } from '../../src/storage/index.js';
import { LevelFill } from '../../src/storage/level-fill.js';
import { writeSnapshotFile } from '../../src/storage/snapshot-file.js';
import { SnapshotStore, decodeSnapshotRef, type SnapshotRef } from '../../src/storage/snapshot-store.js';
import type { StateMachine } from '../../src/storage/state-machine.js';
import { stagedSource } from '../../src/runtime/snapshot-staging.js';
import { snapshotFilesFor } from '../../src/runtime/snapshot-transfer-files.js';

const te = new TextEncoder();
const td = new TextDecoder();
const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };
const PIECE = 64 * 1024;

const tempDir = (t: ExecutionContext) => fixtureDir(t, 'qkv-staging-');
const puts = (from: number, n: number, value = 'v') => putEntries(from, n, value, `:${'x'.repeat(200)}`);

async function level(t: ExecutionContext, dir: string): Promise<LevelStateMachine> {
  const sm = await LevelStateMachine.open({ dir, checkTables: false });
  t.teardown(() => sm.close());
  return sm;
}

/** A leader's state (n entries) and its snapshot file, as bytes to send. */
async function sourceFile(t: ExecutionContext, dir: string, n: number): Promise<{ ref: SnapshotRef; bytes: Buffer }> {
  const leader = await level(t, join(dir, 'leader'));
  await leader.apply(puts(1, n));
  const store = await SnapshotStore.open({ dir: join(dir, 'leader-snapshots') });
  const stream = await leader.snapshotStream();
  const ref = await writeSnapshotFile(store, { index: stream.applied.index, term: 1, conf, app: te.encode('[]') }, stream.chunks);
  return { ref, bytes: await readFile(join(store.dir, ref.name)) };
}

/** A follower's LevelDB at <dir>/kv with a snapshot store at <dir>/snapshots, and a leader's file of `n` entries to send it. */
async function followerAndFile(t: ExecutionContext, n: number) {
  const dir = await tempDir(t);
  const { ref: sent, bytes } = await sourceFile(t, dir, n);
  const follower = await level(t, join(dir, 'kv'));
  const store = await SnapshotStore.open({ dir: join(dir, 'snapshots') });
  return { dir, sent, bytes, follower, store };
}

/** Receives `bytes` as the transport would (pieces appended, then commit or abort); returns the reference when committed. */
async function receive(
  store: SnapshotStore,
  sm: StateMachine,
  announced: { bytes: number; crc32: number },
  bytes: Uint8Array,
  end: 'commit' | 'abort',
  at: { index: number; term: number },
  logger?: { info: (o: object) => void; warn: (o: object) => void },
): Promise<SnapshotRef | undefined> {
  const files = snapshotFilesFor(store, { stateMachine: sm, logger: logger as never });
  const writer = await files.createWriter(announced);
  for (let o = 0; o < bytes.length; o += PIECE) await writer.append(bytes.subarray(o, o + PIECE));
  if (end === 'abort') {
    await writer.abort();
    return undefined;
  }
  return decodeSnapshotRef(await writer.commit(at.index, at.term));
}

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, info: (o: object) => lines.push(o as never), warn: (o: object) => lines.push(o as never) };
}

test('a file staged as it arrives is swapped in by name, while the live state applied meanwhile', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 3000);
  await follower.apply(puts(1, 5, 'old'));
  const log = recordingLogger();
  const ref = await receive(store, follower, sent, bytes, 'commit', sent, log);
  t.truthy(ref);
  t.true(
    log.lines.some((l) => l.event === 'snapshot_staged' && l.pairs === 3000 + 1),
    'the staging reports every pair (data and the session)',
  );
  // The live state went on meanwhile and is untouched by the staging.
  await follower.apply(puts(6, 1, 'old'));
  t.is(follower.appliedIndex(), 6);
  t.is(td.decode((await follower.get(te.encode('k000001')))!.value).slice(0, 4), 'old1');
  t.true((await readdir(dir)).includes('kv.staging'));

  t.false(
    await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource({ ...ref!, crc32: ref!.crc32 ^ 1 })),
    'another file: not this staging',
  );
  t.false(await follower.installStaged({ index: sent.index + 1, term: sent.term }, stagedSource(ref!)), 'another position: not this staging');
  t.is(follower.appliedIndex(), 6, 'a refused install changes nothing');

  t.true(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)));
  t.is(follower.appliedIndex(), 3000);
  t.is(td.decode((await follower.get(te.encode('k003000')))!.value).slice(0, 5), 'v3000');
  t.is(td.decode((await follower.get(te.encode('k000001')))!.value).slice(0, 2), 'v1');
  t.false(
    (await readdir(dir)).some((n) => n.startsWith('kv.')),
    'nothing is left beside the live database',
  );
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)), 'a staging is installed once');
  await follower.apply(puts(3001, 1));
  t.is(follower.appliedIndex(), 3001);
});

test('damaged bytes drop the staging and leave the live state alone', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 1500);
  const damaged = Buffer.from(bytes);
  damaged[Math.floor(damaged.length / 2)]! ^= 0x40; // inside a pair record: its CRC fails
  const log = recordingLogger();
  const ref = await receive(store, follower, sent, damaged, 'commit', sent, log);
  const failed = log.lines.find((l) => l.event === 'snapshot_staging_failed');
  // Caught by the record's CRC, or (the file being shorter than one read-ahead) by the file's CRC at commit.
  t.regex(String(failed?.err), /checksum mismatch|announced/);
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)));
  t.is(follower.appliedIndex(), 0);
  t.false((await readdir(dir)).includes('kv.staging'), 'the partial staging is deleted');
});

test('a file whose bytes do not match the announced CRC-32 is never staged as complete', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 800);
  const log = recordingLogger();
  const ref = await receive(store, follower, { bytes: sent.bytes, crc32: sent.crc32 ^ 0xff }, bytes, 'commit', sent, log);
  t.regex(String(log.lines.find((l) => l.event === 'snapshot_staging_failed')?.err), /whole-file CRC-32|announced/);
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)));
  t.false((await readdir(dir)).includes('kv.staging'));
});

test('a cut transfer (abort), a replaced staging, a closed machine and a crash leave nothing staged', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 1500);
  await follower.apply(puts(1, 3, 'old'));

  // Cut half way.
  const files = snapshotFilesFor(store, { stateMachine: follower });
  const cut = await files.createWriter(sent);
  await cut.append(bytes.subarray(0, bytes.length >> 1));
  t.true((await readdir(dir)).includes('kv.staging'));
  await cut.abort();
  t.false((await readdir(dir)).includes('kv.staging'), 'an aborted transfer deletes its staging');
  t.deepEqual(
    (await readdir(store.dir)).filter((n) => !n.startsWith('.')),
    [],
    'and its partial file',
  );

  // A finished staging is replaced by the next transfer's.
  const first = await receive(store, follower, sent, bytes, 'commit', sent);
  const second = files.createWriter(sent);
  await (await second).append(bytes.subarray(0, PIECE));
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(first!)), 'the newer transfer replaced it');
  await (await second).abort();

  // Closing the machine mid-staging deletes the staging.
  const closing = await snapshotFilesFor(store, { stateMachine: follower }).createWriter(sent);
  await closing.append(bytes.subarray(0, bytes.length >> 1));
  await follower.close();
  t.false((await readdir(dir)).includes('kv.staging'), 'close deletes the staging');

  // A SIGKILL mid-staging leaves the directory behind (here: a partial LevelDB written by a staging
  // that was never aborted); the next open deletes it and serves the old state.
  const partial = await LevelStateMachine.open({ dir: join(dir, 'elsewhere'), checkTables: false });
  await partial.apply(puts(1, 50, 'partial'));
  await partial.close();
  await rename(join(dir, 'elsewhere'), join(dir, 'kv.staging'));
  const reopened = await level(t, join(dir, 'kv'));
  t.false((await readdir(dir)).includes('kv.staging'), 'open deletes a staging a crash left');
  t.is(reopened.appliedIndex(), 3, 'and the live state is the old one');
  t.is(td.decode((await reopened.get(te.encode('k000001')))!.value).slice(0, 4), 'old1');
});

test('the memory twin stages and installs the same way', async (t) => {
  const dir = await tempDir(t);
  const { ref: sent, bytes } = await sourceFile(t, dir, 700);
  const twin = new MemoryStateMachine();
  await twin.apply(puts(1, 2, 'old'));
  const store = await SnapshotStore.open({ dir: join(dir, 'snapshots') });
  const ref = await receive(store, twin, sent, bytes, 'commit', sent);
  t.is(twin.appliedIndex(), 2);
  t.false(await twin.installStaged({ index: sent.index, term: sent.term }, 'another file'));
  t.true(await twin.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)));
  t.is(twin.appliedIndex(), 700);
  t.is(td.decode((await twin.get(te.encode('k000700')))!.value).slice(0, 4), 'v700');
  t.is(td.decode((await twin.get(te.encode('k000001')))!.value).slice(0, 2), 'v1');
});

test('two transfers that start together: the later staging wins, the earlier one is dropped, and neither breaks the other', async (t) => {
  const { sent, bytes, follower, store } = await followerAndFile(t, 1200);
  const log = recordingLogger();
  const files = snapshotFilesFor(store, { stateMachine: follower, logger: log as never });
  const [first, second] = await Promise.all([files.createWriter(sent), files.createWriter(sent)]);
  for (let o = 0; o < bytes.length; o += PIECE) {
    await first.append(bytes.subarray(o, o + PIECE));
    await second.append(bytes.subarray(o, o + PIECE));
  }
  const firstRef = decodeSnapshotRef(await first.commit(sent.index, sent.term))!;
  const secondRef = decodeSnapshotRef(await second.commit(sent.index, sent.term))!;
  t.true(
    log.lines.some((l) => l.event === 'snapshot_staging_failed'),
    'the earlier staging was dropped',
  );
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(firstRef)));
  t.true(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(secondRef)));
  t.is(follower.appliedIndex(), 1200);
  t.is(td.decode((await follower.get(te.encode('k001200')))!.value).slice(0, 5), 'v1200');
});

test('a transfer that starts while a staged state is being installed waits for the install to move it', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 900);
  const ref = await receive(store, follower, sent, bytes, 'commit', sent);
  // A leftover kv.next the install deletes first: that takes a while, the window a new staging would fall into.
  await mkdir(join(dir, 'kv.next'));
  await Promise.all(Array.from({ length: 3000 }, (_, i) => writeFile(join(dir, 'kv.next', `f${i}`), 'x')));
  const files = snapshotFilesFor(store, { stateMachine: follower });
  const [installed, next] = await Promise.all([follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)), files.createWriter(sent)]);
  t.true(installed);
  t.is(follower.appliedIndex(), 900);
  t.is(td.decode((await follower.get(te.encode('k000900')))!.value).slice(0, 4), 'v900');
  await next.append(bytes.subarray(0, PIECE));
  t.true((await readdir(dir)).includes('kv.staging'), "the new transfer's staging is under way");
  await next.abort();
  t.false((await readdir(dir)).includes('kv.staging'));
});

test('a file committed shorter than announced drops the staging at once (its reader would wait for the rest)', async (t) => {
  const { dir, sent, bytes, follower, store } = await followerAndFile(t, 600);
  const log = recordingLogger();
  const ref = await receive(store, follower, sent, bytes.subarray(0, bytes.length - 100), 'commit', sent, log);
  t.regex(String(log.lines.find((l) => l.event === 'snapshot_staging_failed')?.err), /announced/);
  t.false(await follower.installStaged({ index: sent.index, term: sent.term }, stagedSource(ref!)));
  t.false((await readdir(dir)).includes('kv.staging'));
});

test('a fill aborted while its last batch is written ends aborted: finish fails and the directory is gone', async (t) => {
  const dir = await tempDir(t);
  const fill = await LevelFill.create(join(dir, 'fill'), undefined);
  const source = await level(t, join(dir, 'source'));
  await source.apply(puts(1, 200));
  const stream = await source.snapshotStream();
  for await (const chunk of stream.chunks) await fill.write(chunk);
  const finishing = fill.finish({ index: 200, term: 1 });
  await new Promise((resolve) => setImmediate(resolve)); // finish is now writing its last batch (synced)
  await fill.abort();
  await t.throwsAsync(finishing, { message: /aborted/ });
  t.false((await readdir(dir)).includes('fill'));
});
