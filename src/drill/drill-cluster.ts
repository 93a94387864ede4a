// The drill's own cluster: three node processes (`quorumkv serve`) on ephemeral loopback ports
// with temporary data dirs, each dialling its peers through a LinkProxy per directed link. Ports
// are handed over as the integration harness does: nodes bind port 0, print a "listening" line,
// and read every member's addresses on stdin; a restarted node re-binds the ports it had.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LinkProxy } from './link-proxy.js';

const HERE = fileURLToPath(import.meta.url);
/** The `quorumkv` entry point beside this build (TypeScript sources under tsx, else dist). */
const MAIN = fileURLToPath(new URL(HERE.endsWith('.ts') ? '../process/main.ts' : '../process/main.js', import.meta.url));
const MAX_LOG_LINES = 2_000;

export class DrillClusterError extends Error {
  override name = 'DrillClusterError';
}

export interface DrillRaftTiming {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
}

export interface DrillNode {
  id: string;
  dataDir: string;
  raftAddress: string;
  clientAddress: string;
  proc: ChildProcess | undefined;
  exited: Promise<void>;
  paused: boolean;
  lines: string[];
}

function running(n: DrillNode): boolean {
  return n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
}

export class DrillCluster {
  readonly nodes: DrillNode[] = [];
  /** links.get(`${from}->${to}`): the proxy `from` dials `to` through. */
  readonly links = new Map<string, LinkProxy>();
  private closed = false;

  private constructor(
    readonly root: string,
    readonly configPath: string,
    private readonly startTimeoutMs: number,
    /** Where each node's output is kept (`<id>.log`, appended across restarts), at log level info. */
    private readonly logDir: string | undefined,
  ) {}

