// Watch, leases and locks against one real 3-process cluster (shared by the serial steps; each step
// leaves every node running).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { connect, type KvClient, WatchCompactedError, type WatchEvent } from '../../src/index.js';
import { eventually, ProcessCluster, sleep } from './harness.js';

let cluster: ProcessCluster;
let kv: KvClient;

const endpointsLeaderFirst = async (): Promise<string[]> => {
  const leader = await cluster.waitForLeader();
  return [
    leader.clientAddress,
    ...cluster
      .live()
      .filter((h) => h !== leader)
      .map((h) => h.clientAddress),
  ];
};

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
  kv = await connect({ endpoints: await endpointsLeaderFirst(), deadlineMs: 8_000 });
});
test.after.always(async () => {
  await kv?.close();
  await cluster?.close();
});

async function restartDead(): Promise<void> {
  for (const h of cluster.nodes.values()) if (!h.running) await cluster.restart(h.id);
  await cluster.waitForLeader();
}

/** Pulls events from `watch` into `into` until `done()` holds or the time is up. */
async function collect(iter: AsyncIterable<WatchEvent>, into: WatchEvent[], done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const it = iter[Symbol.asyncIterator]();
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`watch: timed out with ${into.length} events`);
    const r = await Promise.race([it.next(), sleep(left).then(() => undefined)]);
    if (!r || r.done) continue;
    into.push(r.value);
  }
}

let watchFrom = 0;
let killedInWatch = '';

test.serial('a watch across a leader SIGKILL delivers every change exactly once, in log order', async (t) => {
  const start = await kv.put('w/start', 'x');
  watchFrom = start.index + 1;
  // The watcher streams from the leader (the first endpoint), which then dies.
  const watcherClient = await connect({ endpoints: await endpointsLeaderFirst(), deadlineMs: 8_000 });
  t.teardown(() => watcherClient.close());
  const watcher = watcherClient.watch({ prefix: 'w/', fromIndex: watchFrom, prevValue: true });
  const events: WatchEvent[] = [];
  const acked = new Map<number, { key: string; value: string }>();
  const pulling = collect(watcher, events, () => false, 60_000).catch(() => undefined);
  const leader = await cluster.waitForLeader();
  killedInWatch = leader.id;
  for (let i = 0; i < 60; i++) {
    if (i === 20) await cluster.kill(leader.id);
    const key = `w/${i % 7}`;
    const value = `v${i}`;
    try {
      const r = await kv.put(key, value);
      acked.set(r.appliedAt ?? r.index, { key, value });
    } catch {
      // indeterminate: may or may not have been applied; the final-state check covers it
    }
  }
  const last = Math.max(...acked.keys());
  await eventually(() => events.some((e) => e.index >= last), 20_000, 'the watch to deliver the last acked write');
  watcher.close();
  await pulling;
  // Strictly increasing indexes: nothing duplicated, nothing out of order (one put per index here).
  for (let i = 1; i < events.length; i++) t.true(events[i]!.index > events[i - 1]!.index, `event ${i} after ${i - 1}`);
  const byIndex = new Map(events.map((e) => [e.index, e]));
  for (const [index, w] of acked) {
    const e = byIndex.get(index);
    t.truthy(e, `acked write at ${index} was delivered`);
    t.is(e?.keyText(), w.key);
    t.is(e?.text(), w.value);
  }
  // Replaying the events gives the final state, and each event's previous value is the one before it.
  const state = new Map<string, string>();
  for (const e of events) {
    const before = state.get(e.keyText());
    if (before !== undefined) t.is(e.prevValue && Buffer.from(e.prevValue).toString(), before, `prevValue at ${e.index}`);
    state.set(e.keyText(), e.text());
  }
  // Final state by key (get): see the report for a scan that timed out right after the kill.
  for (let k = 0; k < 7; k++) {
    const item = await kv.get(`w/${k}`);
    t.is(state.get(`w/${k}`), item?.text(), `w/${k}`);
  }
  await restartDead();
});

test.serial('a watch resumes from an index; from before a node kept history it is refused with WatchCompactedError', async (t) => {
  const events: WatchEvent[] = [];
  const resumed = kv.watch({ prefix: 'w/', fromIndex: watchFrom });
  await collect(resumed, events, () => events.length >= 5, 10_000);
  resumed.close();
  t.true(events[0]!.index >= watchFrom);
  for (let i = 1; i < events.length; i++) t.true(events[i]!.index > events[i - 1]!.index);
  // The node killed above restarted: its history begins at its restart.
  const restarted = cluster.nodes.get(killedInWatch)!;
  const pinned = await connect({ endpoints: [restarted.clientAddress], discover: false });
  t.teardown(() => pinned.close());
  const err = await t.throwsAsync(
    (async () => {
      for await (const _ of pinned.watch({ prefix: 'w/', fromIndex: watchFrom })) break;
    })(),
  );
  t.true(err instanceof WatchCompactedError, String(err));
  t.true((err as WatchCompactedError).oldestIndex > watchFrom);
  t.regex(err!.message, /keeps watch history from index \d+/);
});

