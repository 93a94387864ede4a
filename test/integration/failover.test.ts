// One real 3-process cluster shared by the serial steps below (each step leaves it healthy).
import test from 'ava';
import { eventually, httpGet, ProcessCluster } from './harness.js';

let cluster: ProcessCluster;
let seq = 0;
/** Every acknowledged (sync) write: key -> value. */
const acked = new Map<string, string>();
let lastAckIndex = 0;

async function writeOnLeader(key: string, value: string): Promise<void> {
  const leader = await cluster.waitForLeader();
  const w = await leader.probe.put(key, value, { clientId: 'itest', seq: ++seq });
  acked.set(key, value);
  lastAckIndex = Math.max(lastAckIndex, w.index);
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
});
test.after.always(async () => {
  await cluster?.close();
});

test.serial('writes on the leader are readable on every node through follower reads', async (t) => {
  const leader = await cluster.waitForLeader();
  for (let i = 0; i < 20; i++) await writeOnLeader(`k${i}`, `v${i}`);
  for (const h of cluster.live()) {
    for (const [k, v] of [...acked].slice(-3)) {
      const r = await h.probe.get(k, { consistency: 'follower', minIndex: lastAckIndex });
      t.is(r.value, v, `${k} on ${h.id}`);
      t.is(r.servedBy, h.id);
    }
  }
  const lin = await leader.probe.get('k0', { consistency: 'linearizable' });
  t.is(lin.value, 'v0');
  // Operator endpoints.
  t.is((await httpGet(leader, '/healthz')).status, 200);
  t.is((await httpGet(leader, '/readyz')).status, 200);
  const metrics = (await httpGet(leader, '/metrics')).body;
  t.regex(metrics, /quorumkv_server_is_leader 1/);
  t.regex(metrics, /quorumkv_disk_wal_fsync_duration_seconds_count [1-9]/);
});

test.serial('SIGKILL of the leader: a new leader is elected and every acknowledged write survives', async (t) => {
  const old = await cluster.waitForLeader();
  await cluster.kill(old.id);
  const fresh = await cluster.waitForLeader(15_000, [old.id]);
  t.not(fresh.id, old.id);
  for (const [k, v] of acked) {
    const r = await fresh.probe.get(k, { consistency: 'linearizable' });
    t.is(r.value, v, k);
  }
  await writeOnLeader('after-failover', 'yes');

  // Restart the killed node: it rejoins as a follower and catches up.
  await cluster.restart(old.id);
  const back = cluster.node(old.id);
  const r = await eventually(
    () => back.probe.get('after-failover', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    15_000,
    'the restarted node to catch up',
  );
  t.is(r.value, 'yes');
  t.is((await back.probe.get('k5', { consistency: 'follower' })).value, 'v5');
});

test.serial('SIGSTOP of a follower does not stop writes; after SIGCONT it catches up', async (t) => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  await cluster.signal(follower.id, 'SIGSTOP');
  try {
    for (let i = 0; i < 5; i++) await writeOnLeader(`paused${i}`, `p${i}`);
  } finally {
    await cluster.signal(follower.id, 'SIGCONT');
  }
  const r = await eventually(
    () => follower.probe.get('paused4', { consistency: 'follower', minIndex: lastAckIndex, timeoutMs: 2000 }),
    15_000,
    'the resumed follower to catch up',
  );
  t.is(r.value, 'p4');
});

test.serial('SIGTERM stops a node cleanly with exit code 0', async (t) => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  t.is(await cluster.stop(follower.id), 0);
  t.true(follower.logged('"event":"stopped"'));
  await cluster.restart(follower.id);
  await writeOnLeader('final', 'ok');
});
