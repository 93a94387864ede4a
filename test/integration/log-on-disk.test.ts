// Followers far behind, caught up from the part of the leader's log that is on disk only (real
// processes; 16 KiB of log entries in memory, 1 KiB values, a snapshot every 300 entries with 1000
// entries kept behind it, so compactions rewrite the segment from disk too):
// - a follower killed and restarted 800 entries later is caught up from the log (no snapshot);
// - after every node was restarted (each log read back from its segment in pieces), a follower
//   that missed 600 entries is caught up from the restarted leader's log, and every node serves
//   every key.
import test from 'ava';
import { eventually, type NodeHandle, ProcessCluster } from './harness.js';

const VALUE = 'v'.repeat(1000);
let cluster: ProcessCluster;
let seq = 0;
let lastIndex = 0;
let written = 0;

async function fill(n: number): Promise<void> {
  const leader = await cluster.waitForLeader(20_000);
  const from = written;
  for (let i = from; i < from + n; i += 50) {
    const batch = Array.from({ length: Math.min(50, from + n - i) }, (_, j) => i + j);
    const acks = await Promise.all(batch.map((k) => leader.probe.put(`k${k}`, `${k}:${VALUE}`, { clientId: `log-on-disk-${k}`, seq: ++seq })));
    for (const a of acks) lastIndex = Math.max(lastIndex, a.index);
  }
  written = from + n;
}

async function assertServesEverything(t: import('ava').ExecutionContext, h: NodeHandle): Promise<void> {
  const last = await eventually(
    () => h.probe.get(`k${written - 1}`, { consistency: 'follower', minIndex: lastIndex, timeoutMs: 2000 }),
    30_000,
    `${h.id} to apply index ${lastIndex}`,
  );
  t.is(last.value, `${written - 1}:${VALUE}`);
  for (let k = 0; k < written; k += 97) t.is((await h.probe.get(`k${k}`, { consistency: 'follower' })).value, `${k}:${VALUE}`, `${h.id} k${k}`);
}

function noSnapshotShipped(t: import('ava').ExecutionContext): void {
  for (const h of cluster.nodes.values()) {
    t.false(h.logged('raft.snapshot_sent'), `${h.id} sent no snapshot: the log covered every follower`);
    t.false(h.logged('"event":"snapshot_install"'), `${h.id} installed no snapshot`);
  }
}

test.before(async () => {
  cluster = await ProcessCluster.start({
    size: 3,
    raft: { snapshotEntries: 300, retainEntries: 1000, electionTicks: 100, heartbeatTicks: 5 },
    storage: { logMemoryBytes: 16 * 1024 },
  });
  await fill(1200);
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('a follower 800 entries behind is caught up from the leader log on disk', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await cluster.kill(victim.id);
  await fill(800);
  await cluster.restart(victim.id);
  await assertServesEverything(t, victim);
  t.true(
    [...cluster.nodes.values()].some((h) => h.logged('"event":"log.compacted"')),
    'the logs were compacted meanwhile',
  );
  noSnapshotShipped(t);
});

test.serial('after every node restarted, each log read back from disk, a follower that missed 600 entries is caught up', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await cluster.kill(victim.id);
  await fill(600);
  const others = cluster.live().filter((h) => h.id !== victim.id);
  for (const h of others) await cluster.kill(h.id);
  for (const h of others) await cluster.restart(h.id);
  await fill(10);
  await cluster.restart(victim.id);
  for (const h of cluster.nodes.values()) await assertServesEverything(t, h);
  noSnapshotShipped(t);
});
