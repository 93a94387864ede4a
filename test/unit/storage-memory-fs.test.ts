// MemoryFs, the strict in-memory twin of the disk (src/storage/memory-fs.ts), and the durable Raft
// log running over it through the Fs interface: what was not fsynced is gone after a crash.
import test from 'ava';
import type { Entry } from '../../src/raft/types.js';
import { FileRaftStorage } from '../../src/storage/file-raft-storage.js';
import { syncDir } from '../../src/storage/fs.js';
import { MemoryFs, memoryFsError } from '../../src/storage/memory-fs.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function writeFile(fs: MemoryFs, path: string, content: string, sync: boolean): Promise<void> {
  const fd = await fs.open(path, 'w');
  const b = bytes(content);
  await fd.write(b, 0, b.length);
  if (sync) await fd.sync();
  await fd.close();
}

/** Settles within a few turns of the event loop, or reports that it did not. */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

test('file data written but not fsynced is lost on a crash; fsynced data is kept', async (t) => {
  const fs = new MemoryFs();
  await fs.mkdir('/d', { recursive: true });
  await syncDir(fs, '/');
  await writeFile(fs, '/d/a', 'durable', true);
  await syncDir(fs, '/d');
  const fd = await fs.open('/d/a', 'r+');
  await fd.write(bytes('+more'), 0, 5, 7);
  t.is(text(await fs.readFile('/d/a')), 'durable+more'); // reads see it before the crash
  fs.crash();
  t.is(text(await fs.readFile('/d/a')), 'durable');
});

test('a created file, or a rename, is durable only once its directory is fsynced', async (t) => {
  const fs = new MemoryFs();
  await fs.mkdir('/d', { recursive: true });
  await syncDir(fs, '/');
  await writeFile(fs, '/d/new', 'x', true); // the file's data is synced, its directory entry is not
  fs.crash();
  t.false(fs.exists('/d/new'));

  await writeFile(fs, '/d/new', 'x', true);
  await syncDir(fs, '/d');
  await writeFile(fs, '/d/tmp', 'y', true);
  await fs.rename('/d/tmp', '/d/new');
  t.is(text(await fs.readFile('/d/new')), 'y');
  fs.crash();
  t.is(text(await fs.readFile('/d/new')), 'x', 'the rename was lost with the unsynced directory');
  t.false(fs.exists('/d/tmp'));

  await writeFile(fs, '/d/tmp', 'y', true);
  await fs.rename('/d/tmp', '/d/new');
  await syncDir(fs, '/d');
  fs.crash();
  t.is(text(await fs.readFile('/d/new')), 'y');
  t.deepEqual(await fs.readdir('/d'), ['new']);

  const made = await fs.mkdir('/d/e/f', { recursive: true });
  t.is(made, '/d/e');
  fs.crash();
  t.false(fs.exists('/d/e'), 'mkdir is a directory entry like any other');
});

test('a crash may keep a prefix of the unsynced writes and tear the first one it loses', async (t) => {
  const fs = new MemoryFs();
  await fs.mkdir('/d', { recursive: true });
  await syncDir(fs, '/');
  await writeFile(fs, '/d/log', 'AAAA', true);
  await syncDir(fs, '/d');
  const fd = await fs.open('/d/log', 'r+');
  await fd.write(bytes('BBBB'), 0, 4, 4);
  await fd.write(bytes('CCCC'), 0, 4, 8);
  await fd.write(bytes('DDDD'), 0, 4, 12);
  fs.crash({ keep: () => 1, tear: (len) => len / 2 });
  t.is(text(await fs.readFile('/d/log')), 'AAAABBBBCC');
  t.is(fs.stats.torn, 1);
  t.is(fs.stats.lostBytes, 8);
});

test('an injected fsync error fails the sync and leaves the data undurable; old handles die with a crash', async (t) => {
  const fs = new MemoryFs();
  await fs.mkdir('/d', { recursive: true });
  await syncDir(fs, '/');
  await writeFile(fs, '/d/a', 'v1', true);
  await syncDir(fs, '/d');
  const fd = await fs.open('/d/a', 'w');
  await fd.write(bytes('v2'), 0, 2);
  fs.faults.syncError = (path) => memoryFsError('EIO', 'fsync', path);
  const err = await t.throwsAsync(fd.sync());
  t.is((err as NodeJS.ErrnoException).code, 'EIO');
  fs.faults = {};
  fs.crash();
  t.is(text(await fs.readFile('/d/a')), 'v1');
  t.false(await settles(fd.write(bytes('late'), 0, 4, 0)), 'a handle from before the crash never completes anything');
  t.is(text(await fs.readFile('/d/a')), 'v1');
});

const entry = (index: number, term: number, data = `e${index}`): Entry => ({ index, term, type: 'normal', data: bytes(data) });

test('the durable Raft log over MemoryFs: what save() acknowledged survives a crash, what was in flight does not', async (t) => {
  const fs = new MemoryFs();
  await fs.mkdir('/data', { recursive: true });
  await syncDir(fs, '/');
  const bootstrap = { voters: ['n1', 'n2', 'n3'], learners: [] };
  const log = await FileRaftStorage.open({ dir: '/data/raft', bootstrap, fs });
  // A crash right after the first open: the new log directory's entry was fsynced too.
  fs.crash();
  let reopened = await FileRaftStorage.open({ dir: '/data/raft', bootstrap, fs });
  t.is(reopened.lastIndex(), 0);
  void log;

  await reopened.save({ hardState: { term: 2, vote: 'n1', commit: 0 }, entries: [entry(1, 1), entry(2, 2)] });
  await reopened.save({ hardState: { term: 2, vote: 'n1', commit: 2 }, entries: [entry(3, 2)] });
  // The next save's fsync hangs on a slow disk when the machine loses power.
  let release: (() => void) | undefined;
  fs.faults.syncDelay = () => new Promise<void>((r) => (release = r));
  const inFlight = reopened.save({ entries: [entry(4, 2)] });
  await new Promise((r) => setImmediate(r));
  t.truthy(release, 'the save reached its fsync');
  fs.faults = {};
  fs.crash({ keep: (n) => n - 1, tear: (len) => len - 3 }); // the unsynced append is torn
  release!();
  t.false(await settles(inFlight));

  reopened = await FileRaftStorage.open({ dir: '/data/raft', bootstrap, fs });
  t.is(reopened.lastIndex(), 3, 'the torn record is cut off, everything acknowledged is there');
  t.deepEqual(reopened.initialState().hardState, { term: 2, vote: 'n1', commit: 2 });
  t.deepEqual(
    reopened.entries(1, 4).map((e) => `${e.term}:${text(e.data)}`),
    ['1:e1', '2:e2', '2:e3'],
  );
});
