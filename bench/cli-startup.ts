// `npm run bench:cli`: what a user waits for at the command line, with the machine's floor
// measured in the same run (an empty `node -e ''`): wall time of `quorumkv --version`, of
// `quorumkv get` against a running cluster, and of `npm start` until the leader table; and the
// packed tarball's file count and size. Runs the compiled package (dist/), as users do.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPorts } from './free-port.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'quorumkv.js');
const MAIN = path.join(ROOT, 'dist', 'esm', 'process', 'main.js');
const RUNS = 7;

function wallMs(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function row(what: string, xs: number[]): string {
  return `${what.padEnd(34)} p50 ${median(xs).toFixed(0).padStart(5)} ms   min ${Math.min(...xs)
    .toFixed(0)
    .padStart(5)} ms   (${xs.length} runs)`;
}

async function startCluster(dir: string): Promise<{ ms: number; config: string; stop: () => Promise<void> }> {
  const ports = await freeLoopbackPorts(6);
  const config = path.join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      cluster: 'bench-cli',
      preferredLeader: 'n1',
      nodes: [0, 1, 2].map((i) => ({
        id: `n${i + 1}`,
        raftAddress: `127.0.0.1:${ports[i]}`,
        clientAddress: `127.0.0.1:${ports[i + 3]}`,
        dataDir: `data/n${i + 1}`,
      })),
      raft: { tickMs: 10, electionTicks: 30, heartbeatTicks: 3 },
    }),
  );
  const t0 = performance.now();
  const proc = spawn(process.execPath, [MAIN, 'cluster', '--config', config], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  const ms = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no leader table within 30 s')), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^leader: /m.test(out)) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    });
  });
  const stop = async () => {
    proc.kill('SIGINT');
    await new Promise((r) => proc.once('exit', r));
  };
  return { ms, config, stop };
}

async function main(): Promise<void> {
  const floor = Array.from({ length: RUNS }, () => wallMs(['-e', '']));
  const version = Array.from({ length: RUNS }, () => wallMs([BIN, '--version']));
  const starts: number[] = [];
  const gets: number[] = [];
  for (let run = 0; run < 3; run++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-bench-cli-'));
    try {
      const cluster = await startCluster(dir);
      starts.push(cluster.ms);
      try {
        execFileSync(process.execPath, [BIN, 'put', 'bench-key', 'v', '--config', cluster.config]);
        for (let i = 0; i < RUNS; i++) gets.push(wallMs([BIN, 'get', 'bench-key', '--config', cluster.config]));
      } finally {
        await cluster.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const pack = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })) as {
    entryCount: number;
    size: number;
    unpackedSize: number;
  }[];
  const p = pack[0]!;
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  console.log(
    `quorumkv ${pkg.version} CLI start-up — ${new Date().toISOString()} — node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );
  console.log(row("floor: node -e ''", floor));
  console.log(row('quorumkv --version', version));
  console.log(row('quorumkv get KEY (3-node cluster)', gets));
  console.log(row('cluster start -> leader table', starts));
  console.log(`packed tarball: ${p.entryCount} files, ${(p.size / 1024).toFixed(0)} KiB packed, ${(p.unpackedSize / 1024).toFixed(0)} KiB unpacked`);
}

await main();
