// Backup files (src/storage/backup-file.ts): a snapshot file plus a self-checking trailer. A good
// file verifies and reports its metadata; any flipped byte, a cut at any point and a file that is
// not a backup are refused with InvalidSnapshotError.
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Entry } from '../../src/raft/types.js';
import { InvalidSnapshotError, LevelStateMachine, encodeCommand } from '../../src/storage/index.js';
import { backupFileBytes, openBackupFile, verifyBackupFile } from '../../src/storage/backup-file.js';

const te = new TextEncoder();
const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-backup-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function puts(n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    index: i + 1,
    term: 2,
    type: 'normal' as const,
    data: encodeCommand({
      clientId: 'c1',
      seq: i + 1,
      firstUnacked: i + 1,
      op: { op: 'put', key: te.encode(`k${i}`), value: te.encode(`value-${i}`.repeat(20)) },
    }),
  }));
}

/** A backup of a machine holding `n` keys (and c1's session), written to `file`. */
async function backup(t: ExecutionContext, dir: string, n: number): Promise<{ file: string; crc: number; size: number }> {
  const sm = await LevelStateMachine.open({ dir: join(dir, 'kv'), checkTables: false });
  t.teardown(() => sm.close());
  await sm.apply(puts(n));
  const stream = await sm.snapshotStream();
  const out = backupFileBytes({ index: stream.applied.index, term: stream.applied.term, conf, app: te.encode('members') }, stream.chunks, {
    cluster: 'old',
    nodeId: 'n1',
  });
  const parts: Buffer[] = [];
  for await (const b of out.bytes) parts.push(b);
  const bytes = Buffer.concat(parts);
  const file = join(dir, 'backup.qkv');
  await writeFile(file, bytes);
  const s = out.summary()!;
  t.is(s.fileBytes, bytes.length);
  t.is(s.fileCrc32, crc32(bytes));
  return { file, crc: crc32(bytes), size: bytes.length };
}

test('a backup verifies: index, term, members, key count, size and whole-file CRC as written', async (t) => {
  const dir = await tempDir(t);
  const { file, crc, size } = await backup(t, dir, 3000);
  const s = await verifyBackupFile(file);
  t.is(s.header.index, 3000);
  t.is(s.header.term, 2);
  t.deepEqual(s.header.conf, conf);
  t.is(s.trailer.keys, 3000);
  t.is(s.trailer.pairs, 3001); // + the session of c1
  t.is(s.trailer.cluster, 'old');
  t.is(s.fileBytes, size);
  t.is(s.fileCrc32, crc);
});

test('a flipped byte anywhere in a backup is refused', async (t) => {
  const dir = await tempDir(t);
  const { file, size } = await backup(t, dir, 3000);
  const good = await readFile(file);
  // The header, a pair record, the end record, the trailer and its length field.
  for (const at of [3, 20, Math.floor(size / 2), size - 200, size - 30, size - 2]) {
    const bad = Buffer.from(good);
    bad[at] = bad[at]! ^ 0x5a;
    const damaged = join(dir, `flip-${at}.qkv`);
    await writeFile(damaged, bad);
    await t.throwsAsync(verifyBackupFile(damaged), { instanceOf: InvalidSnapshotError }, `flip at ${at}`);
  }
});

test('a truncated backup, an empty file, a missing file and a file that is not a backup are refused', async (t) => {
  const dir = await tempDir(t);
  const { file, size } = await backup(t, dir, 500);
  const good = await readFile(file);
  for (const cut of [0, 3, 100, Math.floor(size / 2), size - 5, size - 1]) {
    const cutFile = join(dir, `cut-${cut}.qkv`);
    await writeFile(cutFile, good.subarray(0, cut));
    const err = await t.throwsAsync(verifyBackupFile(cutFile), { instanceOf: InvalidSnapshotError }, `cut at ${cut}`);
    t.regex(err!.message, /backup file/);
  }
  await t.throwsAsync(verifyBackupFile(join(dir, 'missing.qkv')), { instanceOf: InvalidSnapshotError, message: /does not exist/ });
  const text = join(dir, 'text.qkv');
  await writeFile(text, 'hello, this is not a backup at all\n'.repeat(10));
  await t.throwsAsync(verifyBackupFile(text), { instanceOf: InvalidSnapshotError });
});

test('a damaged pair is refused before the chunks complete: a consumer that commits at the end commits nothing', async (t) => {
  const dir = await tempDir(t);
  const { file } = await backup(t, dir, 200);
  const good = await readFile(file);
  // Append a byte inside the snapshot part: record framing no longer lines up with the trailer's size.
  const bad = Buffer.concat([good.subarray(0, 40), Buffer.from([0]), good.subarray(40)]);
  const damaged = join(dir, 'grown.qkv');
  await writeFile(damaged, bad);
  const err = await t.throwsAsync(async () => {
    const opened = await openBackupFile(damaged);
    for await (const _ of opened.chunks);
  });
  t.true(err instanceof InvalidSnapshotError);
});
