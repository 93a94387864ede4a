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

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, QUORUMKV_ENDPOINTS: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
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
  t.regex(missingArg.stderr, /get takes KEY/);
  t.is(badOption.code, 2);
  t.regex(badOption.stderr, /put does not take --consistency/);
  t.is(badConsistency.code, 2);
  t.regex(json(badConsistency).error.message, /--consistency must be one of/);
  t.is(unknownNode.code, 2);
  t.regex(unknownNode.stderr, /cluster\.example\.json: --node: unknown node id n9/);
});

test('an unreachable cluster exits 3', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const run = await cli('get', 'k', '--endpoints', `127.0.0.1:${port}`, '--timeout', '300', '--json');
  t.is(run.code, 3);
  t.is(json(run).error.name, 'ClusterUnavailableError');
});
