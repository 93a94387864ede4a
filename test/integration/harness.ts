// Real-process cluster for integration tests: each node is a separate OS process
// (src/process/serve-main.ts) on ephemeral loopback ports with its own temp data dir.
//
// Port handshake: nodes start with QUORUMKV_*_PORT=0 and QUORUMKV_PEERS_STDIN=1, print a
// "listening" line with their bound addresses, and get every member's addresses on stdin (see
// src/process/node-process.ts). A restarted node re-binds the ports it had before, so peers need no update.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { createCerts } from '../../src/process/certs.js';
import { loadConfig } from '../../src/process/config.js';
import { probeCredentials } from '../../src/process/node-security.js';
import { NodeProbe, type ProbeStatus } from '../../src/process/node-probe.js';
import { frameRecord } from '../../src/storage/record-file.js';

// Resolved from this file, not the cwd: `--import tsx` alone fails when run from another directory.
const TSX = import.meta.resolve('tsx');
const SERVE_MAIN = fileURLToPath(new URL('../../src/process/serve-main.ts', import.meta.url));

export interface RaftOverrides {
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotEntries?: number;
  retainEntries?: number;
}

export interface ClusterOptions {
  size?: number;
  raft?: RaftOverrides;
  /** The config file's "storage" section (e.g. snapshotChunkBytes). */
  storage?: Record<string, number | boolean>;
  /** How long to wait for every node's "ready" line (default 30 s: tsx start-up on a busy 2-core box). */
  startTimeoutMs?: number;
  /** Extra environment for every node process (e.g. the test-only stall hook of node-process.ts). */
  env?: Record<string, string>;
  /**
   * TLS everywhere (mutual between nodes), with certificates made by `quorumkv certs` in the temp
   * dir; clientCertAuth: clients must present a certificate too.
   */
  tls?: { clientCertAuth?: boolean; clients?: string[] };
  /** Auth on, with this users file (written as given: hash passwords with hashPassword()). */
  users?: object;
  /** Runs after the config is written and before any node starts (e.g. restore the data dirs from a backup). */
  seed?: (configPath: string, ids: string[]) => Promise<void>;
}

interface Announce {
  event: string;
  id: string;
  raftAddress: string;
  clientAddress: string;
  httpAddress: string;
  pid: number;
}

export class NodeHandle {
  proc: ChildProcess | undefined;
  raftAddress = '';
  clientAddress = '';
  httpAddress = '';
  /** Every stdout/stderr line of every incarnation, in arrival order. */
  readonly lines: string[] = [];
  exited: Promise<number | null> = Promise.resolve(null);
  private probeInstance: NodeProbe | undefined;
  private lineWaiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  /** configPath: the node's own config file (a joiner's); default the cluster's. */
  constructor(
    readonly id: string,
    readonly dataDir: string,
    readonly configPath?: string,
  ) {}

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** A KV client bound to this node only. */
  /** How the harness's probes dial the client API (TLS clusters set it). */
  probeCredentials: ChannelCredentials | undefined;

  get probe(): NodeProbe {
    this.probeInstance ??= new NodeProbe(this.clientAddress, this.probeCredentials);
    return this.probeInstance;
  }

  closeProbe(): void {
    this.probeInstance?.close();
    this.probeInstance = undefined;
  }

  /** Whether any line so far contains `text` (e.g. an event name in the pino logs). */
  logged(text: string): boolean {
    return this.lines.some((l) => l.includes(text));
  }

