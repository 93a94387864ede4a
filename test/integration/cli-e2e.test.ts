// The `quorumkv` CLI as a user runs it (a separate `node --import tsx src/process/main.ts` process)
// against one real 3-process cluster: put / get / del / scan / status in text and --json, async
// puts, follower reads, and the exit codes scripts rely on (0 ok, 1 not found, 2 usage, 3 unavailable: also status with a node down).
import test from 'ava';
import net from 'node:net';
import { type CliRun, ProcessCluster, runQuorumkv } from './harness.js';
import type { NodeHandle } from './harness.js';

type Run = CliRun;

let cluster: ProcessCluster;
let endpoints: string;

function cli(...args: string[]): Promise<Run> {
  return runQuorumkv(args);
}

/** The CLI against the whole cluster. */
function kv(...args: string[]): Promise<Run> {
  return cli(...args, '--endpoints', endpoints);
}

function json(run: Run): any {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}): ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
  await cluster.waitForLeader();
  endpoints = [...cluster.nodes.values()].map((h) => h.clientAddress).join(',');
});

test.after.always(async () => {
  await cluster?.close();
});

test.serial('put and get, as text and --json, exit 0; a linearizable get is served by the leader', async (t) => {
  const leader = await cluster.waitForLeader();
  const put = await kv('put', 'greeting', 'hello world');
  t.is(put.code, 0, put.stderr);
  t.regex(put.stdout, /^OK term=\d+ index=\d+\n$/);

  const [text, js] = await Promise.all([kv('get', 'greeting'), kv('get', 'greeting', '--json')]);
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, 'hello world\n');
  t.is(js.code, 0, js.stderr);
  const g = json(js);
  t.like(g, { found: true, key: 'greeting', value: 'hello world', version: 1, servedBy: leader.id });
  const putIndex = Number(/index=(\d+)/.exec(put.stdout)![1]);
  t.true(g.appliedIndex >= putIndex);
});

test.serial('put --async is acknowledged before apply; get --consistency follower --min-index on a follower sees it', async (t) => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.live().find((h: NodeHandle) => h.id !== leader.id)!;
  const put = await kv('put', 'async-key', 'later', '--async', '--json');
  t.is(put.code, 0, put.stderr);
  const p = json(put);
  t.like(p, { ok: true, durability: 'async', applied: false });
  t.true(p.index > 0);

  // Only the follower is given: the read cannot have been served anywhere else.
  const get = await cli('get', 'async-key', '--consistency', 'follower', '--min-index', String(p.index), '--endpoints', follower.clientAddress, '--json');
  t.is(get.code, 0, get.stderr);
  t.like(json(get), { found: true, value: 'later', servedBy: follower.id });
  t.true(json(get).appliedIndex >= p.index);
});

test.serial('del removes a key (then get exits 1); scan lists a prefix with --limit, in order', async (t) => {
  await Promise.all(['fruit/apple', 'fruit/banana', 'fruit/cherry', 'fruits', 'vegetable/leek'].map((k) => kv('put', k, `v:${k}`)));
  const [scanJs, scanText] = await Promise.all([kv('scan', 'fruit/', '--limit', '2', '--json'), kv('scan', 'fruit/')]);
  t.is(scanJs.code, 0, scanJs.stderr);
  const s = json(scanJs);
  t.deepEqual(
    s.items.map((i: any) => [i.key, i.value]),
    [
      ['fruit/apple', 'v:fruit/apple'],
      ['fruit/banana', 'v:fruit/banana'],
    ],
  );
  t.true(s.more);
  t.truthy(s.continueFromBase64);
  t.is(scanText.code, 0, scanText.stderr);
  t.is(scanText.stdout, 'fruit/apple\tv:fruit/apple\nfruit/banana\tv:fruit/banana\nfruit/cherry\tv:fruit/cherry\n');

  const del = await kv('del', 'fruit/banana', '--json');
  t.is(del.code, 0, del.stderr);
  t.like(json(del), { ok: true, deleted: 1 });
  const [gone, goneJs, again] = await Promise.all([kv('get', 'fruit/banana'), kv('get', 'fruit/banana', '--json'), kv('del', 'fruit/banana')]);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /key not found: fruit\/banana/);
  t.is(goneJs.code, 1);
  t.like(json(goneJs), { found: false, key: 'fruit/banana' });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, '0\n', 'deleting an absent key removes nothing');
  const after = json(await kv('scan', 'fruit/', '--json'));
  t.deepEqual(
    after.items.map((i: any) => i.key),
    ['fruit/apple', 'fruit/cherry'],
  );
  t.false(after.more);
});

