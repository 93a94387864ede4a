// A follower whose LevelDB table file was damaged on disk (a real 3-process cluster): it refuses to
// serve the damaged data (a typed error, not the bytes, not "not found"), says so in its log and
// on /readyz, and `quorumkv rebuild` (run as the operator would, with the node stopped) moves its
// data dir aside so that the restarted node is rebuilt from the leader and serves the right value.
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { ProbeCallError } from '../../src/process/node-probe.js';
import { eventually, httpGet, ProcessCluster, type NodeHandle } from './harness.js';

const TSX = import.meta.resolve('tsx');
const MAIN = fileURLToPath(new URL('../../src/process/main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DATA_LOSS = 15;

let cluster: ProcessCluster;
let seq = 0;
let lastAckIndex = 0;

async function write(key: string, value: string): Promise<void> {
  const leader = await cluster.waitForLeader();
  const w = await leader.probe.put(key, value, { clientId: 'corruption-it', seq: ++seq });
  lastAckIndex = Math.max(lastAckIndex, w.index);
}

/** `quorumkv <args>` as a subprocess (bounded), as an operator runs it. */
function quorumkv(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`quorumkv ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Moves the stopped node's LevelDB log into a table (LevelDB does so when it opens) and flips one bit of `needle` in it. */
async function damageTableFile(h: NodeHandle, needle: string): Promise<string> {
  const kvDir = path.join(h.dataDir, 'kv');
  const db = new Level(kvDir);
  await db.open({ createIfMissing: false });
  await db.close();
  const hits: string[] = [];
  for (const name of (await readdir(kvDir)).filter((n) => n.endsWith('.ldb'))) {
    const file = path.join(kvDir, name);
    const bytes = await readFile(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes[at + (needle.length >> 1)]! ^= 0x04;
    await writeFile(file, bytes);
    hits.push(name);
  }
  if (hits.length !== 1) throw new Error(`expected the value in exactly one table file of ${kvDir}, found it in ${hits.length}`);
  return hits[0]!;
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3, raft: { snapshotEntries: 20, retainEntries: 5 } });
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('a follower with a damaged table file refuses the read with a clear error; rebuild from the leader fixes it', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  const random = randomBytes(24).toString('base64url'); // incompressible: verbatim in the table file
  const precious = `precious-${random}`;
  await write('precious', precious);
  for (let i = 0; i < 5; i++) await write(`other${i}`, `v${i}`);
  const seen = await eventually(
    () => victim.probe.get('precious', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    15_000,
    'the victim to apply the writes',
  );
  t.is(seen.value, precious);

  t.is(await cluster.stop(victim.id), 0);
  await damageTableFile(victim, random);
  await cluster.restart(victim.id);

  // The damaged value is refused — not returned, not "not found" — with the typed error.
  const err = await t.throwsAsync(victim.probe.get('precious', { consistency: 'follower' }), { instanceOf: ProbeCallError });
  t.log(err!.message);
  t.is(err!.errorName, 'ReplicaCorruptedError');
  t.is(err!.code, DATA_LOSS);
  t.true(err!.message.includes(`quorumkv rebuild --config ${cluster.configPath} --node ${victim.id}`), err!.message);
  t.true(err!.message.includes(Buffer.from('precious').toString('hex')), err!.message);
  // Logged once, loudly; unready; and no other read is served from the damaged copy either.
  await eventually(() => victim.logged('"event":"state_machine_corrupt"'), 5_000, 'the corruption log line');
  const logged = victim.lines.filter((l) => l.includes('"event":"state_machine_corrupt"'));
  t.is(logged.length, 1);
  t.log(logged[0]);
  t.is((await httpGet(victim, '/readyz')).status, 503);
  const other = await t.throwsAsync(victim.probe.get('other1', { consistency: 'follower' }), { instanceOf: ProbeCallError });
  t.is(other!.errorName, 'ReplicaCorruptedError');
  // The rest of the cluster is fine.
  t.is((await (await cluster.waitForLeader()).probe.get('precious')).value, precious);

  // rebuild refuses while the node runs: it holds its LevelDB lock.
  const early = await quorumkv(['rebuild', '--config', cluster.configPath, '--node', victim.id]);
  t.not(early.code, 0);
  t.regex(early.stderr, /still running/);
  await stat(victim.dataDir);

  // More writes while it is down, so the log is compacted and it can only catch up by snapshot.
  t.is(await cluster.stop(victim.id), 0);
  for (let i = 0; i < 40; i++) await write(`later${i}`, `l${i}`);
  await eventually(() => cluster.live().some((h) => h.logged('"event":"snapshot_taken"')), 10_000, 'a snapshot on the live nodes');

  const rebuilt = await quorumkv(['rebuild', '--config', cluster.configPath, '--node', victim.id]);
  t.is(rebuilt.code, 0, rebuilt.stderr);
  t.log(rebuilt.stdout.trim());
  const aside = (await readdir(cluster.root)).filter((n) => n.startsWith(`${victim.id}.corrupt-`));
  t.is(aside.length, 1, `moved aside, kept: ${aside.join(', ')}`);
  t.true(rebuilt.stdout.includes(path.join(cluster.root, aside[0]!)), rebuilt.stdout);
  await stat(path.join(cluster.root, aside[0]!, 'kv'));
  await t.throwsAsync(stat(victim.dataDir), { code: 'ENOENT' });

  await cluster.restart(victim.id);
  const r = await eventually(
    () => victim.probe.get('precious', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    30_000,
    'the rebuilt node to catch up',
  );
  t.is(r.value, precious);
  t.is((await victim.probe.get('later39', { consistency: 'follower' })).value, 'l39');
  t.true(victim.logged('"event":"snapshot_installed"'), 'rebuilt through InstallSnapshot');
  t.is((await httpGet(victim, '/readyz')).status, 200);
});