  static async start(options: { size?: number; raft: DrillRaftTiming; startTimeoutMs?: number; logDir?: string }): Promise<DrillCluster> {
    const size = options.size ?? 3;
    const root = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-drill-'));
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const cluster = new DrillCluster(root, path.join(root, 'cluster.json'), options.startTimeoutMs ?? 30_000, options.logDir);
    try {
      if (options.logDir !== undefined) await mkdir(options.logDir, { recursive: true });
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          const p = new LinkProxy(`${from}->${to}`);
          await p.start();
          cluster.links.set(p.name, p);
        }
      }
      // Placeholder ports satisfy the config checker; the environment gives port 0 instead.
      const config = {
        cluster: `drill-${path.basename(root)}`,
        nodes: ids.map((id, i) => ({
          id,
          raftAddress: `127.0.0.1:${10 + i}`,
          clientAddress: `127.0.0.1:${40 + i}`,
          dataDir: path.join(root, id),
          peerDialAddresses: Object.fromEntries(ids.filter((p) => p !== id).map((p) => [p, cluster.links.get(`${id}->${p}`)!.address])),
        })),
        raft: { ...options.raft, snapshotEntries: 5_000 },
        logLevel: options.logDir === undefined ? 'warn' : 'info',
      };
      await writeFile(cluster.configPath, JSON.stringify(config, null, 2));
      for (const id of ids) {
        cluster.nodes.push({
          id,
          dataDir: path.join(root, id),
          raftAddress: '',
          clientAddress: '',
          proc: undefined,
          exited: Promise.resolve(),
          paused: false,
          lines: [],
        });
      }
      await Promise.all(cluster.nodes.map((n) => cluster.spawn(n, 0, 0)));
      for (const n of cluster.nodes) for (const p of cluster.linksTo(n.id)) p.setTarget(n.raftAddress);
      cluster.sendMembers(cluster.nodes);
      await Promise.all(cluster.nodes.map((n) => cluster.waitLine(n, 'ready')));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.nodes.map((n) => n.clientAddress);
  }

  node(id: string): DrillNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new DrillClusterError(`no node ${id} in the drill cluster`);
    return n;
  }

  idOfClientAddress(address: string): string | undefined {
    return this.nodes.find((n) => n.clientAddress === address)?.id;
  }

  isRunning(id: string): boolean {
    return running(this.node(id));
  }

  linksFrom(id: string): LinkProxy[] {
    return [...this.links.values()].filter((l) => l.name.startsWith(`${id}->`));
  }

  linksTo(id: string): LinkProxy[] {
    return [...this.links.values()].filter((l) => l.name.endsWith(`->${id}`));
  }

  healAll(): void {
    for (const l of this.links.values()) l.heal();
  }

  async kill(id: string): Promise<void> {
    const n = this.node(id);
    if (!running(n)) return;
    if (n.paused) n.proc!.kill('SIGCONT');
    n.paused = false;
    n.proc!.kill('SIGKILL');
    await n.exited;
  }

  /** Clean stop (SIGTERM), SIGKILL if it has not exited within `graceMs`. */
  async stop(id: string, graceMs = 5_000): Promise<void> {
    const n = this.node(id);
    if (!running(n)) return;
    this.resume(id);
    n.proc!.kill('SIGTERM');
    const timer = setTimeout(() => n.proc!.kill('SIGKILL'), graceMs);
    await n.exited;
    clearTimeout(timer);
  }

  pause(id: string): void {
    const n = this.node(id);
    if (running(n) && !n.paused) {
      n.proc!.kill('SIGSTOP');
      n.paused = true;
    }
  }

  resume(id: string): void {
    const n = this.node(id);
    if (running(n) && n.paused) n.proc!.kill('SIGCONT');
    n.paused = false;
  }

  async restart(id: string): Promise<void> {
    const n = this.node(id);
    if (running(n)) throw new DrillClusterError(`node ${id} is still running; kill it before restarting`);
    await this.spawn(n, portOf(n.raftAddress), portOf(n.clientAddress));
    this.sendMembers([n]);
    await this.waitLine(n, 'ready');
  }

  /** Delete a stopped node's data dir: it restarts empty and is rebuilt from the leader. */
  async wipe(id: string): Promise<void> {
    const n = this.node(id);
    if (running(n)) throw new DrillClusterError(`node ${id} is still running; kill it before wiping its data`);
    await rm(n.dataDir, { recursive: true, force: true });
  }

  /** Kill every process, close the proxies, delete the temp dir; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.id).catch(() => undefined)));
    await Promise.all([...this.links.values()].map((l) => l.close()));
    await rm(this.root, { recursive: true, force: true });
  }

  private async spawn(n: DrillNode, raftPort: number, clientPort: number): Promise<void> {
    const proc = spawn(process.execPath, [...process.execArgv, MAIN, 'serve', '--config', this.configPath, '--node', n.id], {
      env: {
        ...process.env,
        QUORUMKV_RAFT_PORT: String(raftPort),
        QUORUMKV_CLIENT_PORT: String(clientPort),
        QUORUMKV_PEERS_STDIN: '1',
        // A node stops itself if the drill dies without cleaning up.
        QUORUMKV_LAUNCHER_PID: String(process.pid),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    n.proc = proc;
    n.paused = false;
    n.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.stdin!.on('error', () => {});
    const logFile = this.logDir === undefined ? undefined : createWriteStream(path.join(this.logDir, `${n.id}.log`), { flags: 'a' });
    if (logFile) proc.once('exit', () => logFile.end());
    const push = (l: string) => {
      logFile?.write(`${l}\n`);
      n.lines.push(l);
      if (n.lines.length > MAX_LOG_LINES) n.lines.splice(0, MAX_LOG_LINES / 2);
    };
    createInterface({ input: proc.stdout! }).on('line', push);
    createInterface({ input: proc.stderr! }).on('line', push);
    const line = await this.waitLine(n, 'listening');
    const a = JSON.parse(line) as { raftAddress: string; clientAddress: string };
    n.raftAddress = a.raftAddress;
    n.clientAddress = a.clientAddress;
  }

  private sendMembers(targets: DrillNode[]): void {
    const members = this.nodes.map((n) => ({ id: n.id, raftAddress: n.raftAddress, clientAddress: n.clientAddress }));
    for (const t of targets) t.proc!.stdin!.write(`${JSON.stringify({ members })}\n`);
  }

  private waitLine(n: DrillNode, event: string): Promise<string> {
    const proc = n.proc!;
    const seen = n.lines.length;
    const matches = (l: string) => l.startsWith('{') && l.includes(`"event":"${event}"`) && !l.includes('"level"');
    return new Promise((resolve, reject) => {
      const timer = setInterval(() => {
        const hit = n.lines.slice(Math.min(seen, n.lines.length)).find(matches);
        if (hit) {
          finish();
          resolve(hit);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          finish();
          reject(new DrillClusterError(`node ${n.id} exited before its ${event} line; last lines:\n${n.lines.slice(-10).join('\n')}`));
        } else if (Date.now() > deadline) {
          finish();
          reject(new DrillClusterError(`node ${n.id}: no ${event} line within ${this.startTimeoutMs} ms; last lines:\n${n.lines.slice(-10).join('\n')}`));
        }
      }, 10);
      const deadline = Date.now() + this.startTimeoutMs;
      const finish = () => clearInterval(timer);
    });
  }
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}
