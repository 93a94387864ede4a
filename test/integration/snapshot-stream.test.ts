// Streamed snapshot transfers between real processes (small data, a snapshot every 300 entries, a
// few dozen entries retained, 4 KiB pieces paced like a slow link so a transfer can be cut):
// - a corrupted piece: the receiver refuses the transfer (its CRC), installs nothing, the leader
//   sends again and the follower converges;
// - the receiver killed mid-transfer: its partial file is dropped when it starts again and it is
//   rebuilt from a fresh transfer;
// - the sender (leader) killed mid-transfer: the receiver drops its partial file at once, and the
//   next leader's transfer rebuilds it.
// Each time the rebuilt follower serves every key, holds one snapshot file and no temp file, and
// installed the last transfer from the state it built while the file arrived (nothing left beside
// the live database).
import test from 'ava';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { eventually, type NodeHandle, ProcessCluster, sleep } from './harness.js';

const KEYS = 1200;
const VALUE = 'x'.repeat(1000);
let cluster: ProcessCluster;
let seq = 0;
let lastIndex = 0;

async function fill(leader: NodeHandle, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i += 50) {
    const batch = Array.from({ length: Math.min(50, from + n - i) }, (_, j) => i + j);
    const acks = await Promise.all(batch.map((k) => leader.probe.put(`k${k}`, `${k}:${VALUE}`, { clientId: `snapshot-stream-${k}`, seq: ++seq })));
    for (const a of acks) lastIndex = Math.max(lastIndex, a.index);
  }
}

async function snapshotFiles(h: NodeHandle): Promise<string[]> {
  return readdir(path.join(h.dataDir, 'snapshots')).catch(() => []);
}

/** Stops `victim`, wipes it and starts it again: the leader must rebuild it from a snapshot. */
async function wipeAndRestart(victim: NodeHandle): Promise<void> {
  await cluster.kill(victim.id);
  await cluster.wipe(victim.id);
  await cluster.restart(victim.id);
}

async function waitForPartialFile(h: NodeHandle): Promise<void> {
  await eventually(async () => (await snapshotFiles(h)).some((n) => n.endsWith('.tmp')), 20_000, `${h.id} to be receiving a snapshot file`, 20);
}

async function assertRebuilt(t: import('ava').ExecutionContext, victim: NodeHandle, what: string): Promise<void> {
  const r = await eventually(
    () => victim.probe.get(`k${KEYS - 1}`, { consistency: 'follower', minIndex: lastIndex, timeoutMs: 2000 }),
    30_000,
    `${victim.id} to be rebuilt (${what})`,
  );
  t.is(r.value, `${KEYS - 1}:${VALUE}`);
  t.is((await victim.probe.get('k0', { consistency: 'follower' })).value, `0:${VALUE}`);
  await eventually(
    async () => {
      const files = await snapshotFiles(victim);
      return files.filter((n) => n.endsWith('.qsnap')).length === 1 && !files.some((n) => n.endsWith('.tmp'));
    },
    10_000,
    `${victim.id} to hold one snapshot file and no temp file (${what})`,
  );
  t.true(victim.logged('"event":"snapshot_install"'), 'the install logs its progress line');
  // The state was built while the file arrived (snapshot-staging.ts): the install was the swap.
  const install = victim.lines.filter((l) => l.includes('"event":"snapshot_install"') && l.includes('"done":true')).at(-1);
  t.regex(install ?? '', /"staged":true/, `the last install swapped in the staged state (${what})`);
  const beside = (await readdir(victim.dataDir)).filter((n) => /^kv\.(staging|next|old)$/.test(n));
  t.deepEqual(beside, [], `nothing is left beside the live database (${what})`);
}

test.before(async () => {
  cluster = await ProcessCluster.start({
    size: 3,
    raft: { snapshotEntries: 300, retainEntries: 50, electionTicks: 100, heartbeatTicks: 5 },
    storage: { snapshotChunkBytes: 4096 },
    env: { QUORUMKV_TEST_CORRUPT_SNAPSHOT_PIECE: '3', QUORUMKV_TEST_SNAPSHOT_PIECE_DELAY_MS: '4' },
  });
  const leader = await cluster.waitForLeader();
  await fill(leader, 0, KEYS);
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('a corrupted piece is refused, nothing is installed, and the next transfer rebuilds the follower', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await wipeAndRestart(victim);
  await eventually(() => victim.logged('fails its CRC-32'), 30_000, 'the receiver to refuse the corrupted piece');
  await assertRebuilt(t, victim, 'after a corrupted piece');
});

/** Wipes a follower and waits until the leader's transfer to it is under way. */
async function wipeAndWaitForTransfer(): Promise<{ leader: NodeHandle; victim: NodeHandle }> {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await wipeAndRestart(victim);
  await waitForPartialFile(victim);
  return { leader, victim };
}

test.serial('a receiver killed mid-transfer drops its partial file and is rebuilt after its restart', async (t) => {
  const { victim } = await wipeAndWaitForTransfer();
  await cluster.kill(victim.id);
  t.true(
    (await snapshotFiles(victim)).some((n) => n.endsWith('.tmp')),
    'the kill cut the transfer',
  );
  await cluster.restart(victim.id);
  await assertRebuilt(t, victim, 'after the receiver was killed');
});

test.serial('a sender killed mid-transfer leaves no partial file, and the next leader rebuilds the follower', async (t) => {
  let { leader, victim } = await wipeAndWaitForTransfer();
  await cluster.kill(leader.id);
  await eventually(async () => !(await snapshotFiles(victim)).some((n) => n.endsWith('.tmp')), 15_000, 'the receiver to drop the partial file');
  // The victim is rebuilding (it does not vote): the old leader's restart restores a quorum.
  await cluster.restart(leader.id);
  leader = await cluster.waitForLeader(20_000);
  await fill(leader, KEYS, 1);
  await sleep(100);
  await assertRebuilt(t, victim, 'after the sender was killed');
  t.is((await victim.probe.get(`k${KEYS}`, { consistency: 'follower', minIndex: lastIndex, timeoutMs: 2000 })).value, `${KEYS}:${VALUE}`);
});