  /** @internal */
  pushLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 20000) this.lines.splice(0, 10000);
    for (const w of [...this.lineWaiters]) {
      if (w.match(line)) {
        this.lineWaiters = this.lineWaiters.filter((x) => x !== w);
        w.resolve(line);
      }
    }
  }

  /** @internal resolves with the first future line matching, or rejects after timeoutMs / on exit. */
  waitLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters = this.lineWaiters.filter((x) => x !== waiter);
        reject(new Error(`node ${this.id}: no ${what} within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).join('\n')}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.lineWaiters.push(waiter);
      void this.exited.then((code) => {
        if (!this.lineWaiters.includes(waiter)) return;
        this.lineWaiters = this.lineWaiters.filter((x) => x !== waiter);
        clearTimeout(timer);
        reject(new Error(`node ${this.id} exited (code ${code}) before ${what}; last lines:\n${this.lines.slice(-15).join('\n')}`));
      });
    });
  }
}

function eventLine(event: string): (line: string) => boolean {
  return (line) => line.startsWith('{') && line.includes(`"event":"${event}"`) && !line.includes('"level"');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every `everyMs` until it returns a truthy value, or throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
    }
    await sleep(everyMs);
  }
}

export class ProcessCluster {
  readonly nodes = new Map<string, NodeHandle>();
  private closed = false;

  private constructor(
    readonly root: string,
    readonly configPath: string,
    private readonly startTimeoutMs: number,
    private readonly env: Record<string, string> = {},
  ) {}

  static async start(options: ClusterOptions = {}): Promise<ProcessCluster> {
    const size = options.size ?? 3;
    const root = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-it-'));
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    // Placeholder ports: the config validator wants real ones; the environment overrides them.
    const config = {
      cluster: `it-${path.basename(root)}`,
      nodes: ids.map((id, i) => ({
        id,
        raftAddress: `127.0.0.1:${10 + i}`,
        clientAddress: `127.0.0.1:${40 + i}`,
        dataDir: path.join(root, id),
      })),
      raft: { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, snapshotEntries: 10000, ...options.raft },
      ...(options.storage ? { storage: options.storage } : {}),
      logLevel: 'info',
    };
    if (options.tls) {
      Object.assign(config, { tls: { ca: path.join(root, 'certs', 'ca.crt'), clientCertAuth: options.tls.clientCertAuth ?? false } });
      for (const n of config.nodes) Object.assign(n, { tls: { cert: path.join(root, 'certs', `${n.id}.crt`), key: path.join(root, 'certs', `${n.id}.key`) } });
    }
    if (options.users) {
      await writeFile(path.join(root, 'users.json'), JSON.stringify(options.users, null, 2));
      Object.assign(config, { auth: { usersFile: path.join(root, 'users.json') } });
    }
    const configPath = path.join(root, 'cluster.json');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    let probeCreds: ChannelCredentials | undefined;
    if (options.tls) {
      const parsed = await loadConfig(configPath);
      await createCerts(parsed, options.tls.clients ?? []);
      probeCreds = probeCredentials(parsed);
    }
    const cluster = new ProcessCluster(root, configPath, options.startTimeoutMs ?? 30_000, options.env ?? {});
    for (const id of ids) {
      const h = new NodeHandle(id, path.join(root, id));
      h.probeCredentials = probeCreds;
      cluster.nodes.set(id, h);
    }
    try {
      await options.seed?.(configPath, ids);
      const handles = [...cluster.nodes.values()];
      await Promise.all(handles.map((h) => cluster.spawn(h, { raft: 0, client: 0 })));
      cluster.sendMembers(handles);
      await Promise.all(handles.map((h) => h.waitLine(eventLine('ready'), cluster.startTimeoutMs, 'ready line')));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  node(id: string): NodeHandle {
    const h = this.nodes.get(id);
    if (!h) throw new Error(`no node ${id} in this cluster`);
    return h;
  }

  live(): NodeHandle[] {
    return [...this.nodes.values()].filter((h) => h.running);
  }

  private portOf(address: string): number {
    return Number(address.slice(address.lastIndexOf(':') + 1));
  }

  private async spawn(h: NodeHandle, ports: { raft: number; client: number }): Promise<void> {
    const proc = spawn(process.execPath, ['--import', TSX, SERVE_MAIN, '--config', h.configPath ?? this.configPath, '--node', h.id], {
      env: {
        ...process.env,
        ...this.env,
        QUORUMKV_RAFT_PORT: String(ports.raft),
        QUORUMKV_CLIENT_PORT: String(ports.client),
        QUORUMKV_HTTP_PORT: '0',
        QUORUMKV_PEERS_STDIN: '1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    h.proc = proc;
    h.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stdin!.on('error', () => {}); // the node may die before we write its peers line
    createInterface({ input: proc.stdout! }).on('line', (l) => h.pushLine(l));
    createInterface({ input: proc.stderr! }).on('line', (l) => h.pushLine(l));
    const line = await h.waitLine(eventLine('listening'), this.startTimeoutMs, 'listening line');
    const a = JSON.parse(line) as Announce;
    h.raftAddress = a.raftAddress;
    h.clientAddress = a.clientAddress;
    h.httpAddress = a.httpAddress;
  }

  private sendMembers(targets: NodeHandle[]): void {
    const members = [...this.nodes.values()].map((n) => ({ id: n.id, raftAddress: n.raftAddress, clientAddress: n.clientAddress }));
    for (const t of targets) t.proc!.stdin!.write(`${JSON.stringify({ members })}\n`);
  }

  /**
   * Start a node that is not in the configuration (`"join": true`: empty membership, waits for a
   * leader to add it) on ephemeral ports. It is not a member until someone calls addMember.
   */
  async startJoiner(id: string): Promise<NodeHandle> {
    if (this.nodes.has(id)) throw new Error(`node ${id} already exists in this cluster`);
    const base = JSON.parse(await readFile(this.configPath, 'utf8')) as { nodes: { id: string }[] };
    const dataDir = path.join(this.root, id);
    const i = base.nodes.length;
    const config = {
      ...base,
      join: true,
      nodes: [...base.nodes, { id, raftAddress: `127.0.0.1:${10 + i}`, clientAddress: `127.0.0.1:${40 + i}`, dataDir }],
    };
    const configPath = path.join(this.root, `join-${id}.json`);
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const h = new NodeHandle(id, dataDir, configPath);
    this.nodes.set(id, h);
    await this.spawn(h, { raft: 0, client: 0 });
    this.sendMembers([h]);
    await h.waitLine(eventLine('ready'), this.startTimeoutMs, 'ready line of the joiner');
    return h;
  }

  /** Send a signal; for SIGKILL/SIGTERM/SIGINT wait until the process has exited. Returns the exit code. */
  async signal(id: string, sig: NodeJS.Signals): Promise<number | null> {
    const h = this.node(id);
    if (!h.running) return null;
    h.proc!.kill(sig);
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') return null;
    h.closeProbe();
    return h.exited;
  }

  kill(id: string): Promise<number | null> {
    return this.signal(id, 'SIGKILL');
  }

  /** Clean stop (SIGTERM): resolves with the exit code (0 expected). */
  stop(id: string): Promise<number | null> {
    return this.signal(id, 'SIGTERM');
  }

  /** Start a stopped node again on the same ports and data dir. */
  async restart(id: string): Promise<void> {
    const h = this.node(id);
    if (h.running) throw new Error(`node ${id} is still running; stop or kill it first`);
    h.closeProbe();
    await this.spawn(h, { raft: this.portOf(h.raftAddress), client: this.portOf(h.clientAddress) });
    this.sendMembers([h]);
    await h.waitLine(eventLine('ready'), this.startTimeoutMs, 'ready line after restart');
  }

  /** Delete a stopped node's data dir (disk loss). */
  async wipe(id: string): Promise<void> {
    const h = this.node(id);
    if (h.running) throw new Error(`node ${id} is still running; stop it before wiping its data`);
    await rm(h.dataDir, { recursive: true, force: true });
  }

  /** Cut `bytes` off the end of a stopped node's newest log segment (a torn last write). */
  /**
   * Leaves the live log segment as a crash in the middle of a log write would: after its last
   * complete record, the first `bytes` bytes of a record whose write never finished. (Cutting bytes
   * off the last record instead would damage a write that completed: that record was durable, and
   * its entries may be applied.)
   */
  async tearLogTail(id: string, bytes: number): Promise<{ file: string; size: number }> {
    const h = this.node(id);
    if (h.running) throw new Error(`node ${id} is still running; stop it before damaging its log`);
    const dir = path.join(h.dataDir, 'raft');
    const segments = (await readdir(dir)).filter((n) => /^log-\d+\.wal$/.test(n)).sort();
    const file = path.join(dir, segments[segments.length - 1]!);
    const unfinished = frameRecord(randomBytes(Math.max(64, bytes * 2)));
    await appendFile(file, unfinished.subarray(0, Math.min(bytes, unfinished.length - 1)));
    return { file, size: (await stat(file)).size };
  }

  async statuses(nodes = this.live()): Promise<Map<string, ProbeStatus>> {
    const out = new Map<string, ProbeStatus>();
    await Promise.all(
      nodes.map(async (h) => {
        const s = await h.probe.status(500).catch(() => undefined);
        if (s) out.set(h.id, s);
      }),
    );
    return out;
  }

  /**
   * Waits until a running node is leader and a majority of the cluster's nodes (counting only
   * running ones) report it as their leader in its term.
   */
  async waitForLeader(timeoutMs = 15_000, exclude: string[] = []): Promise<NodeHandle> {
    const majority = Math.floor(this.nodes.size / 2) + 1;
    return eventually(
      async () => {
        const st = await this.statuses();
        const leader = [...st.values()].find((s) => s.role === 'leader' && !exclude.includes(s.id));
        if (!leader) return undefined;
        const agree = [...st.values()].filter((s) => s.leaderId === leader.id && s.term === leader.term).length;
        return agree >= majority ? this.node(leader.id) : undefined;
      },
      timeoutMs,
      'a leader acknowledged by a majority',
      100,
    );
  }

  /** Kill every process and delete the temp dir; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...this.nodes.values()].map(async (h) => {
        h.closeProbe();
        if (h.running) {
          if (h.proc!.signalCode === null) h.proc!.kill('SIGCONT');
          h.proc!.kill('SIGKILL');
          await h.exited;
        }
      }),
    );
    await rm(this.root, { recursive: true, force: true });
  }
}

/** GET an HTTP path on a node's metrics endpoint. */
export async function httpGet(h: NodeHandle, pathname: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${h.httpAddress}${pathname}`, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

const CLI_MAIN = fileURLToPath(new URL('../../src/process/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The `quorumkv` CLI as a user runs it (a separate process); QUORUMKV_ENDPOINTS from the caller's shell is cleared. */
export function runQuorumkv(args: string[], timeoutMs = 30_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const env = { ...process.env, QUORUMKV_ENDPOINTS: '' };
    execFile(process.execPath, ['--import', TSX, CLI_MAIN, ...args], { timeout: timeoutMs, env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Every file under `dir` with its size and SHA-256, by relative path (to prove a dir unchanged). */
export async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else
        out[path.relative(dir, p)] = `${(await stat(p)).size}:${createHash('sha256')
          .update(await readFile(p))
          .digest('hex')}`;
    }
  };
  await walk(dir);
  return out;
}
