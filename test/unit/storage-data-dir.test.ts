// A node's data dir as one unit (src/storage/data-dir.ts) on real temp dirs: a state machine whose
// Raft log is gone or older is refused with the files and the fix named, a dir of another node is
// refused, the LOCK file keeps a second process out (and a dead one's lock is taken over), and
// inspecting the Raft log changes nothing on disk.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfState, Entry } from '../../src/raft/types.js';
import {
  DataDirLock,
  IDENTITY_FILE,
  checkDataDirLayout,
  checkStorageConsistency,
  readIdentity,
  stateMachineExists,
  writeIdentity,
} from '../../src/storage/data-dir.js';
import { DataDirIdentityError, DataDirInconsistentError, DataDirLockedError } from '../../src/storage/errors.js';
import { FileRaftStorage, LevelStateMachine, encodeCommand } from '../../src/storage/index.js';

const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
const owner = { cluster: 'c1', nodeId: 'n2' };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-datadir-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function put(index: number, key: string, value: string): Entry {
  const data = encodeCommand({
    clientId: '',
    seq: 0,
    firstUnacked: 0,
    op: { op: 'put', key: new TextEncoder().encode(key), value: new TextEncoder().encode(value) },
  });
  return { index, term: 1, type: 'normal', data };
}

/** A data dir as a running node leaves it: a Raft log with 3 committed entries, all applied to LevelDB. */
async function populatedDataDir(t: ExecutionContext): Promise<string> {
  const dataDir = await tempDir(t);
  const entries = [put(1, 'a', '1'), put(2, 'b', '2'), put(3, 'c', '3')];
  const log = await FileRaftStorage.open({ dir: join(dataDir, 'raft'), bootstrap: conf });
  await log.save({ entries, hardState: { term: 1, vote: 'n1', commit: 3 } });
  await log.close();
  const sm = await LevelStateMachine.open({ dir: join(dataDir, 'kv') });
  await sm.apply(entries);
  await sm.close();
  await writeIdentity(dataDir, owner);
  return dataDir;
}

/** What the node process reads before it opens anything. */
async function contents(dataDir: string) {
  const inspected = await FileRaftStorage.inspect({ dir: join(dataDir, 'raft'), bootstrap: conf });
  return { inspected, found: { identity: await readIdentity(dataDir), raftLog: !inspected.fresh, stateMachine: await stateMachineExists(dataDir) } };
}

async function appliedIndexOf(dataDir: string): Promise<number> {
  const sm = await LevelStateMachine.open({ dir: join(dataDir, 'kv') });
  try {
    return sm.appliedIndex();
  } finally {
    await sm.close();
  }
}

async function listing(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[p.slice(dir.length)] = (await stat(p)).size;
    }
  };
  await walk(dir);
  return out;
}

test('a LevelDB kept beside a deleted Raft dir is refused, naming both dirs and the recovery', async (t) => {
  const dataDir = await populatedDataDir(t);
  await rm(join(dataDir, 'raft'), { recursive: true });
  const { found } = await contents(dataDir);
  t.deepEqual({ raftLog: found.raftLog, stateMachine: found.stateMachine }, { raftLog: false, stateMachine: true });
  const err = t.throws(() => checkDataDirLayout(dataDir, owner, found), { instanceOf: DataDirInconsistentError })!;
  t.is(err.name, 'DataDirInconsistentError');
  t.deepEqual(err.files, [join(dataDir, 'raft'), join(dataDir, 'kv')]);
  t.true(err.message.includes(`data dir ${dataDir} is inconsistent: the Raft log (term, vote, log) is missing`));
  t.true(err.message.includes(`move ${dataDir} aside (for example: mv ${dataDir} ${dataDir}.broken) and restart this node so it is rebuilt from the leader`));
});

