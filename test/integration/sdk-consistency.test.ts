// The SDK against one real 3-process cluster: what each consistency mode promises (latest acked
// value, who served it, at which applied index), read-your-writes through follower reads, maxLagMs
// on a node that is alive but cut off from every leader, scans with continuation, CAS and delete.
import test from 'ava';
import { connect, StaleReadError } from '../../src/index.js';
import type { KvClient } from '../../src/index.js';
import { eventually, ProcessCluster, sleep } from './harness.js';
import type { NodeHandle } from './harness.js';

let cluster: ProcessCluster;
/** Routed by the SDK over every node. */
let kv: KvClient;
/** One client per node that can only ever talk to that node: proves which node answered. */
const pinned = new Map<string, KvClient>();

function pinnedTo(h: NodeHandle): KvClient {
  const c = pinned.get(h.id);
  if (!c) throw new Error(`no pinned client for ${h.id}`);
  return c;
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
  await cluster.waitForLeader();
  const nodes = [...cluster.nodes.values()];
  kv = await connect({ endpoints: nodes.map((h) => h.clientAddress), deadlineMs: 8_000 });
  for (const h of nodes) pinned.set(h.id, await connect({ endpoints: [h.clientAddress], discover: false, deadlineMs: 8_000 }));
});

test.after.always(async () => {
  await kv?.close();
  for (const c of pinned.values()) await c.close();
  await cluster?.close();
});

test.serial('every consistency mode returns the latest acknowledged value and says which node served it at which index', async (t) => {
  const leader = await cluster.waitForLeader();
  // A separate writer: reads must see other clients' acked writes, not just the reader's own.
  const writer = await connect({ endpoints: [...cluster.nodes.values()].map((h) => h.clientAddress) });
  t.teardown(() => writer.close());
  let last = await writer.put('mode', 'v1');
  for (const v of ['v2', 'v3']) last = await writer.put('mode', v);
  t.true(last.applied);

  for (const consistency of ['linearizable', 'lease'] as const) {
    const d = await kv.getDetail('mode', { consistency });
    t.is(d.item?.text(), 'v3', consistency);
    t.is(d.servedBy, leader.id, `${consistency} reads are served by the leader`);
    t.true(d.appliedIndex >= last.index, `${consistency}: applied ${d.appliedIndex} >= acked ${last.index}`);
    t.is(d.item?.servedBy, leader.id);
    t.is(d.item?.version, 3);
  }

  // Follower reads on each node, with the ack's index as the floor.
  for (const h of cluster.live()) {
    const d = await pinnedTo(h).getDetail('mode', { consistency: 'follower', minIndex: last.index });
    t.is(d.item?.text(), 'v3', `follower read on ${h.id}`);
    t.is(d.servedBy, h.id);
    t.true(d.appliedIndex >= last.index);
  }

  // Through the routed client, follower reads rotate over the nodes instead of piling on one.
  const servedBy = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const d = await kv.getDetail('mode', { consistency: 'follower', minIndex: last.index });
    t.is(d.item?.text(), 'v3');
    servedBy.add(d.servedBy);
  }
  t.is(servedBy.size, 3, `follower reads were served by ${[...servedBy].join(', ')}`);
});

test.serial('a follower read with minIndex = the receipt of an async put never returns an older value', async (t) => {
  const nodes = cluster.live();
  for (let i = 0; i < 50; i++) {
    const receipt = await kv.put('ryw', `v${i}`, { durability: 'async' });
    t.false(receipt.applied, 'an async ack comes before apply');
    const h = nodes[i % nodes.length]!;
    const d = await pinnedTo(h).getDetail('ryw', { consistency: 'follower', minIndex: receipt.index });
    t.is(d.item?.text(), `v${i}`, `iteration ${i} on ${h.id}`);
    t.is(d.servedBy, h.id);
    t.true(d.appliedIndex >= receipt.index);
  }
});