test.serial('status: one row per node with the agreed leader, as a table and as --json', async (t) => {
  const leader = await cluster.waitForLeader();
  const [table, js] = await Promise.all([kv('status'), kv('status', '--json')]);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /\| ENDPOINT\s+\| ID\s+\| ROLE\s+\| TERM\s+\| COMMIT\s+\| APPLIED\s+\| LAG\s+\| LEADER\s+\| ERROR\s+\|/);
  for (const h of cluster.nodes.values()) {
    const role = h.id === leader.id ? 'leader' : 'follower';
    t.regex(table.stdout, new RegExp(`\\| ${h.clientAddress.replace(/\./g, '\\.')}\\s+\\| ${h.id}\\s+\\| ${role}\\s+\\|`), `${h.id} row`);
  }
  t.is(js.code, 0, js.stderr);
  const rows = json(js) as any[];
  t.is(rows.length, 3);
  t.deepEqual(rows.map((r) => r.id).sort(), ['n1', 'n2', 'n3']);
  t.deepEqual(
    rows.filter((r) => r.role === 'leader').map((r) => r.id),
    [leader.id],
  );
  for (const r of rows) {
    t.is(r.leaderId, leader.id);
    t.true(Number.isInteger(r.lag) && r.lag >= 0, `lag of ${r.id}`);
    t.true(r.appliedIndex > 0);
  }
});

test.serial('exit 2 on a bad flag or missing argument; exit 3 when the endpoints point at a closed port', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const [badFlag, missing, badValue, closed, closedText] = await Promise.all([
    kv('get', 'greeting', '--bogus'),
    kv('put'),
    kv('scan', 'fruit/', '--limit', 'lots'),
    cli('get', 'greeting', '--endpoints', `127.0.0.1:${port}`, '--timeout', '500', '--json'),
    cli('put', 'k', 'v', '--endpoints', `127.0.0.1:${port}`, '--timeout', '500'),
  ]);
  t.is(badFlag.code, 2, badFlag.stderr);
  t.regex(badFlag.stderr, /bogus/);
  t.is(missing.code, 2, missing.stderr);
  t.regex(missing.stderr, /missing required argument 'key'/);
  t.is(badValue.code, 2, badValue.stderr);
  t.regex(badValue.stderr, /--limit must be a whole number >= 1, got "lots"/);
  t.is(closed.code, 3, closed.stderr);
  t.like(json(closed).error, { name: 'ClusterUnavailableError', exitCode: 3 });
  t.is(closedText.code, 3);
  t.regex(closedText.stderr, /no quorumkv node answered/);
  // None of the failed commands wrote anything.
  t.is((await kv('get', 'k')).code, 1);
});

test.serial('with a follower SIGKILLed, status exits 3 (like etcdctl) and marks it unreachable; writes and reads go on', async (t) => {
  const leader = await cluster.waitForLeader();
  const victim = cluster.live().find((h) => h.id !== leader.id)!;
  await cluster.kill(victim.id);
  const status = await kv('status', '--json', '--timeout', '1500');
  t.is(status.code, 3, status.stderr);
  const rows = json(status) as any[];
  const dead = rows.find((r) => r.endpoint === victim.clientAddress);
  t.truthy(dead?.error, 'the killed node is reported with an error');
  t.is(rows.filter((r) => r.role === 'leader').length, 1);
  t.is((await kv('put', 'degraded', 'still-works')).code, 0);
  const get = await kv('get', 'degraded', '--json');
  t.is(get.code, 0, get.stderr);
  // Served by whichever survivor leads now (two nodes on a loaded box may have re-elected).
  t.like(json(get), { value: 'still-works' });
  t.not(json(get).servedBy, victim.id);
});