test('a Raft dir replaced by an empty log (no hard state) beside applied data is refused', async (t) => {
  const dataDir = await populatedDataDir(t);
  await rm(join(dataDir, 'raft'), { recursive: true });
  // What the code before the fix did on such a start: bootstrap a brand-new, empty log.
  await (await FileRaftStorage.open({ dir: join(dataDir, 'raft'), bootstrap: conf })).close();
  const { inspected, found } = await contents(dataDir);
  t.notThrows(() => checkDataDirLayout(dataDir, owner, found));
  const facts = { hardState: inspected.state.hardState, lastIndex: inspected.state.lastIndex(), snapshotIndex: inspected.state.snap.meta.index };
  const err = t.throws(() => checkStorageConsistency(dataDir, facts, 3), { instanceOf: DataDirInconsistentError })!;
  t.regex(err.message, /applied up to index 3 but the Raft log is empty and has no hard state \(term 0, no vote\)/);
  t.is(await appliedIndexOf(dataDir), 3);
});

test('a state machine applied beyond the end of the Raft log is refused', (t) => {
  const err = t.throws(() => checkStorageConsistency('/data/n2', { hardState: { term: 4, vote: 'n1', commit: 7 }, lastIndex: 7, snapshotIndex: 0 }, 9), {
    instanceOf: DataDirInconsistentError,
  })!;
  t.regex(err.message, /applied up to index 9 but the Raft log ends at 7 \(term 4\)/);
  t.notThrows(() => checkStorageConsistency('/data/n2', { hardState: { term: 4, vote: 'n1', commit: 7 }, lastIndex: 7, snapshotIndex: 0 }, 7));
});

test('a consistent data dir, a fresh one, and a log whose state machine was lost are accepted', async (t) => {
  const dataDir = await populatedDataDir(t);
  const { inspected, found } = await contents(dataDir);
  t.deepEqual(checkDataDirLayout(dataDir, owner, found), { fresh: false });
  const facts = { hardState: inspected.state.hardState, lastIndex: inspected.state.lastIndex(), snapshotIndex: inspected.state.snap.meta.index };
  t.notThrows(() => checkStorageConsistency(dataDir, facts, 3));
  // The state machine is rebuilt from the log on start: no refusal.
  await rm(join(dataDir, 'kv'), { recursive: true });
  t.notThrows(() => checkDataDirLayout(dataDir, owner, { ...found, stateMachine: false }));
  const fresh = await tempDir(t);
  t.deepEqual(checkDataDirLayout(fresh, owner, (await contents(fresh)).found), { fresh: true });
});

test('an initialized data dir whose Raft log vanished is refused even without a state machine', async (t) => {
  const dataDir = await populatedDataDir(t);
  await rm(join(dataDir, 'raft'), { recursive: true });
  await rm(join(dataDir, 'kv'), { recursive: true });
  const identity = await readIdentity(dataDir);
  const err = t.throws(() => checkDataDirLayout(dataDir, owner, { identity, raftLog: false, stateMachine: false }), {
    instanceOf: DataDirInconsistentError,
  })!;
  t.true(err.files.includes(join(dataDir, IDENTITY_FILE)));
});

test('a data dir of another node or cluster is refused', async (t) => {
  const dataDir = await populatedDataDir(t);
  const { found } = await contents(dataDir);
  t.throws(() => checkDataDirLayout(dataDir, { cluster: 'c1', nodeId: 'n3' }, found), {
    instanceOf: DataDirIdentityError,
    message: /belongs to node n2 of cluster "c1".*not to node n3 of cluster "c1"/,
  });
  t.throws(() => checkDataDirLayout(dataDir, { cluster: 'other', nodeId: 'n2' }, found), { instanceOf: DataDirIdentityError });
  const identity = (await readIdentity(dataDir))!;
  t.like(identity, { format: 1, cluster: 'c1', nodeId: 'n2' });
  t.regex(identity.incarnation, /^[0-9a-f-]{36}$/);
});

