// The CLI as a user runs it (`node --import tsx src/process/main.ts ...`) against a KV server backed by
// the fake backend: --json output and exit codes 0 (ok), 1 (not found), 2 (usage), 3 (unavailable).
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = path.join(ROOT, 'src/process/main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cliWithInput(input: string | undefined, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, QUORUMKV_ENDPOINTS: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin!.end(input ?? '');
  });
}

function cli(...args: string[]): Promise<Run> {
  return cliWithInput(undefined, ...args);
}

function json(run: Run): any {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}): ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

let node: FakeNode;
let dir: string;

test.before(async () => {
  node = await startFakeNode('n1');
  dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-cli-'));
});

test.after.always(async () => {
  await node?.server.close(100);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('put then get round-trips with --json and exit 0', async (t) => {
  const put = await cli('put', 'greeting', 'hello world', '--endpoints', node.address, '--json');
  t.is(put.code, 0, put.stderr);
  const p = json(put);
  t.is(p.ok, true);
  t.is(p.durability, 'sync');
  t.true(p.index > 0);
  t.is(node.backend.data.get(Buffer.from('greeting').toString('hex'))?.value.toString(), 'hello world');

  const get = await cli('get', 'greeting', '--endpoints', node.address, '--json');
  t.is(get.code, 0, get.stderr);
  t.like(json(get), { found: true, key: 'greeting', value: 'hello world', version: 1, servedBy: 'n1' });
});

test.serial('get of a missing key exits 1', async (t) => {
  const run = await cli('get', 'absent', '--endpoints', node.address, '--json');
  t.is(run.code, 1);
  t.like(json(run), { found: false, key: 'absent' });
});

test.serial('scan lists a prefix with --limit; del removes a key; put --async is acknowledged', async (t) => {
  await cli('put', 'scan:b', '2', '--endpoints', node.address);
  await cli('put', 'scan:a', '1', '--endpoints', node.address, '--async');
  const scan = await cli('scan', 'scan:', '--limit', '1', '--endpoints', node.address, '--json');
  t.is(scan.code, 0, scan.stderr);
  const s = json(scan);
  t.deepEqual(
    s.items.map((i: any) => [i.key, i.value]),
    [['scan:a', '1']],
  );
  t.true(s.more);
  const del = await cli('del', 'scan:a', '--endpoints', node.address, '--json');
  t.is(del.code, 0);
  t.is(json(del).deleted, 1);
  t.false(node.backend.data.has(Buffer.from('scan:a').toString('hex')));
  t.true(node.backend.callsOf('write').some((c) => c.write!.durability === 'async'));
});

test.serial('--config takes the endpoints from a cluster file; status prints a table', async (t) => {
  const file = path.join(dir, 'cluster.json');
  await writeFile(
    file,
    JSON.stringify({
      cluster: 'cli-test',
      nodes: [{ id: 'n1', raftAddress: '127.0.0.1:1', clientAddress: node.address, dataDir: 'n1' }],
    }),
  );
  const status = await cli('status', '--config', file);
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /\| ENDPOINT\s+\| ID\s+\| ROLE\s+\| TERM\s+\| COMMIT\s+\| APPLIED\s+\| LAG\s+\|/);
  t.regex(status.stdout, new RegExp(`\\| ${node.address.replace(/\./g, '\\.')}\\s+\\| n1\\s+\\| leader\\s+\\|`));
  const js = await cli('status', '--config', file, '--json');
  t.like(json(js)[0], { endpoint: node.address, id: 'n1', role: 'leader', lag: 0 });
});

test('usage errors exit 2', async (t) => {
  const [missingArg, badOption, badConsistency, unknownNode] = await Promise.all([
    cli('get', '--endpoints', '127.0.0.1:1'),
    cli('put', 'k', 'v', '--consistency', 'lease', '--endpoints', '127.0.0.1:1'),
    cli('get', 'k', '--consistency', 'eventual', '--endpoints', '127.0.0.1:1', '--json'),
    cli('serve', '--config', path.join(ROOT, 'cluster.example.json'), '--node', 'n9'),
  ]);
  t.is(missingArg.code, 2);
  t.regex(missingArg.stderr, /^error: missing required argument 'key'\nRun 'quorumkv get --help' for usage\.\n$/);
  t.is(badOption.code, 2);
  t.regex(badOption.stderr, /unknown option '--consistency'/);
  t.is(badOption.stderr.trim().split('\n').length, 2, 'one line and a pointer to --help, not the whole usage');
  t.is(badConsistency.code, 2);
  t.regex(json(badConsistency).error.message, /argument 'eventual' is invalid\. Allowed choices are linearizable, lease, follower/);
  t.is(badConsistency.stdout.trim().split('\n').length, 1);
  const badLogFormat = await cli('serve', '--config', path.join(ROOT, 'cluster.example.json'), '--node', 'n1', '--log-format', 'xml');
  t.is(badLogFormat.code, 2);
  t.regex(badLogFormat.stderr, /--log-format <format>' argument 'xml' is invalid\. Allowed choices are json, pretty/);
  t.is(unknownNode.code, 2);
  t.regex(unknownNode.stderr, /cluster\.example\.json: --node: unknown node id n9/);
});

test('an unreachable cluster exits 3', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const [run, members, status, text] = await Promise.all([
    cli('get', 'k', '--endpoints', `127.0.0.1:${port}`, '--timeout', '300', '--json'),
    cli('member', 'list', '--endpoints', `127.0.0.1:${port}`, '--timeout', '300', '--json'),
    cli('status', '--endpoints', `127.0.0.1:${port}`, '--timeout', '300'),
    cli('get', 'k', '--endpoints', `127.0.0.1:${port}`, '--timeout', '300'),
  ]);
  t.is(run.code, 3);
  t.is(json(run).error.name, 'ClusterUnavailableError');
  t.is(members.code, 3, 'member list with the cluster down is "unavailable" too');
  t.is(status.code, 3);
  t.regex(status.stdout, /unreachable .*\| connection refused/);
  t.is(text.code, 3);
  t.regex(text.stderr, /^error: no quorumkv node answered within 300 ms/);
  for (const r of [run, members, status, text]) {
    t.notRegex(r.stdout + r.stderr, /Resolution note|No connection established|a write may still be applied/);
  }
});

test('per-command help, help COMMAND, --version, and a suggestion for a typo', async (t) => {
  const [putHelp, helpMember, version, typo, typoJson, negative] = await Promise.all([
    cli('put', '--help'),
    cli('help', 'member'),
    cli('--version'),
    cli('pt', 'k', 'v'),
    cli('pt', 'k', 'v', '--json'),
    cli('get', 'k', '--timeout', '-5', '--endpoints', '127.0.0.1:1'),
  ]);
  t.is(putHelp.code, 0);
  t.regex(putHelp.stdout, /^Usage: quorumkv put \[options\] <key> \[value\]/);
  t.regex(putHelp.stdout, /--async/);
  t.notRegex(putHelp.stdout, /transfer-leader/, 'only put, not the global command list');
  t.is(helpMember.code, 0);
  t.regex(helpMember.stdout, /^Usage: quorumkv member/);
  t.regex(helpMember.stdout, /list\s+members as the leader sees them/);
  t.is(version.code, 0);
  t.regex(version.stdout, /^\d+\.\d+\.\d+/);
  t.is(typo.code, 2);
  t.regex(typo.stderr, /unknown command 'pt' \(Did you mean put\?\)/);
  t.is(typoJson.code, 2);
  t.like(json(typoJson).error, { name: 'UsageError', exitCode: 2 });
  t.is(negative.code, 2);
  t.regex(negative.stderr, /--timeout must be a whole number >= 1, got "-5"/);
  const group = await cli('--endpoints', '127.0.0.1:1', 'member');
  t.is(group.code, 2);
  t.is(group.stderr, "error: member needs a subcommand: add, promote, remove, list\nRun 'quorumkv member --help' for usage.\n");
  t.notRegex(negative.stderr, /ambiguous/);
});

test.serial('put reads the value from stdin; del --prefix and del --to delete ranges', async (t) => {
  const put = await cliWithInput('line one\nline two\n', 'put', 'piped', '--endpoints', node.address, '--json');
  t.is(put.code, 0, put.stderr);
  t.is(node.backend.data.get(Buffer.from('piped').toString('hex'))?.value.toString(), 'line one\nline two\n');
  for (const k of ['r/a', 'r/b', 'r/c', 's/a']) t.is((await cli('put', k, 'x', '--endpoints', node.address)).code, 0);
  const range = await cli('del', 'r/a', '--to', 'r/c', '--endpoints', node.address, '--json');
  t.is(range.code, 0, range.stderr);
  t.is(json(range).deleted, 2);
  t.true(node.backend.data.has(Buffer.from('r/c').toString('hex')));
  const prefix = await cli('del', 'r/', '--prefix', '--endpoints', node.address);
  t.is(prefix.code, 0, prefix.stderr);
  t.is(prefix.stdout, '1\n');
  t.true(node.backend.data.has(Buffer.from('s/a').toString('hex')), 'other prefixes stay');
});

test.serial('scan --from continues the page that said more keys follow', async (t) => {
  for (const k of ['p/1', 'p/2', 'p/3']) await cli('put', k, k, '--endpoints', node.address);
  const first = await cli('scan', 'p/', '--limit', '2', '--endpoints', node.address);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout, 'p/1\tp/1\np/2\tp/2\n');
  const from = /continue with --from (".*")/.exec(first.stderr);
  t.truthy(from, first.stderr);
  const next = await cli('scan', 'p/', '--limit', '2', '--from', JSON.parse(from![1]!), '--endpoints', node.address, '--json');
  t.is(next.code, 0, next.stderr);
  t.deepEqual(
    json(next).items.map((i: any) => i.key),
    ['p/3'],
  );
  t.false(json(next).more);
});