test.serial('leases: keys expire on every node once keep-alives stop, not before the TTL; a kept-alive lease lives on', async (t) => {
  const ttl = 1_500;
  const lease = await kv.grantLease(ttl);
  await kv.put('l/a', '1', { lease });
  await kv.put('l/b', '2', { lease });
  t.is((await kv.get('l/a'))?.lease, lease);
  // Kept alive in the background for twice its TTL: still there.
  const handle = kv.keepAlive(lease, ttl);
  await sleep(2 * ttl);
  t.truthy(await kv.get('l/a'));
  handle.stop();
  await handle.done;
  const sent = Date.now();
  await kv.keepAliveOnce(lease); // the last renewal: the lease ends no earlier than `sent` + TTL
  await sleep(ttl - 300);
  for (const h of cluster.live()) t.truthy((await h.probe.get('l/a', { consistency: 'follower' })).value !== undefined, `l/a on ${h.id} before TTL`);
  t.truthy(await kv.get('l/b'));
  await eventually(async () => (await kv.get('l/a')) === undefined && (await kv.get('l/b')) === undefined, 5_000, 'lease expiry');
  t.true(Date.now() - sent >= ttl, 'not before the TTL');
  const goneAt = (await kv.status()).find((s) => s.status?.role === 'leader')!.status!.appliedIndex;
  for (const h of cluster.live()) {
    const r = await h.probe.get('l/b', { consistency: 'follower', minIndex: goneAt });
    t.is(r.value, undefined, `l/b gone on ${h.id}`);
  }
  await t.throwsAsync(kv.keepAliveOnce(lease), { name: 'LeaseNotFoundError' });
  await t.throwsAsync(kv.put('l/c', '3', { lease }), { name: 'LeaseNotFoundError' });
  t.is(await kv.get('l/c'), undefined, 'a refused put changes nothing');
  // Revoke deletes at once.
  const other = await kv.grantLease(60_000);
  await kv.put('l/r', 'x', { lease: other });
  await kv.revokeLease(other);
  t.is(await kv.get('l/r'), undefined);
});

test.serial('a lease is not expired early by a leader SIGKILL: the new leader gives it its full TTL again', async (t) => {
  const ttl = 2_000;
  const lease = await kv.grantLease(ttl);
  await kv.put('lk/a', '1', { lease });
  const renewed = Date.now();
  await kv.keepAliveOnce(lease);
  await sleep(ttl - 800);
  const leader = await cluster.waitForLeader();
  await cluster.kill(leader.id);
  await cluster.waitForLeader(15_000, [leader.id]);
  const elected = Date.now();
  // Past the old leader's deadline, but within the new leader's full TTL: still there.
  await sleep(Math.max(0, renewed + ttl + 300 - Date.now()));
  if (Date.now() < elected + ttl - 200) t.truthy(await kv.get('lk/a'), 'not expired early');
  await eventually(async () => (await kv.get('lk/a')) === undefined, 8_000, 'expiry under the new leader');
  t.true(Date.now() - elected >= ttl - 100, 'the new leader waited a full TTL');
  await restartDead();
});

const HOLDER = `
const { connect } = await import(process.env.QKV_SDK);
const kv = await connect({ endpoints: process.env.QKV_ENDPOINTS.split(','), deadlineMs: 8000 });
const lock = await kv.lock('locks/m', { ttlMs: Number(process.env.QKV_TTL) });
console.log('HELD ' + lock.fencingIndex);
setInterval(() => {}, 1000);
`;

test.serial('a lock is mutually exclusive; after its holder is SIGKILLed the next waiter gets it only once the lease expired', async (t) => {
  const ttl = 1_500;
  const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOLDER], {
    env: {
      ...process.env,
      QKV_SDK: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
      QKV_ENDPOINTS: cluster
        .live()
        .map((h) => h.clientAddress)
        .join(','),
      QKV_TTL: String(ttl),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => holder.kill('SIGKILL'));
  const holderFence = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the holder did not take the lock')), 20_000);
    holder.stdout!.on('data', (b: Buffer) => {
      const m = /HELD (\d+)/.exec(b.toString());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  let acquiredAt = 0;
  const waiting = kv.lock('locks/m', { ttlMs: ttl }).then((l) => {
    acquiredAt = Date.now();
    return l;
  });
  await sleep(2 * ttl);
  t.is(acquiredAt, 0, 'the waiter does not get the lock while the holder lives');
  const killedAt = Date.now();
  holder.kill('SIGKILL');
  const mine = await waiting;
  // The holder renewed at most ttl/3 before it died.
  t.true(acquiredAt - killedAt >= (2 * ttl) / 3 - 100, `acquired ${acquiredAt - killedAt} ms after the kill`);
  t.true(mine.fencingIndex > holderFence, 'a later holder has a larger fencing index');
  t.true(await mine.isHeld());
  // A second waiter queues behind; release hands over.
  let second = 0;
  const next = kv.lock('locks/m', { ttlMs: ttl }).then((l) => {
    second = Date.now();
    return l;
  });
  await sleep(300);
  t.is(second, 0);
  await mine.release();
  const l2 = await next;
  t.true(l2.fencingIndex > mine.fencingIndex);
  t.false(await mine.isHeld());
  await l2.release();
});

test.serial('an election: campaign elects one candidate at a time, observe follows, resign hands over', async (t) => {
  const seen: (string | undefined)[] = [];
  const observer = kv.observe('elect/e');
  const a = await kv.campaign('elect/e', 'alpha', { ttlMs: 2_000 });
  const first = await observer.next();
  seen.push(first.value?.text());
  let bElected = false;
  const b = kv.campaign('elect/e', 'beta', { ttlMs: 2_000 }).then((c) => {
    bElected = true;
    return c;
  });
  await sleep(300);
  t.false(bElected);
  await a.release();
  const cb = await b;
  for (;;) {
    const r = await observer.next();
    seen.push(r.value?.text());
    if (r.value?.text() === 'beta') break;
  }
  await observer.return(undefined);
  t.is(seen[0], 'alpha');
  t.is(seen[seen.length - 1], 'beta');
  await cb.release();
});
