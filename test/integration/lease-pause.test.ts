// Lease reads through a paused or stalled leader. The leader is frozen (SIGSTOP, or a 2 s busy
// loop inside it) for longer than the election timeout; the others elect a new leader, which
// acknowledges a newer write. Lease reads sent to the old leader after that ack — by a client that
// still believes it leads — must see the newer write or fail; never return the old value.
import test from 'ava';
import type { NodeHandle } from './harness.js';
import { ProcessCluster, sleep } from './harness.js';

const READS_PER_PAUSE = 20;
const PAUSES = 4;
const STALL_MS = 2000;

let cluster: ProcessCluster;
let seq = 0;

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3, env: { QUORUMKV_TEST_STALL_SIGNAL: 'SIGUSR2', QUORUMKV_TEST_STALL_MS: String(STALL_MS) } });
});
test.after.always(async () => {
  await cluster?.close();
});

interface Round {
  stale: string[];
  fresh: number;
  failed: number;
}

/** One frozen-leader round; `freeze`/`thaw` decide how the leader is frozen. */
async function frozenLeaderRound(key: string, freeze: (h: NodeHandle) => void, thaw: (h: NodeHandle) => void): Promise<Round> {
  const old = await cluster.waitForLeader();
  await old.probe.put(key, 'old', { clientId: 'lease-test', seq: ++seq });
  // A lease read right now is served locally and sees 'old' (the lease holds: heartbeats flow).
  freeze(old);
  let thawed = false;
  try {
    const fresh = await cluster.waitForLeader(STALL_MS - 200, [old.id]).catch(() => undefined);
    if (!fresh) throw new Error(`no new leader was elected while ${old.id} was frozen`);
    await fresh.probe.put(key, 'new', { clientId: 'lease-test', seq: ++seq, timeoutMs: 1000 });
    // Acknowledged by the new leader. Every read below is sent after that ack.
    const reads = Array.from({ length: READS_PER_PAUSE }, () =>
      old.probe.get(key, { consistency: 'lease', timeoutMs: 4000 }).then(
        (r) => r.value ?? '(absent)',
        () => undefined, // refused or timed out: allowed
      ),
    );
    await sleep(50); // let the requests reach the frozen process's socket
    thaw(old);
    thawed = true;
    const outcomes = await Promise.all(reads);
    return {
      stale: outcomes.filter((v): v is string => v !== undefined && v !== 'new'),
      fresh: outcomes.filter((v) => v === 'new').length,
      failed: outcomes.filter((v) => v === undefined).length,
    };
  } finally {
    if (!thawed) thaw(old);
  }
}

test.serial('a leader resumed from SIGSTOP never serves a lease read older than a write the new leader acknowledged', async (t) => {
  for (let i = 0; i < PAUSES; i++) {
    const round = await frozenLeaderRound(
      `paused-${i}`,
      (h) => h.proc!.kill('SIGSTOP'),
      (h) => h.proc!.kill('SIGCONT'),
    );
    t.deepEqual(round.stale, [], `pause ${i}: stale lease reads (fresh ${round.fresh}, failed ${round.failed})`);
    t.log(`pause ${i}: ${round.fresh} reads saw the new value, ${round.failed} were refused`);
  }
});

test.serial('a leader whose event loop stalled for 2 s never serves a stale lease read either', async (t) => {
  for (let i = 0; i < PAUSES; i++) {
    // The stall is its own bound: the busy loop ends after STALL_MS; thaw has nothing to do.
    const round = await frozenLeaderRound(
      `stalled-${i}`,
      (h) => h.proc!.kill('SIGUSR2'),
      () => {},
    );
    t.deepEqual(round.stale, [], `stall ${i}: stale lease reads (fresh ${round.fresh}, failed ${round.failed})`);
    t.log(`stall ${i}: ${round.fresh} reads saw the new value, ${round.failed} were refused`);
  }
});

test.serial('lease reads on a healthy leader are served locally and see the latest acknowledged write', async (t) => {
  const leader = await cluster.waitForLeader();
  await leader.probe.put('healthy', 'v1', { clientId: 'lease-test', seq: ++seq });
  const r = await leader.probe.get('healthy', { consistency: 'lease' });
  t.is(r.value, 'v1');
  t.is(r.servedBy, leader.id);
});
