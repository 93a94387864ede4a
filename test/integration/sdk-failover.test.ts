// Failover under load through the SDK, against one real 3-process cluster: concurrent clients keep
// writing while the leader is SIGKILLed. Every write either succeeds (exactly once) or fails with a
// typed error whose outcome is treated as unknown; afterwards no acked write is missing and nothing
// was applied twice. Async receipts issued around the kill resolve committed or lost, and what is
// readable matches.
import test from 'ava';
import { ClusterUnavailableError, connect, DeadlineExceededError, LostWriteError, NotLeaderError } from '../../src/index.js';
import type { KvClient, WriteReceipt } from '../../src/index.js';
import { ProcessCluster, sleep } from './harness.js';

const WORKERS = 8;
/** Errors a write may fail with while the leader is being replaced; anything else is a bug. */
const TYPED = [NotLeaderError, DeadlineExceededError, ClusterUnavailableError];

let cluster: ProcessCluster;
const clients: KvClient[] = [];

function endpoints(): string[] {
  return [...cluster.nodes.values()].map((h) => h.clientAddress);
}

async function client(options: { clientId?: string; deadlineMs?: number } = {}): Promise<KvClient> {
  const c = await connect({ endpoints: endpoints(), deadlineMs: options.deadlineMs ?? 4_000, ...(options.clientId ? { clientId: options.clientId } : {}) });
  clients.push(c);
  return c;
}

function isTyped(err: unknown): boolean {
  return TYPED.some((cls) => err instanceof cls);
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
  await cluster.waitForLeader();
});

test.after.always(async () => {
  for (const c of clients) await c.close();
  await cluster?.close();
});

interface WorkerLog {
  /** CAS increments acknowledged as succeeded. */
  casAcked: number;
  /** CAS that failed with an error: applied or not, unknown. */
  casUnknown: number;
  /** CAS that was decided but found the counter moved (only possible after an unknown one). */
  casMismatch: number;
  ackedKeys: Set<string>;
  unknownKeys: Set<string>;
  duplicates: number;
  /** Acks completed after the new leader was known: the SDK re-routed. */
  ackedAfterFailover: number;
  untyped: string[];
}

async function worker(kv: KvClient, id: number, running: () => boolean, failedOver: () => boolean): Promise<WorkerLog> {
  const log: WorkerLog = {
    casAcked: 0,
    casUnknown: 0,
    casMismatch: 0,
    ackedKeys: new Set(),
    unknownKeys: new Set(),
    duplicates: 0,
    ackedAfterFailover: 0,
    untyped: [],
  };
  const counter = `fo/ctr/${id}`;
  const fail = async (err: unknown): Promise<void> => {
    if (!isTyped(err)) log.untyped.push(describe(err));
    await sleep(20); // the SDK already retried until its deadline; don't spin on a fast failure
  };
  for (let seq = 0; running(); seq++) {
    // Read-modify-CAS on this worker's own counter.
    let current: string | undefined;
    try {
      current = (await kv.get(counter))?.text();
    } catch (err) {
      await fail(err);
      continue;
    }
    const v = current === undefined ? 0 : Number(current);
    try {
      const res = await kv.cas(counter, current ?? null, String(v + 1));
      if (res.duplicate) log.duplicates++;
      if (res.succeeded) {
        log.casAcked++;
        if (failedOver()) log.ackedAfterFailover++;
      } else {
        log.casMismatch++;
      }
    } catch (err) {
      log.casUnknown++;
      await fail(err);
    }
    // A blind put to a key of its own: a second application would show as version 2.
    const key = `fo/u/${id}/${seq}`;
    try {
      const res = await kv.put(key, `w${id}s${seq}`);
      if (res.duplicate) log.duplicates++;
      log.ackedKeys.add(key);
      if (failedOver()) log.ackedAfterFailover++;
    } catch (err) {
      log.unknownKeys.add(key);
      await fail(err);
    }
  }
  return log;
}

