// Disk-level recovery on a real 3-process cluster with a small snapshot interval, so the log is
// compacted and a node that lost its data can only catch up through InstallSnapshot.
import test from 'ava';
import { eventually, ProcessCluster } from './harness.js';

let cluster: ProcessCluster;
let seq = 0;
let lastAckIndex = 0;

async function write(key: string, value: string): Promise<void> {
  const leader = await cluster.waitForLeader();
  const w = await leader.probe.put(key, value, { clientId: 'recovery', seq: ++seq });
  lastAckIndex = Math.max(lastAckIndex, w.index);
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3, raft: { snapshotEntries: 20, retainEntries: 5 } });
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('a node whose data dir was wiped recovers everything through InstallSnapshot', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await cluster.stop(victim.id);
  for (let i = 0; i < 80; i++) await write(`w${i}`, `v${i}`);
  await eventually(() => leader.logged('"event":"snapshot_taken"'), 10_000, 'the leader to take a snapshot');
  await cluster.wipe(victim.id);
  await cluster.restart(victim.id);
  const r = await eventually(
    () => victim.probe.get('w79', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    20_000,
    'the wiped node to catch up',
  );
  t.is(r.value, 'v79');
  t.true(victim.logged('"event":"snapshot_installed"'), 'caught up through a snapshot, not log replay');
  t.is((await victim.probe.get('w0', { consistency: 'follower' })).value, 'v0');
});

test.serial('a torn log tail is truncated on restart and the node catches up', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await write('before-tear', '1');
  await eventually(
    () => victim.probe.get('before-tear', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    10_000,
    'the victim to have the write',
  );
  t.is(await cluster.stop(victim.id), 0);
  await cluster.tearLogTail(victim.id, 40);
  await cluster.restart(victim.id);
  t.true(victim.logged('log.torn_tail_truncated'), 'the truncation is logged');
  await write('after-tear', '2');
  const r = await eventually(
    () => victim.probe.get('after-tear', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    15_000,
    'the repaired node to catch up',
  );
  t.is(r.value, '2');
  t.is((await victim.probe.get('before-tear', { consistency: 'follower' })).value, '1');
});
