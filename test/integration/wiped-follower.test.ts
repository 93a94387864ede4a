// A follower that lost its data, on a real 3-process cluster with no snapshots in reach (the leader
// can only catch it up from the log), while the SAME leader stays in office:
// - its whole data dir wiped: it comes back empty, rebuilds from the leader without voting, and
//   serves the latest value (before the fix it stayed at commit 0 for good while the leader
//   reported it "lag 0", and follower reads on it answered "not found");
// - only its Raft dir deleted, its LevelDB kept: it refuses to start, says how to recover, and
//   changes nothing (before the fix it started with term 0 and its vote forgotten).
import test from 'ava';
import { spawn } from 'node:child_process';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, fingerprint, ProcessCluster, type NodeHandle } from './harness.js';

const TSX = import.meta.resolve('tsx');
const SERVE_MAIN = fileURLToPath(new URL('../../src/process/serve-main.ts', import.meta.url));

let cluster: ProcessCluster;
let seq = 0;
let lastAckIndex = 0;

async function write(leader: NodeHandle, key: string, value: string): Promise<void> {
  const w = await leader.probe.put(key, value, { clientId: 'wiped-follower', seq: ++seq });
  lastAckIndex = Math.max(lastAckIndex, w.index);
}

/** Starts `id` as a bare process (ephemeral ports, no peers) and waits for it to exit (bounded). */
function startExpectingExit(configPath: string, id: string, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', TSX, SERVE_MAIN, '--config', configPath, '--node', id], {
      env: { ...process.env, QUORUMKV_RAFT_PORT: '0', QUORUMKV_CLIENT_PORT: '0', QUORUMKV_HTTP_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (b) => (stdout += b));
    proc.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new Error(`node ${id} did not exit within ${timeoutMs} ms (it should have refused to start); stdout:\n${stdout}\nstderr:\n${stderr.slice(-2000)}`),
      );
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test.before(async () => {
  // A 1.5 s election timeout (not the harness's 200 ms): the first test is about the SAME leader
  // staying in office, which a busy 2-core box must not turn into an election by stalling a process.
  cluster = await ProcessCluster.start({ size: 3, raft: { snapshotEntries: 100_000, electionTicks: 150, heartbeatTicks: 5 } });
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('a follower wiped while the same leader stays in office rebuilds without voting and catches up', async (t) => {
  const leader = await cluster.waitForLeader();
  const { term } = await leader.probe.status();
  for (let i = 0; i < 200; i++) await write(leader, `k${i}`, `v${i}`);
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await eventually(
    () => victim.probe.get('k199', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    10_000,
    'the victim to have every write',
  );

  t.is(await cluster.stop(victim.id), 0);
  await cluster.wipe(victim.id);
  await cluster.restart(victim.id); // the leader is never stopped
  await write(leader, 'after-wipe', 'latest');

  const r = await eventually(
    () => victim.probe.get('after-wipe', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    20_000,
    'the wiped follower to catch up from the log',
  );
  t.is(r.value, 'latest');
  t.is((await victim.probe.get('k0', { consistency: 'follower' })).value, 'v0');

  // It knew it was rebuilding (and so refused to vote) until the leader caught it up...
  const rebuilding = victim.lines.findIndex((l) => l.includes('"event":"raft.rebuilding"'));
  const complete = victim.lines.findIndex((l) => l.includes('"event":"raft.rebuild_complete"'));
  t.true(rebuilding >= 0, 'the wiped follower logged that it is rebuilding');
  t.true(complete > rebuilding, 'and that it finished, only after that');
  // ...the leader noticed the lost entries instead of reporting it caught up...
  t.true(leader.logged('"event":"raft.follower_lost_entries"'));
  const st = await leader.probe.status();
  t.true(st.followers.find((f) => f.id === victim.id)!.match >= lastAckIndex);
  // ...and no election happened: same leader, same term, everywhere.
  const statuses = await cluster.statuses();
  t.is(statuses.size, 3);
  for (const s of statuses.values()) t.like(s, { term, leaderId: leader.id });
});

test.serial('a follower whose Raft dir was deleted but LevelDB kept refuses to start, names the fix, changes nothing', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await write(leader, 'before-raft-loss', '1');
  await eventually(
    () => victim.probe.get('before-raft-loss', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    10_000,
    'the victim to have the write',
  );
  t.is(await cluster.stop(victim.id), 0);
  await rm(path.join(victim.dataDir, 'raft'), { recursive: true, force: true });
  const before = await fingerprint(victim.dataDir);

  const run = await startExpectingExit(cluster.configPath, victim.id);
  t.is(run.code, 1);
  t.regex(run.stderr, /DataDirInconsistentError|is inconsistent/);
  t.true(run.stderr.includes(`data dir ${victim.dataDir} is inconsistent`), run.stderr.slice(-2000));
  t.true(run.stderr.includes(path.join(victim.dataDir, 'raft')) && run.stderr.includes(path.join(victim.dataDir, 'kv')), 'names both files');
  t.true(run.stderr.includes(`move ${victim.dataDir} aside`) && run.stderr.includes('restart this node so it is rebuilt from the leader'));
  t.false(run.stdout.includes('"event":"ready"'));
  t.deepEqual(await fingerprint(victim.dataDir), before, 'the refused start changed nothing, byte for byte');

  // The recovery the message names works.
  await rename(victim.dataDir, `${victim.dataDir}.broken`);
  await cluster.restart(victim.id);
  await write(leader, 'after-raft-loss', '2');
  const r = await eventually(
    () => victim.probe.get('after-raft-loss', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    20_000,
    'the rebuilt node to catch up',
  );
  t.is(r.value, '2');
});