test.serial('cas swaps only when the compare holds (exit 5 otherwise); txn reads compares and ops from stdin', async (t) => {
  await cli('put', 'lock', 'free', '--endpoints', node.address);
  const won = await cli('cas', 'lock', 'taken', '--prev', 'free', '--endpoints', node.address, '--json');
  t.is(won.code, 0, won.stderr);
  t.true(json(won).succeeded);
  const lost = await cli('cas', 'lock', 'again', '--prev', 'free', '--endpoints', node.address);
  t.is(lost.code, 5);
  t.regex(lost.stdout, /FAILED/);
  t.is(node.backend.data.get(Buffer.from('lock').toString('hex'))?.value.toString(), 'taken');
  const both = await cli('cas', 'lock', 'x', '--endpoints', node.address);
  t.is(both.code, 2);
  t.regex(both.stderr, /--prev VALUE .* or --absent/);

  const txn = await cliWithInput('value("lock") = "taken"\n\nput owner "me too"\ndel lock\n\nput owner nobody\n', 'txn', '--endpoints', node.address);
  t.is(txn.code, 0, txn.stderr);
  t.is(txn.stdout, 'SUCCESS\nOK\n1\n');
  t.is(node.backend.data.get(Buffer.from('owner').toString('hex'))?.value.toString(), 'me too');
  const failed = await cliWithInput('version("lock") > 0\n\nput owner x\n\nput owner nobody\n', 'txn', '--endpoints', node.address, '--json');
  t.is(failed.code, 5);
  t.false(json(failed).succeeded);
  t.is(node.backend.data.get(Buffer.from('owner').toString('hex'))?.value.toString(), 'nobody');
  const writesBefore = node.backend.callsOf('write').length;
  const bad = await cliWithInput('value("k") > "v"\n\nput k v\n', 'txn', '--endpoints', node.address);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /txn line 1: value\(\) compares with = or != only/);
  t.is(node.backend.callsOf('write').length, writesBefore, 'a bad txn sends nothing');
});

