// The durable log with a small in-memory budget: older entries are read back from the segment file
// on demand (EntriesLoadingError, then onEntriesLoaded), across suffix replacement, compaction
// (whose copy runs while saves go on) and reopening. Every read is compared with what was saved.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntriesLoadingError } from '../../src/raft/log-storage.js';
import type { ConfState, Entry } from '../../src/raft/types.js';
import { FileRaftStorage } from '../../src/storage/file-raft-storage.js';
import { type Fs, type FsFile, NODE_FS } from '../../src/storage/fs.js';

const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
const MEMORY = 2000; // about 15 of the entries below
const text = new TextEncoder();
const dec = new TextDecoder();

function ent(index: number, term: number, tag = 'a', type: Entry['type'] = 'normal'): Entry {
  return { index, term, type, data: text.encode(`${tag}:${index}:${'p'.repeat(100)}`) };
}
function range(lo: number, hi: number, term: number, tag?: string): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, term, tag));
  return out;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-cold-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openLog(t: ExecutionContext, dir: string, fs: Fs = NODE_FS): Promise<FileRaftStorage> {
  const s = await FileRaftStorage.open({ dir, bootstrap: conf, memoryLogBytes: MEMORY, coldReadBytes: 3000, fs });
  t.teardown(() => s.close());
  return s;
}

/** The real disk, except that a compaction's copy, once written, waits to be released before its fsync. */
function copyGate(): { fs: Fs; arm: () => void; reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  const releaseP = new Promise<void>((r) => (release = r));
  let gated = false;
  let armed = false;
  const fs: Fs = {
    ...NODE_FS,
    open: async (path, flags) => {
      const f = await NODE_FS.open(path, flags);
      if (!armed || !path.endsWith('.wal.tmp')) return f;
      const gatedFile: FsFile = {
        write: (buffer, offset, length, position) => f.write(buffer, offset, length, position),
        read: (buffer, offset, length, position) => f.read(buffer, offset, length, position),
        stat: () => f.stat(),
        truncate: (length) => f.truncate(length),
        sync: async () => {
          if (!gated) {
            gated = true; // every entry there was is copied; the switch is next
            reached();
            await releaseP;
          }
          return f.sync();
        },
        datasync: () => f.datasync(),
        close: () => f.close(),
      };
      return gatedFile;
    },
  };
  return { fs, arm: () => (armed = true), reached: reachedP, release };
}

