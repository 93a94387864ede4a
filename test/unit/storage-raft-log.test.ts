import test, { type ExecutionContext } from 'ava';
import { cp, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactedError, UnavailableError } from '../../src/raft/log-storage.js';
import type { ConfState, Entry, RaftLogger } from '../../src/raft/types.js';
import { FileRaftStorage, InvalidStorageUpdateError, MemoryRaftStorage, StorageCorruptionError, type RaftStorage } from '../../src/storage/index.js';
import { packr } from '../../src/storage/codec.js';
import { frameRecord } from '../../src/storage/record-file.js';

const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };

function ent(index: number, term: number, text = `v${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}
function range(lo: number, hi: number, term: number, text?: string): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, term, text));
  return out;
}
const decodeData = (e: Entry) => new TextDecoder().decode(e.data);

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** What a SIGKILL at this moment would leave: a copy of the directory as the files are now. */
async function copyDir(t: ExecutionContext, dir: string): Promise<string> {
  const copy = await tempDir(t);
  await cp(dir, copy, { recursive: true });
  return copy;
}

function recordingLogger(): RaftLogger & { warnings: { event: string; fields?: Record<string, unknown> }[] } {
  const warnings: { event: string; fields?: Record<string, unknown> }[] = [];
  return { warnings, info() {}, warn: (event, fields) => void warnings.push({ event, fields }) };
}

async function segmentFile(dir: string): Promise<string> {
  const segs = (await readdir(dir)).filter((n) => n.endsWith('.wal'));
  if (segs.length !== 1) throw new Error(`expected one segment, found ${segs.join(',')}`);
  return join(dir, segs[0]!);
}

// ---------- behaviour shared by the durable log and its in-memory twin ----------

const impls: [string, (t: ExecutionContext) => Promise<RaftStorage>][] = [
  [
    'file',
    async (t) => {
      const s = await FileRaftStorage.open({ dir: await tempDir(t), bootstrap: conf });
      t.teardown(() => s.close());
      return s;
    },
  ],
  ['memory', async () => new MemoryRaftStorage({ bootstrap: conf })],
];

for (const [name, make] of impls) {
  test(`${name}: fresh log reports bootstrap conf and an empty log`, async (t) => {
    const s = await make(t);
    t.deepEqual(s.initialState(), { hardState: { term: 0, vote: '', commit: 0 }, confState: conf });
    t.is(s.firstIndex(), 1);
    t.is(s.lastIndex(), 0);
    t.is(s.term(0), 0);
    t.is(s.snapshot().meta.index, 0);
  });

  test(`${name}: entries conflicting with the suffix replace it`, async (t) => {
    const s = await make(t);
    await s.save({ entries: range(1, 5, 1) });
    await s.save({ entries: range(4, 6, 2, 'new') });
    t.deepEqual(
      s.entries(1, 7).map((e) => e.term),
      [1, 1, 1, 2, 2, 2],
    );
    t.is(decodeData(s.entries(4, 5)[0]!), 'new');
  });

  test(`${name}: reads enforce the log bounds and maxBytes`, async (t) => {
    const s = await make(t);
    await s.save({ entries: range(1, 10, 1, 'x'.repeat(100)) });
    t.throws(() => s.entries(5, 12), { instanceOf: UnavailableError });
    t.throws(() => s.term(11), { instanceOf: UnavailableError });
    t.is(s.entries(1, 11, 250).length, 2);
    t.is(s.entries(1, 11, 1).length, 1, 'at least one entry even when it exceeds maxBytes');
    await s.compact({ meta: { index: 6, term: 1, conf }, data: new Uint8Array([1]) }, 2);
    t.throws(() => s.entries(3, 5), { instanceOf: CompactedError });
    t.throws(() => s.term(3), { instanceOf: CompactedError });
    t.is(s.firstIndex(), 5);
    t.is(s.term(4), 1);
  });

  test(`${name}: an update that would leave a gap is rejected and changes nothing`, async (t) => {
    const s = await make(t);
    await s.save({ entries: range(1, 3, 1), hardState: { term: 1, vote: 'n1', commit: 2 } });
    await t.throwsAsync(s.save({ entries: range(5, 6, 1) }), { instanceOf: InvalidStorageUpdateError });
    await t.throwsAsync(s.save({ entries: [ent(4, 1), ent(6, 1)] }), { instanceOf: InvalidStorageUpdateError });
    await t.throwsAsync(s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 9 } }), { instanceOf: InvalidStorageUpdateError });
    await t.throwsAsync(s.save({ entries: [], hardState: { term: 0, vote: '', commit: 0 } }), { instanceOf: InvalidStorageUpdateError });
    t.is(s.lastIndex(), 3);
    t.is(s.initialState().hardState.commit, 2);
    await s.save({ entries: range(4, 4, 1) });
    t.is(s.lastIndex(), 4);
  });

  test(`${name}: overwriting a committed entry with another term is refused`, async (t) => {
    const s = await make(t);
    await s.save({ entries: range(1, 3, 1), hardState: { term: 1, vote: '', commit: 2 } });
    await t.throwsAsync(s.save({ entries: range(2, 3, 2) }), { instanceOf: InvalidStorageUpdateError, message: /committed/ });
    await s.save({ entries: range(3, 3, 2) }); // uncommitted: may be replaced
    t.is(s.term(3), 2);
  });

  test(`${name}: a snapshot from the leader replaces the whole log`, async (t) => {
    const s = await make(t);
    await s.save({ entries: range(1, 5, 1) });
    const data = new Uint8Array([9, 8, 7]);
    await s.save({
      snapshot: { meta: { index: 20, term: 3, conf: { voters: ['n1'], learners: ['n9'] } }, data },
      entries: [],
      hardState: { term: 3, vote: '', commit: 20 },
    });
    t.is(s.firstIndex(), 21);
    t.is(s.lastIndex(), 20);
    t.is(s.term(20), 3);
    t.deepEqual(s.snapshot().data, data);
    t.deepEqual(s.initialState().confState, { voters: ['n1'], learners: ['n9'] });
    await s.save({ entries: [ent(21, 3)] });
    t.is(s.lastIndex(), 21);
  });
}

// ---------- durability ----------

test('file: entries, hard state and bootstrap conf survive reopen', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 5, 1), hardState: { term: 1, vote: 'n2', commit: 3 } });
  await s1.save({ entries: [{ index: 6, term: 2, type: 'conf', data: new Uint8Array([1, 2]) }], hardState: { term: 2, vote: '', commit: 5 } });
  await s1.close();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: { voters: ['other'], learners: [] } });
  t.teardown(() => s2.close());
  t.deepEqual(s2.initialState(), { hardState: { term: 2, vote: '', commit: 5 }, confState: conf }, 'bootstrap is ignored once state exists');
  t.is(s2.lastIndex(), 6);
  t.deepEqual(s2.entries(1, 6).map(decodeData), ['v1', 'v2', 'v3', 'v4', 'v5']);
  t.deepEqual(s2.entries(6, 7)[0], { index: 6, term: 2, type: 'conf', data: new Uint8Array([1, 2]) });
});

test('file: suffix truncation survives reopen', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 5, 1) });
  await s1.save({ entries: range(3, 4, 2, 'replaced') });
  await s1.close();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s2.close());
  t.is(s2.lastIndex(), 4, 'the old entry 5 stays truncated');
  t.deepEqual(
    s2.entries(1, 5).map((e) => [e.term, decodeData(e)]),
    [
      [1, 'v1'],
      [1, 'v2'],
      [2, 'replaced'],
      [2, 'replaced'],
    ],
  );
});

test('file: concurrent saves are group-committed and each resolves only once durable', async (t) => {
  const dir = await tempDir(t);
  let fsyncs = 0;
  const s = await FileRaftStorage.open({ dir, bootstrap: conf, onFsync: () => void fsyncs++ });
  const n = 40;
  const seen: number[] = [];
  await Promise.all(
    range(1, n, 1).map((e) =>
      s.save({ entries: [e], hardState: { term: 1, vote: '', commit: e.index - 1 } }).then(() => {
        t.true(fsyncs > 0);
        seen.push(s.lastIndex() >= e.index ? 1 : 0); // visible to reads when the promise resolves
      }),
    ),
  );
  t.is(seen.length, n);
  t.true(seen.every((x) => x === 1));
  t.true(fsyncs < n, `expected fewer fsyncs than saves, got ${fsyncs} for ${n}`);
  await s.close();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s2.close());
  t.is(s2.lastIndex(), n);
  t.is(s2.initialState().hardState.commit, n - 1);
});

test('file: a commit-only hard state costs no I/O and is written in front of the next synced save', async (t) => {
  const dir = await tempDir(t);
  let fsyncs = 0;
  const s = await FileRaftStorage.open({ dir, bootstrap: conf, onFsync: () => void fsyncs++ });
  await s.save({ entries: range(1, 3, 1), hardState: { term: 1, vote: 'n1', commit: 1 } });
  const file = await segmentFile(dir);
  const size = (await stat(file)).size;
  const synced = fsyncs;
  await s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 3 }, sync: false });
  t.is((await stat(file)).size, size, 'nothing was written');
  t.is(fsyncs, synced, 'nothing was fsynced');
  t.is(s.initialState().hardState.commit, 3, 'the log itself knows the new commit index at once');
  // A crash now loses commit 3: the reopened log has the last synced one.
  const crashed = await FileRaftStorage.open({ dir: await copyDir(t, dir), bootstrap: conf });
  t.teardown(() => crashed.close());
  t.is(crashed.initialState().hardState.commit, 1);
  // The next synced save carries it in front of its own records; the entries stay readable.
  await s.save({ entries: [ent(4, 1)] });
  t.is(fsyncs, synced + 1);
  t.deepEqual(s.entries(1, 5).map(decodeData), ['v1', 'v2', 'v3', 'v4']);
  await s.close();
  const reopened = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => reopened.close());
  t.is(reopened.initialState().hardState.commit, 3);
  t.deepEqual(reopened.entries(1, 5).map(decodeData), ['v1', 'v2', 'v3', 'v4']);
  // A new term or vote is never held back, whatever the caller says.
  await reopened.save({ entries: [], hardState: { term: 2, vote: 'n2', commit: 3 }, sync: false });
  const afterVote = await FileRaftStorage.open({ dir: await copyDir(t, dir), bootstrap: conf });
  t.teardown(() => afterVote.close());
  t.deepEqual(afterVote.initialState().hardState, { term: 2, vote: 'n2', commit: 3 });
});

test('file: a save truncated mid-record is cut off on reopen, keeping everything before', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 3, 1), hardState: { term: 1, vote: '', commit: 3 } });
  const file = await segmentFile(dir);
  const goodSize = (await stat(file)).size;
  await s1.save({ entries: range(4, 5, 1, 'y'.repeat(200)) });
  await s1.close();
  await truncate(file, goodSize + 50); // the last write reached the disk only partly
  const logger = recordingLogger();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf, logger });
  t.teardown(() => s2.close());
  t.is(s2.lastIndex(), 3);
  t.is(s2.initialState().hardState.commit, 3);
  t.deepEqual(
    logger.warnings.map((w) => w.event),
    ['log.torn_tail_truncated'],
  );
  t.deepEqual(logger.warnings[0]!.fields, { file, offset: goodSize, bytesDropped: 50 });
  t.is((await stat(file)).size, goodSize, 'the torn bytes are removed from the file');
  await s2.save({ entries: [ent(4, 1, 'after')] }); // appends cleanly after the cut
  await s2.close();
  const s3 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s3.close());
  t.deepEqual(s3.entries(3, 5).map(decodeData), ['v3', 'after']);
});

test('file: a flipped byte in the last record is treated as a torn tail', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 3, 1) });
  const file = await segmentFile(dir);
  const goodSize = (await stat(file)).size;
  await s1.save({ entries: range(4, 4, 1, 'z'.repeat(100)) });
  await s1.close();
  await flipByte(file, goodSize + 40);
  const logger = recordingLogger();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf, logger });
  t.teardown(() => s2.close());
  t.is(s2.lastIndex(), 3);
  t.is(logger.warnings[0]?.fields?.offset, goodSize);
});

test('file: a flipped byte in a middle record stops the open with StorageCorruptionError naming the file', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 3, 1) });
  const file = await segmentFile(dir);
  const middleStart = (await stat(file)).size;
  await s1.save({ entries: range(4, 6, 1, 'm'.repeat(100)) });
  await s1.save({ entries: range(7, 9, 1) });
  await s1.close();
  for (const at of [middleStart + 30, middleStart + 1 /* the length field */]) {
    const original = await readFile(file);
    await flipByte(file, at);
    const err = await t.throwsAsync(FileRaftStorage.open({ dir, bootstrap: conf }), { instanceOf: StorageCorruptionError });
    t.is(err?.file, file);
    t.is(err?.offset, middleStart);
    t.regex(err?.message ?? '', /log-\d+\.wal/);
    await writeFile(file, original);
  }
  const ok = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => ok.close());
  t.is(ok.lastIndex(), 9, 'the untouched file still opens');
});

test('file: a hard state committing past the last valid entry is corruption', async (t) => {
  const dir = await tempDir(t);
  // A hand-made segment whose hard state claims entries that the log does not hold.
  const header = frameRecord(packr.pack([0, 1, 0, 0, conf.voters, conf.learners]));
  const hs = frameRecord(packr.pack([2, 1, '', 5]));
  const entries = frameRecord(packr.pack([1, range(1, 3, 1).map((e) => [e.index, e.term, 0, e.data])]));
  await writeFile(join(dir, 'log-0000000000000001.wal'), Buffer.concat([header, hs, entries]));
  const err = await t.throwsAsync(FileRaftStorage.open({ dir, bootstrap: conf }), { instanceOf: StorageCorruptionError });
  t.regex(err?.message ?? '', /committed/);
});

test('file: a gap in indexes is corruption, not skipped', async (t) => {
  const dir = await tempDir(t);
  const header = frameRecord(packr.pack([0, 1, 0, 0, conf.voters, conf.learners]));
  const a = frameRecord(packr.pack([1, range(1, 2, 1).map((e) => [e.index, e.term, 0, e.data])]));
  const b = frameRecord(packr.pack([1, range(4, 5, 1).map((e) => [e.index, e.term, 0, e.data])]));
  await writeFile(join(dir, 'log-0000000000000001.wal'), Buffer.concat([header, a, b]));
  const err = await t.throwsAsync(FileRaftStorage.open({ dir, bootstrap: conf }), { instanceOf: StorageCorruptionError });
  t.is(err?.offset, header.length + a.length);
  t.regex(err?.message ?? '', /gap/);
});

test('file: compaction keeps term(snapshot index), bounds the files on disk and survives reopen', async (t) => {
  const dir = await tempDir(t);
  const s = await FileRaftStorage.open({ dir, bootstrap: conf });
  const payload = 'p'.repeat(500);
  let maxBytes = 0;
  for (let round = 0; round < 10; round++) {
    const lo = round * 100 + 1;
    for (let i = lo; i < lo + 100; i += 20)
      await s.save({ entries: range(i, i + 19, round + 1, payload), hardState: { term: round + 1, vote: '', commit: i + 19 } });
    const snapIndex = lo + 89;
    await s.compact({ meta: { index: snapIndex, term: round + 1, conf }, data: new TextEncoder().encode(`state@${snapIndex}`) }, 30);
    t.is(s.firstIndex(), snapIndex - 30 + 1);
    t.is(s.term(snapIndex), round + 1);
    const files = (await readdir(dir)).sort();
    t.is(files.length, 2, `only one segment and the snapshot file: ${files.join(',')}`);
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(dir, f))).size;
    maxBytes = Math.max(maxBytes, bytes);
  }
  t.true(maxBytes < 60 * 600, `disk use stays bounded by the retained entries (max ${maxBytes} bytes)`);
  await s.close();
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s2.close());
  t.is(s2.firstIndex(), 961);
  t.is(s2.lastIndex(), 1000);
  t.is(s2.term(960), 10);
  t.is(s2.snapshot().meta.index, 990);
  t.is(new TextDecoder().decode(s2.snapshot().data), 'state@990');
  t.is(decodeData(s2.entries(1000, 1001)[0]!), payload);
});

test('file: compaction with a wrong term or beyond the log is rejected and changes nothing', async (t) => {
  const dir = await tempDir(t);
  const s = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s.close());
  await s.save({ entries: range(1, 10, 2) });
  await t.throwsAsync(s.compact({ meta: { index: 5, term: 1, conf }, data: new Uint8Array() }, 0), { instanceOf: InvalidStorageUpdateError });
  await t.throwsAsync(s.compact({ meta: { index: 11, term: 2, conf }, data: new Uint8Array() }, 0), { instanceOf: InvalidStorageUpdateError });
  t.is(s.firstIndex(), 1);
  t.is(s.snapshot().meta.index, 0);
  await s.save({ entries: [ent(11, 2)] }); // still writable
  t.is(s.lastIndex(), 11);
});

test('file: an installed snapshot survives reopen and later appends follow it', async (t) => {
  const dir = await tempDir(t);
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 5, 1) });
  await s1.save({
    snapshot: { meta: { index: 50, term: 4, conf }, data: new Uint8Array([42]) },
    entries: [ent(51, 4)],
    hardState: { term: 4, vote: '', commit: 50 },
  });
  await s1.save({ entries: [ent(52, 4)] });
  await s1.close();
  t.is((await readdir(dir)).length, 2);
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s2.close());
  t.is(s2.firstIndex(), 51);
  t.is(s2.lastIndex(), 52);
  t.is(s2.term(50), 4);
  t.deepEqual(s2.snapshot().data, new Uint8Array([42]));
  t.is(s2.initialState().hardState.commit, 50);
});

test('file: a crash after writing a received snapshot but before resetting the log is repaired on open', async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t);
  // Produce a valid snapshot file in another dir, then drop it next to an older log.
  const donor = await FileRaftStorage.open({ dir: other, bootstrap: conf });
  await donor.save({ snapshot: { meta: { index: 30, term: 3, conf }, data: new Uint8Array([7]) }, entries: [] });
  await donor.close();
  const s1 = await FileRaftStorage.open({ dir, bootstrap: conf });
  await s1.save({ entries: range(1, 4, 1), hardState: { term: 1, vote: '', commit: 2 } });
  await s1.close();
  await writeFile(join(dir, 'snapshot.snap'), await readFile(join(other, 'snapshot.snap')));
  const s2 = await FileRaftStorage.open({ dir, bootstrap: conf });
  t.teardown(() => s2.close());
  t.is(s2.lastIndex(), 30);
  t.is(s2.firstIndex(), 31);
  t.is(s2.initialState().hardState.commit, 30, 'a snapshot covers committed state');
  t.is(s2.initialState().hardState.term, 1);
});

async function flipByte(file: string, offset: number): Promise<void> {
  const fd = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fd.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    await fd.write(b, 0, 1, offset);
  } finally {
    await fd.close();
  }
}

test('file: a save is invisible to reads until its fsync completes; slow fsyncs are logged', async (t) => {
  const dir = await tempDir(t);
  const logger = recordingLogger();
  const fsyncMs: number[] = [];
  const s = await FileRaftStorage.open({ dir, bootstrap: conf, logger, slowFsyncMs: -1, onFsync: (ms) => void fsyncMs.push(ms) });
  const saving = s.save({ entries: range(1, 2, 1) });
  t.is(s.lastIndex(), 0, 'not yet durable, so not yet readable');
  await saving;
  t.is(s.lastIndex(), 2);
  t.is(fsyncMs.length, 1);
  t.deepEqual(
    logger.warnings.map((w) => w.event),
    ['log.slow_fsync'],
  );
  await s.close();
  await t.throwsAsync(s.save({ entries: [ent(3, 1)] }), { name: 'StorageClosedError' });
});