test.serial('maxLagMs: a live node cut off from every leader refuses the read with StaleReadError; without the bound it still answers', async (t) => {
  const leader = await cluster.waitForLeader();
  const lagging = cluster.live().find((h) => h.id !== leader.id)!;
  const others = cluster.live().filter((h) => h !== lagging);
  const acked = await kv.put('lag', 'before-cut');
  const client = pinnedTo(lagging);

  // Healthy: heartbeats keep the follower fresh, so a generous bound is met.
  const fresh = await client.getDetail('lag', { consistency: 'follower', minIndex: acked.index, maxLagMs: 2_000 });
  t.is(fresh.item?.text(), 'before-cut');

  // Stopping both other nodes leaves `lagging` running but with no leader to hear from (a lone
  // node cannot elect itself), so its lag grows with wall time and nothing can refresh it.
  for (const h of others) await cluster.signal(h.id, 'SIGSTOP');
  try {
    await sleep(800);
    const err = await t.throwsAsync(client.get('lag', { consistency: 'follower', maxLagMs: 300 }), { instanceOf: StaleReadError });
    t.is(err?.nodeId, lagging.id);
    t.is(err?.maxLagMs, 300);
    t.true((err?.lagMs ?? 0) > 300, `lagMs ${err?.lagMs}`);
    // The node is alive: an unbounded follower read (or a loose bound) is served from its state.
    const stale = await client.getDetail('lag', { consistency: 'follower' });
    t.is(stale.item?.text(), 'before-cut');
    t.is(stale.servedBy, lagging.id);
    t.is((await client.get('lag', { consistency: 'follower', maxLagMs: 600_000 }))?.text(), 'before-cut');
  } finally {
    for (const h of others) await cluster.signal(h.id, 'SIGCONT');
  }

  await cluster.waitForLeader();
  const after = await kv.put('lag', 'after-cut');
  const back = await eventually(
    () => client.getDetail('lag', { consistency: 'follower', minIndex: after.index, maxLagMs: 300, deadlineMs: 2_000 }),
    15_000,
    `${lagging.id} to hear from a leader again`,
  );
  t.is(back.item?.text(), 'after-cut');
});

test.serial('scan: a prefix with a limit pages through every key once, in order, with continuation', async (t) => {
  const keys = Array.from({ length: 25 }, (_, i) => `scan/${String(i).padStart(2, '0')}`);
  // Neighbours that sort right before or after the prefix range must not leak in.
  const outside = ['scan', 'scan.', 'scan0', 'scam/zz', 'scao'];
  await Promise.all([...keys, ...outside].map((k) => kv.put(k, `val:${k}`)));

  const seen: string[] = [];
  const pageSizes: number[] = [];
  let continueFrom: Uint8Array | undefined;
  for (let pages = 0; pages < 10; pages++) {
    const page = await kv.scan({ prefix: 'scan/', limit: 10, ...(continueFrom ? { continueFrom } : {}) });
    pageSizes.push(page.items.length);
    for (const item of page.items) {
      seen.push(item.keyText());
      t.is(item.text(), `val:${item.keyText()}`);
    }
    if (!page.more) {
      t.is(page.continueFrom, undefined);
      break;
    }
    t.truthy(page.continueFrom, 'a page with more keys carries a continuation');
    continueFrom = page.continueFrom;
  }
  t.deepEqual(pageSizes, [10, 10, 5]);
  t.deepEqual(seen, keys);

  const all: string[] = [];
  for await (const item of kv.scanAll({ prefix: 'scan/', limit: 7, consistency: 'lease' })) all.push(item.keyText());
  t.deepEqual(all, keys);

  const range = await kv.scan({ start: 'scan/05', end: 'scan/08' });
  t.deepEqual(
    range.items.map((i) => i.keyText()),
    ['scan/05', 'scan/06', 'scan/07'],
  );

  // A follower scan with a read-your-writes floor sees the same keys.
  const last = await kv.put('scan/99', 'val:scan/99');
  const leader = await cluster.waitForLeader();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  const fpage = await pinnedTo(follower).scan({ prefix: 'scan/', consistency: 'follower', minIndex: last.index });
  t.is(fpage.servedBy, follower.id);
  t.deepEqual(
    fpage.items.map((i) => i.keyText()),
    [...keys, 'scan/99'],
  );
});

test.serial('cas: succeeds only when the expected value (or absence) matches; a failed cas changes nothing', async (t) => {
  t.true((await kv.cas('cas', null, 'a')).succeeded, 'absent -> a');
  t.false((await kv.cas('cas', null, 'b')).succeeded, 'not absent any more');
  t.is((await kv.get('cas'))?.text(), 'a');
  t.true((await kv.cas('cas', 'a', 'b')).succeeded, 'a -> b');
  const failed = await kv.cas('cas', 'a', 'c');
  t.false(failed.succeeded, 'stale expected value');
  t.true(failed.applied, 'a failed cas is still a decided (applied) command');
  const item = await kv.get('cas');
  t.is(item?.text(), 'b');
  t.is(item?.version, 2, 'the failed attempts did not write');
  t.true((await kv.cas('cas', 'b', null)).succeeded, 'b -> deleted');
  t.is(await kv.get('cas'), undefined);
});

test.serial('delete removes a key on every node; deleting it again removes nothing', async (t) => {
  await kv.put('del', 'x');
  const res = await kv.delete('del');
  t.is(res.deleted, 1);
  const d = await kv.getDetail('del');
  t.is(d.item, undefined);
  t.true(d.appliedIndex >= res.index);
  for (const h of cluster.live()) {
    const f = await pinnedTo(h).getDetail('del', { consistency: 'follower', minIndex: res.index });
    t.is(f.item, undefined, `deleted on ${h.id}`);
    t.is(f.servedBy, h.id);
  }
  t.is((await kv.delete('del')).deleted, 0);
});