/** Reads [lo, hi) the way the core does: on EntriesLoadingError, wait for the storage's signal and ask again. */
async function readAll(s: FileRaftStorage, lo: number, hi: number): Promise<{ entries: Entry[]; loads: number }> {
  let wake: (() => void) | undefined;
  s.onEntriesLoaded(() => wake?.());
  const entries: Entry[] = [];
  let loads = 0;
  for (let turn = 0; lo < hi && turn < 10_000; turn++) {
    try {
      const got = s.entries(lo, hi);
      entries.push(...got);
      lo = got[got.length - 1]!.index + 1;
    } catch (err) {
      if (!(err instanceof EntriesLoadingError)) throw err;
      loads++;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  return { entries, loads };
}

function same(t: ExecutionContext, got: Entry[], want: Entry[]): void {
  t.is(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    if (g.index !== w.index || g.term !== w.term || g.type !== w.type || dec.decode(g.data) !== dec.decode(w.data)) {
      t.fail(`entry ${w.index}: got ${g.index}/${g.term}/${dec.decode(g.data).slice(0, 12)}, want ${w.term}/${dec.decode(w.data).slice(0, 12)}`);
      return;
    }
  }
  t.pass();
}

test('entries beyond the memory budget are read back from the segment, conf entries stay in memory', async (t) => {
  const s = await openLog(t, await tempDir(t));
  const want: Entry[] = [];
  for (let i = 1; i <= 300; i += 10) {
    const batch = range(i, i + 9, 1);
    if (i === 41) batch[4] = ent(45, 1, 'conf', 'conf');
    await s.save({ entries: batch, hardState: { term: 1, vote: 'n1', commit: i + 9 } });
    want.push(...batch);
  }
  t.throws(() => s.entries(1, 301), { instanceOf: EntriesLoadingError }, 'the oldest entries are not in memory');
  t.notThrows(() => s.entries(295, 301), 'the newest are');
  t.deepEqual(
    s.confEntries(1, 301).map((e) => e.index),
    [45],
  );
  const { entries, loads } = await readAll(s, 1, 301);
  same(t, entries, want);
  t.true(loads > 10, `read back in several windows of about 3000 bytes (${loads})`);
});

test('a replaced suffix is read back as replaced, before and after reopening', async (t) => {
  const dir = await tempDir(t);
  const s = await openLog(t, dir);
  for (let i = 1; i <= 200; i += 20) await s.save({ entries: range(i, i + 19, 1), hardState: { term: 1, vote: 'n1', commit: Math.min(100, i + 19) } });
  await readAll(s, 90, 120); // leaves a loaded window over the entries about to be replaced
  await s.save({ entries: range(110, 150, 2, 'b'), hardState: { term: 2, vote: 'n2', commit: 100 } });
  for (let i = 151; i <= 250; i += 20) await s.save({ entries: range(i, i + 19, 2, 'b') });
  const want = [...range(1, 109, 1), ...range(110, 250, 2, 'b')];
  t.is(s.lastIndex(), 250);
  same(t, (await readAll(s, 1, 251)).entries, want);
  await s.close();
  const reopened = await openLog(t, dir);
  t.is(reopened.lastIndex(), 250);
  t.throws(() => reopened.entries(1, 2), { instanceOf: EntriesLoadingError }, 'a reopened log holds only its budget in memory');
  same(t, (await readAll(reopened, 1, 251)).entries, want);
});

test('a compaction copies the surviving entries from disk while saves (and a replaced suffix) go on; reopening reads them back', async (t) => {
  const dir = await tempDir(t);
  const gate = copyGate();
  const s = await openLog(t, dir, gate.fs);
  for (let i = 1; i <= 400; i += 20) await s.save({ entries: range(i, i + 19, 1), hardState: { term: 1, vote: 'n1', commit: Math.min(380, i + 19) } });
  gate.arm();
  const compaction = s.compact({ meta: { index: 350, term: 1, conf }, data: text.encode('state@350') }, 250);
  await gate.reached;
  // While the copy is under way: appends, then a replacement of the uncommitted tail, then more appends.
  await s.save({ entries: range(401, 420, 1) });
  await s.save({ entries: range(390, 430, 2, 'c'), hardState: { term: 2, vote: 'n2', commit: 380 } });
  await s.save({ entries: range(431, 450, 2, 'c') });
  t.is(s.firstIndex(), 1, 'saves went on while the copy was held');
  gate.release();
  await compaction;
  const want = [...range(101, 389, 1), ...range(390, 450, 2, 'c')];
  t.is(s.firstIndex(), 101);
  t.is(s.lastIndex(), 450);
  t.is(s.term(100), 1);
  same(t, (await readAll(s, 101, 451)).entries, want);
  const files = (await readdir(dir)).sort();
  t.deepEqual(files.filter((f) => f.endsWith('.wal')).length, 1, `one live segment after the switch (${files.join(', ')})`);
  t.false(
    files.some((f) => f.endsWith('.tmp')),
    'no copy left behind',
  );
  await s.save({ entries: range(451, 460, 2, 'c') });
  await s.close();
  const reopened = await openLog(t, dir);
  t.is(reopened.firstIndex(), 101);
  t.is(reopened.snapshot().meta.index, 350);
  same(t, (await readAll(reopened, 101, 461)).entries, [...want, ...range(451, 460, 2, 'c')]);
});

test('entries written behind a held-back commit-only hard state are read back from their real offsets', async (t) => {
  const dir = await tempDir(t);
  const s = await openLog(t, dir);
  const want: Entry[] = [];
  for (let i = 1; i <= 60; i++) {
    const e = ent(i, 1);
    want.push(e);
    await s.save({ entries: [e], hardState: { term: 1, vote: 'n1', commit: i - 1 } });
    // Only the commit index moves: held back, then written in front of the next group.
    await s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: i }, sync: false });
  }
  const { entries, loads } = await readAll(s, 1, 61);
  t.true(loads > 0, 'the oldest entries came from disk');
  same(t, entries, want);
});