test.serial('member list shows the peer (raft) address; endpoint health reports the node', async (t) => {
  const members = await cli('member', 'list', '--endpoints', node.address);
  t.is(members.code, 0, members.stderr);
  t.regex(members.stdout, /\| ID\s+\| ROLE\s+\| PEER \(RAFT\) ADDRESS\s+\| CLIENT ADDRESS\s+\|/);
  t.regex(members.stdout, /\| n1\s+\| voter\s+\| 127\.0\.0\.1:1\s+\|/);
  const health = await cli('endpoint', 'health', '--endpoints', node.address, '-w', 'json');
  t.is(health.code, 0, health.stderr);
  t.like(json(health)[0], { endpoint: node.address, health: true, id: 'n1' });
});

test.serial('a read that times out says so without talking about writes; a write that times out says it may be applied', async (t) => {
  node.backend.hang.add('get');
  node.backend.hang.add('write');
  t.teardown(() => {
    node.backend.hang.delete('get');
    node.backend.hang.delete('write');
  });
  const [read, write] = await Promise.all([
    cli('get', 'k', '--endpoints', node.address, '--timeout', '400'),
    cli('put', 'k', 'v', '--endpoints', node.address, '--timeout', '400'),
  ]);
  t.is(read.code, 3);
  t.regex(read.stderr, /^error: no answer within 400 ms/);
  t.notRegex(read.stderr, /write|clientId|seq/);
  t.is(write.code, 3);
  t.regex(write.stderr, /the write did not complete within 400 ms; it may still be applied/);
});
