// Backup and restore through the CLI as an operator runs it, against real node processes: a backup
// taken while writes go on is one point in time (every write acknowledged at or below its index is
// in it, none above); restoring it into a fresh 3-node cluster under another name gives the same
// contents, and the new cluster takes writes. A flipped byte or a cut file is refused by
// `snapshot status` and `snapshot restore` (exit 7) and nothing is written.
// (Two clusters: the one backed up and the one restored; the second is the point of the test.)
import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect, type KvClient } from '../../src/client/index.js';
import { type CliRun, ProcessCluster, runQuorumkv } from './harness.js';

function cli(...args: string[]): Promise<CliRun> {
  return runQuorumkv(args, 60_000);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function everything(kv: KvClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let from: Uint8Array | undefined;
  for (;;) {
    const page = await kv.scan({ prefix: '', limit: 1000, ...(from ? { continueFrom: from } : {}) });
    for (const item of page.items) out.set(item.keyText(), item.text());
    if (!page.continueFrom) return out;
    from = page.continueFrom;
  }
}

test('save while writing is one point in time; restore into a new cluster gives identical contents; damaged files are refused', async (t) => {
  const old = await ProcessCluster.start({ size: 3 });
  let restored: ProcessCluster | undefined;
  let kv: KvClient | undefined;
  let kv2: KvClient | undefined;
  t.teardown(async () => {
    await kv?.close();
    await kv2?.close();
    await restored?.close();
    await old.close();
  });
  await old.waitForLeader();
  const endpoints = [...old.nodes.values()].map((h) => h.clientAddress);
  kv = await connect({ endpoints });
  for (let i = 0; i < 300; i++) await kv.put(`base/${String(i).padStart(4, '0')}`, `value-${i}`.repeat(10));

  // Writes go on during the save; each is remembered with the index it was acknowledged at.
  const acked = new Map<string, number>();
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const key = `live/${String(i).padStart(6, '0')}`;
      const r = await kv!.put(key, `w${i}`);
      acked.set(key, r.appliedAt ?? r.index);
    }
  })();
  const file = path.join(old.root, 'backup.qkv');
  const save = await cli('snapshot', 'save', file, '--endpoints', endpoints.join(','), '--json');
  writing = false;
  await writer;
  t.is(save.code, 0, save.stderr);
  t.false(await exists(`${file}.part`));
  const meta = JSON.parse(save.stdout) as { index: number; keys: number; bytes: number; crc32: number; members: unknown[] };
  t.is(meta.members.length, 3);
  t.regex(save.stderr, /MiB\/s/); // the progress line

  const status = await cli('snapshot', 'status', file, '--json');
  t.is(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { index: number; keys: number; bytes: number; crc32: number; cluster: string };
  t.like(s, { index: meta.index, keys: meta.keys, bytes: meta.bytes, crc32: meta.crc32 });

  // The old cluster's contents at the backup's index: the base keys and the live writes at or below it.
  const before = await everything(kv);
  const expected = new Map([...before].filter(([k]) => !k.startsWith('live/') || acked.get(k)! <= meta.index));
  t.true([...acked.values()].some((i) => i > meta.index) || acked.size === 0, 'some writes landed after the view (else the test proves little)');
  t.is(meta.keys, expected.size);

  // Damaged copies: refused by status and by restore, and nothing is written.
  const good = await readFile(file);
  const flipped = path.join(old.root, 'flipped.qkv');
  const bad = Buffer.from(good);
  const at = Math.floor(bad.length / 2);
  bad[at] = bad[at]! ^ 0x20;
  await writeFile(flipped, bad);
  const cut = path.join(old.root, 'cut.qkv');
  await writeFile(cut, good.subarray(0, good.length - 100));

  restored = await ProcessCluster.start({
    size: 3,
    seed: async (configPath, ids) => {
      const dataDir = path.join(path.dirname(configPath), ids[0]!);
      for (const damaged of [flipped, cut]) {
        const st = await cli('snapshot', 'status', damaged);
        t.is(st.code, 7, `status ${damaged}: ${st.stdout}${st.stderr}`);
        t.regex(st.stderr, /(snapshot|backup) file .*(checksum|truncated).*nothing was written/);
        const r = await cli('snapshot', 'restore', damaged, '--config', configPath, '--node', ids[0]!);
        t.is(r.code, 7, `restore ${damaged}: ${r.stdout}${r.stderr}`);
        t.false(await exists(dataDir), 'a refused restore writes nothing');
      }
      // Restoring into the old cluster's own name is refused (a restored cluster takes a new identity).
      const oldConfig = await cli('snapshot', 'restore', file, '--config', old.configPath, '--node', 'n1');
      t.not(oldConfig.code, 0);
      for (const id of ids) {
        const r = await cli('snapshot', 'restore', file, '--config', configPath, '--node', id);
        t.is(r.code, 0, r.stderr);
      }
    },
  });
  await restored.waitForLeader();
  kv2 = await connect({ endpoints: [...restored.nodes.values()].map((h) => h.clientAddress) });
  t.deepEqual(await everything(kv2), expected);
  await kv2.put('after-restore', 'yes');
  t.is((await kv2.get('after-restore'))?.text(), 'yes');
  t.not(s.cluster, JSON.parse(await readFile(restored.configPath, 'utf8')).cluster);
});