test('inspecting the Raft log changes nothing: no bootstrap, the torn tail is cut only by open()', async (t) => {
  const root = await tempDir(t);
  const missing = join(root, 'never-created');
  const fresh = await FileRaftStorage.inspect({ dir: missing, bootstrap: conf });
  t.true(fresh.fresh);
  await t.throwsAsync(stat(missing), { code: 'ENOENT' }, 'inspect did not create the dir');

  const dir = join(root, 'raft');
  const log = await FileRaftStorage.open({ dir, bootstrap: conf });
  await log.save({ entries: [put(1, 'a', '1'), put(2, 'b', '2')], hardState: { term: 1, vote: 'n1', commit: 1 } });
  await log.close();
  const segment = join(dir, (await readdir(dir)).find((n) => n.endsWith('.wal'))!);
  await truncate(segment, (await stat(segment)).size - 3); // a torn last write
  await writeFile(join(dir, 'snapshot.snap.tmp'), 'half-written');
  const before = await listing(root);
  const bytes = await readFile(segment);
  const inspected = await FileRaftStorage.inspect({ dir, bootstrap: conf });
  t.false(inspected.fresh);
  t.deepEqual(await listing(root), before);
  t.deepEqual(await readFile(segment), bytes);
  const opened = await inspected.open();
  t.teardown(() => opened.close());
  t.true((await stat(segment)).size < bytes.length, 'open() cut the torn tail');
  t.false((await readdir(dir)).includes('snapshot.snap.tmp'), 'open() removed the temp file');
});

test('the hard state keeps "rebuilding" across a restart of the durable log', async (t) => {
  const dir = join(await tempDir(t), 'raft');
  const log = await FileRaftStorage.open({ dir, bootstrap: conf });
  await log.save({ entries: [put(1, 'a', '1')], hardState: { term: 3, vote: '', commit: 0, recovery: 'rebuilding' } });
  await log.close();
  const again = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.deepEqual(again.initialState().hardState, { term: 3, vote: '', commit: 0, recovery: 'rebuilding' });
  await again.save({ entries: [], hardState: { term: 3, vote: '', commit: 1 } });
  await again.close();
  const third = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => third.close());
  t.deepEqual(third.initialState().hardState, { term: 3, vote: '', commit: 1 });
});

test('DataDirLock: a held lock refuses a second owner with its pid; a dead owner’s lock is taken over; release removes only ours', async (t) => {
  const dataDir = await tempDir(t);
  const first = await DataDirLock.acquire(dataDir, owner);
  const held = JSON.parse(await readFile(join(dataDir, 'LOCK'), 'utf8'));
  t.like(held, { pid: process.pid, hostname: hostname(), cluster: 'c1', nodeId: 'n2' });
  const err = await t.throwsAsync(DataDirLock.acquire(dataDir, owner), { instanceOf: DataDirLockedError });
  t.is(err!.pid, process.pid);
  t.true(err!.message.includes(`data dir ${dataDir} is in use by process ${process.pid}`));
  await first.release();
  await t.throwsAsync(stat(join(dataDir, 'LOCK')), { code: 'ENOENT' });

  // A lock left by a process that is gone (SIGKILL, crash).
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.once('exit', resolve));
  await writeFile(join(dataDir, 'LOCK'), JSON.stringify({ pid: dead.pid, hostname: hostname(), nodeId: 'n2' }));
  const stale: number[] = [];
  const second = await DataDirLock.acquire(dataDir, owner, (h) => stale.push(h.pid));
  t.deepEqual(stale, [dead.pid!]);
  t.is(JSON.parse(await readFile(join(dataDir, 'LOCK'), 'utf8')).pid, process.pid);
  // Someone replaced the lock file meanwhile: release leaves theirs alone.
  await writeFile(join(dataDir, 'LOCK'), JSON.stringify({ pid: 1, hostname: hostname() }));
  await second.release();
  t.is(JSON.parse(await readFile(join(dataDir, 'LOCK'), 'utf8')).pid, 1);
  // An unreadable lock file is never taken over silently.
  await writeFile(join(dataDir, 'LOCK'), '');
  await t.throwsAsync(DataDirLock.acquire(dataDir, owner), { instanceOf: DataDirLockedError, message: /an unknown process/ });
});