test.serial('SIGKILL of the leader under 8 writing clients: acked writes survive, nothing is applied twice, failures are typed', async (t) => {
  const old = await cluster.waitForLeader();
  const kvs = await Promise.all(Array.from({ length: WORKERS }, (_, i) => client({ clientId: `fo-worker-${i}` })));
  let running = true;
  let failedOver = false;
  const logs = Promise.all(
    kvs.map((kv, i) =>
      worker(
        kv,
        i,
        () => running,
        () => failedOver,
      ),
    ),
  );
  try {
    await sleep(1_000);
    await cluster.kill(old.id);
    const fresh = await cluster.waitForLeader(15_000, [old.id]);
    failedOver = true;
    t.not(fresh.id, old.id);
    await sleep(1_500);
  } finally {
    running = false;
  }
  const results = await logs;

  const untyped = results.flatMap((r) => r.untyped);
  t.deepEqual(untyped, [], 'every failed write reports a typed error');
  t.true(results.reduce((n, r) => n + r.ackedAfterFailover, 0) > 0, 'writes were acked after the failover');

  const check = await client({ deadlineMs: 10_000 });
  for (const [id, r] of results.entries()) {
    const value = Number((await check.get(`fo/ctr/${id}`))?.text() ?? '0');
    t.true(value >= r.casAcked && value <= r.casAcked + r.casUnknown, `counter ${id} = ${value}, acked ${r.casAcked}, unknown ${r.casUnknown}`);
    t.true(r.casMismatch <= r.casUnknown, `worker ${id}: a cas can only find its own counter moved after an unknown outcome`);
  }

  const stored = new Map<string, number>();
  for await (const item of check.scanAll({ prefix: 'fo/u/', limit: 1000 })) stored.set(item.keyText(), item.version);
  for (const [id, r] of results.entries()) {
    for (const key of r.ackedKeys) t.is(stored.get(key), 1, `acked ${key} is present, written once (worker ${id})`);
  }
  const attempted = new Set(results.flatMap((r) => [...r.ackedKeys, ...r.unknownKeys]));
  for (const [key, version] of stored) {
    t.true(attempted.has(key), `${key} was written by a worker`);
    t.is(version, 1, `${key} applied once`);
  }
  const total = (f: (r: WorkerLog) => number): number => results.reduce((n, r) => n + f(r), 0);
  t.log(
    `acked ${total((r) => r.casAcked)} cas + ${total((r) => r.ackedKeys.size)} puts; unknown ${total((r) => r.casUnknown)} cas + ${total((r) => r.unknownKeys.size)} puts; ` +
      `deduplicated retries ${total((r) => r.duplicates)}; acked after failover ${total((r) => r.ackedAfterFailover)}`,
  );

  await cluster.restart(old.id);
});

test.serial('async receipts around a leader SIGKILL each resolve committed or lost, and the data agrees', async (t) => {
  const leader = await cluster.waitForLeader();
  t.is(cluster.live().length, 3);
  const kv = await client({ deadlineMs: 10_000 });
  const receipts = new Map<string, WriteReceipt>();
  const failedPuts: string[] = [];
  const burst = (from: number, n: number, onReceipt?: () => void): Promise<unknown> =>
    Promise.all(
      Array.from({ length: n }, async (_, j) => {
        const i = from + j;
        const key = `as/${String(i).padStart(3, '0')}`;
        try {
          const r = await kv.put(key, `a${i}`, { durability: 'async' });
          t.false(r.applied);
          receipts.set(key, { term: r.term, index: r.index });
          onReceipt?.();
        } catch (err) {
          t.true(isTyped(err), describe(err));
          failedPuts.push(key);
        }
      }),
    );
  // The first burst has likely reached the followers by the time the second is acked; the leader
  // dies at the second burst's first receipt, so the second is likely still local to it (acked
  // into its log before its fsync and before it sent anything). Both are only likely: the test
  // checks that each receipt's outcome matches the data, whatever the split.
  await burst(0, 150);
  let killed: Promise<unknown> | undefined;
  await burst(150, 150, () => {
    killed ??= cluster.kill(leader.id);
  });
  await killed;
  await cluster.waitForLeader(15_000, [leader.id]);

  // waitFor answers once the index is applied: make the log reach every receipt's index.
  const maxIndex = Math.max(...[...receipts.values()].map((r) => r.index));
  for (let last = 0, round = 0; last < maxIndex; round++) {
    const batch = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`as-fill/${round}/${i}`, 'f')));
    last = Math.max(...batch.map((w) => w.index));
  }

  const committed: string[] = [];
  const lost: string[] = [];
  await Promise.all(
    [...receipts].map(async ([key, r]) => {
      try {
        await kv.waitFor(r);
        committed.push(key);
      } catch (err) {
        if (err instanceof LostWriteError) {
          t.is(err.index, r.index);
          lost.push(key);
        } else {
          t.fail(`waitFor ${key} ${JSON.stringify(r)}: ${describe(err)}`);
        }
      }
    }),
  );
  t.is(committed.length + lost.length, receipts.size);

  const readable = new Map<string, string>();
  for await (const item of kv.scanAll({ prefix: 'as/' })) readable.set(item.keyText(), item.text());
  for (const key of committed) t.is(readable.get(key), `a${Number(key.slice(3))}`, `committed ${key} is readable`);
  for (const key of lost) t.false(readable.has(key), `lost ${key} is absent`);
  t.log(`${receipts.size} receipts: ${committed.length} committed, ${lost.length} lost; ${failedPuts.length} puts failed without a receipt`);
});
