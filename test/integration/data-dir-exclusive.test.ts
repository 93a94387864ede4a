// Exclusive data dirs and starts that fail without touching the disk, with real processes:
// - a node started on a data dir a running node holds is refused by the LOCK file (naming the dir
//   and the holder's pid) before it reads anything: every file stays byte for byte as it was
//   (before, it opened the live Raft log and only LevelDB's lock stopped it);
// - a node whose client port is taken fails before it creates its data dir (before, it left a
//   bootstrapped data dir behind);
// - a second `quorumkv cluster` with the config of a running one fails clearly instead of
//   printing a healthy table probed from the cluster it does not own.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerprint, ProcessCluster } from './harness.js';

const TSX = import.meta.resolve('tsx');
const SERVE_MAIN = fileURLToPath(new URL('../../src/process/serve-main.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/process/main.ts', import.meta.url));

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a node-side command to its exit (SIGKILL and a failure after `timeoutMs`). */
function runToExit(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', TSX, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (b) => (stdout += b));
    proc.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within ${timeoutMs} ms; stdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Holds a loopback port open until close(). */
async function holdPort(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

test.serial('a node started on a data dir a running node holds is refused, names dir and pid, and changes nothing', async (t) => {
  const cluster = await ProcessCluster.start({ size: 1 });
  try {
    const running = cluster.node('n1');
    await cluster.waitForLeader();
    await running.probe.put('k', 'v');
    // Freeze the owner so that nothing writes to its files while we compare them.
    await cluster.signal('n1', 'SIGSTOP');
    const before = await fingerprint(running.dataDir);
    const run = await runToExit([SERVE_MAIN, '--config', cluster.configPath, '--node', 'n1'], {
      QUORUMKV_RAFT_PORT: '0',
      QUORUMKV_CLIENT_PORT: '0',
      QUORUMKV_HTTP_PORT: '0',
    });
    const after = await fingerprint(running.dataDir);
    await cluster.signal('n1', 'SIGCONT');
    t.is(run.code, 1);
    t.true(run.stderr.includes(`data dir ${running.dataDir} is in use by process ${running.proc!.pid}`), run.stderr.slice(-2000));
    t.true(run.stderr.includes(path.join(running.dataDir, 'LOCK')));
    t.deepEqual(after, before, 'every file of the running node is unchanged, byte for byte');
    t.is((await running.probe.get('k')).value, 'v', 'the owner serves on');
  } finally {
    await cluster.close();
  }
});

test.serial('a node whose client port is taken fails before it creates or bootstraps its data dir', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-port-'));
  const taken = await holdPort();
  try {
    const dataDir = path.join(root, 'n1-data');
    const configPath = path.join(root, 'cluster.json');
    await writeFile(
      configPath,
      JSON.stringify({ cluster: 'port-test', nodes: [{ id: 'n1', raftAddress: '127.0.0.1:10', clientAddress: '127.0.0.1:40', dataDir }], logLevel: 'info' }),
    );
    const run = await runToExit([SERVE_MAIN, '--config', configPath, '--node', 'n1'], {
      QUORUMKV_RAFT_PORT: '0',
      QUORUMKV_CLIENT_PORT: String(taken.port),
      QUORUMKV_HTTP_PORT: '0',
    });
    t.is(run.code, 1);
    t.regex(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port}`));
    t.regex(run.stderr, /nothing was written to its data dir/);
    t.false(await exists(dataDir), 'the data dir was not created');
  } finally {
    await taken.close();
    await rm(root, { recursive: true, force: true });
  }
});

test.serial('a second `quorumkv cluster` with the config of a running one fails clearly and prints no cluster table', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-launcher-'));
  // Free ports for the config (the launcher binds what the config says).
  const held = await Promise.all(Array.from({ length: 6 }, () => holdPort()));
  const ports = held.map((h) => h.port);
  await Promise.all(held.map((h) => h.close()));
  const configPath = path.join(root, 'cluster.json');
  await writeFile(
    configPath,
    JSON.stringify({
      cluster: 'launcher-test',
      nodes: ['n1', 'n2', 'n3'].map((id, i) => ({
        id,
        raftAddress: `127.0.0.1:${ports[2 * i]}`,
        clientAddress: `127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(root, id),
      })),
      raft: { tickMs: 10, electionTicks: 100, heartbeatTicks: 5 },
      logLevel: 'info',
    }),
  );
  const first = spawn(process.execPath, ['--import', TSX, MAIN, 'cluster', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let firstOut = '';
  first.stdout.on('data', (b) => (firstOut += b));
  let firstErr = '';
  first.stderr.on('data', (b) => (firstErr += b));
  const firstExited = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 60_000;
    while (!/leader: n\d/.test(firstOut)) {
      if (Date.now() > deadline || first.exitCode !== null)
        throw new Error(`the first cluster did not come up:\n${firstOut.slice(-3000)}\n${firstErr.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await Promise.all(['n1', 'n2', 'n3'].map((id) => stat(path.join(root, id, 'LOCK')).then((s) => s.ino)));

    const second = await runToExit([MAIN, 'cluster', '--config', configPath], {}, 60_000);
    t.is(second.code, 1, second.stdout.slice(-3000));
    t.regex(second.stdout, /\[n\d\] failed to start \(exit code \d+, signal none\): error: node n\d cannot start: .*cannot listen on 127\.0\.0\.1:\d+/);
    t.regex(second.stdout, /the cluster did not start; stopping the other nodes/);
    t.notRegex(second.stdout, /client address/, 'no cluster table');
    t.notRegex(second.stdout, /leader: n\d/);
    // The running cluster kept its data dirs (same lock files) and serves on.
    const after = await Promise.all(['n1', 'n2', 'n3'].map((id) => stat(path.join(root, id, 'LOCK')).then((s) => s.ino)));
    t.deepEqual(after, before);
    t.is(first.exitCode, null);
  } finally {
    first.kill('SIGTERM');
    const code = await Promise.race([firstExited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code === 'timeout') first.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  }
});
