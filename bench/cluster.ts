// A fresh three-node cluster of real `quorumkv serve` processes for one bench run: loopback ports,
// a temp config and temp data dirs, logs captured to files (shown when something fails), and a
// cleanup that runs on normal end, error, SIGINT/SIGTERM and even a synchronous process exit.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchClusterError } from './errors.js';
import { freeLoopbackPorts } from './free-port.js';
import { isRunning, stopChildren } from './child-processes.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../src/process/main.ts', import.meta.url));
/** The compiled entry point, as the package's bin runs it. */
const BUILT_MAIN = fileURLToPath(new URL('../dist/esm/process/main.js', import.meta.url));

export interface BenchRaftSettings {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEntries: number;
}

/** The shipped defaults (cluster.example.json): the bench measures what users get. */
export const BENCH_RAFT_SETTINGS: BenchRaftSettings = { tickMs: 10, electionTicks: 30, heartbeatTicks: 3, snapshotEntries: 100_000 };

export interface BenchNode {
  id: string;
  raftAddress: string;
  clientAddress: string;
  dataDir: string;
  logFile: string;
  pid: number;
}

interface Child {
  node: BenchNode;
  proc: ChildProcess;
  exited: Promise<void>;
}

export interface StartClusterOptions {
  size?: number;
  raft?: BenchRaftSettings;
  /**
   * Run the nodes with --cpu-prof, writing profiles to this directory (one subdirectory per node).
   * Default: the BENCH_CPU_PROF_DIR environment variable, so any bench script can be profiled.
   */
  profileDir?: string;
  /** --cpu-prof-interval in µs (V8's default is 1000). Default: BENCH_CPU_PROF_INTERVAL_US or V8's. */
  profileIntervalUs?: number;
  /** Where the cluster's temp root goes (default os.tmpdir()). */
  tmpBase?: string;
  /** Extra environment for the nodes (e.g. QUORUMKV_STALL_LOG_MS). */
  nodeEnv?: Record<string, string>;
  /**
   * Run the nodes from the compiled package (dist/, built first when stale) as an installed
   * `quorumkv serve` runs, instead of the sources under tsx (whose loader costs start-up time and
   * memory). Not with profileDir (profiles then map to the sources).
   */
  built?: boolean;
}

export class BenchCluster {
  private stopped = false;
  private readonly exitHook = (): void => this.killNowSync();

  private constructor(
    /** Temp root holding the config, data dirs and logs; removed by stop(). */
    readonly root: string,
    readonly configPath: string,
    private readonly children: Child[],
    private readonly launch: (spec: Omit<BenchNode, 'pid'>) => Child,
  ) {
    // A synchronous last resort: if the bench dies without reaching stop(), no node outlives it.
    process.on('exit', this.exitHook);
  }

  get nodes(): BenchNode[] {
    return this.children.map((c) => c.node);
  }

  get endpoints(): string[] {
    return this.children.map((c) => c.node.clientAddress);
  }

  get pids(): number[] {
    return this.children.map((c) => c.node.pid);
  }

  /** Ids of nodes whose process has exited (a node must never die during a bench). */
  exitedNodes(): string[] {
    return this.children.filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null).map((c) => c.node.id);
  }

  /** The last lines of every node's log, for error messages. */
  logTails(lines = 15): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of this.children) {
      try {
        const text = readFileSync(c.node.logFile, 'utf8').trimEnd().split('\n');
        out[c.node.id] = text.slice(-lines).join('\n');
      } catch {
        out[c.node.id] = '(no log)';
      }
    }
    return out;
  }

  static async start(options: StartClusterOptions = {}): Promise<BenchCluster> {
    const size = options.size ?? 3;
    const raft = options.raft ?? BENCH_RAFT_SETTINGS;
    const profileDir = options.profileDir ?? (process.env['BENCH_CPU_PROF_DIR'] || undefined);
    const envInterval = Number(process.env['BENCH_CPU_PROF_INTERVAL_US']);
    const profileIntervalUs = options.profileIntervalUs ?? (Number.isInteger(envInterval) && envInterval > 0 ? envInterval : undefined);
    const root = mkdtempSync(path.join(options.tmpBase ?? os.tmpdir(), 'quorumkv-bench-'));
    const ports = await freeLoopbackPorts(size * 2);
    const specs = Array.from({ length: size }, (_, i) => {
      const id = `n${i + 1}`;
      return {
        id,
        raftAddress: `127.0.0.1:${ports[2 * i]}`,
        clientAddress: `127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(root, id),
        logFile: path.join(root, `${id}.log`),
      };
    });
    const configPath = path.join(root, 'cluster.json');
    const config = {
      cluster: 'quorumkv-bench',
      nodes: specs.map(({ id, raftAddress, clientAddress, dataDir }) => ({ id, raftAddress, clientAddress, dataDir })),
      raft,
      // Info lines are per event (leader change, snapshot, slow fsync), not per request: cheap, and
      // they let the kept logs explain a leader change seen during a run.
      logLevel: 'info',
    };
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    if (profileDir) mkdirSync(profileDir, { recursive: true });

    // The parent's QUORUMKV_* overrides (ports, data dir) must not leak into the bench's nodes.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUORUMKV_')) env[k] = v;
    Object.assign(env, options.nodeEnv);

    const children: Child[] = [];
    const built = options.built === true && !profileDir;
    if (built) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'ensure-built.mjs')], { cwd: REPO_ROOT, stdio: 'ignore' });
    const launch = (spec: (typeof specs)[number]): Child => spawnNode(spec, configPath, env, profileDir, profileIntervalUs, built);
    try {
      for (const spec of specs) children.push(launch(spec));
    } catch (e) {
      const partial = new BenchCluster(root, configPath, children, launch);
      await partial.stop();
      throw e;
    }
    return new BenchCluster(root, configPath, children, launch);
  }

  /**
   * Copies the nodes' logs (warn level and up: elections, slow fsyncs, errors) to `dir`, replacing
   * the previous run's, so a leader change or an error can be explained after the temp root is gone.
   */
  saveLogs(dir: string): string | undefined {
    try {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      for (const c of this.children) copyFileSync(c.node.logFile, path.join(dir, `${c.node.id}.log`));
      return dir;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM (a clean stop also writes --cpu-prof profiles), SIGKILL after the grace, then remove the temp root. */
  async stop(graceMs = 5000, saveLogsTo?: string): Promise<string | undefined> {
    if (this.stopped) return undefined;
    this.stopped = true;
    await stopChildren(this.children, graceMs);
    const saved = saveLogsTo ? this.saveLogs(saveLogsTo) : undefined;
    rmSync(this.root, { recursive: true, force: true });
    process.off('exit', this.exitHook);
    return saved;
  }

  /** SIGKILL one node and wait for it to exit. */
  async kill(id: string): Promise<void> {
    const c = this.child(id);
    if (isRunning(c.proc)) c.proc.kill('SIGKILL');
    await c.exited;
  }

  /** Delete a stopped node's data dir (disk loss). */
  wipe(id: string): void {
    const c = this.child(id);
    if (isRunning(c.proc)) throw new BenchClusterError(`node ${id} is still running; kill it before wiping its data`);
    rmSync(c.node.dataDir, { recursive: true, force: true });
  }

  /** Start a stopped node again with the same ports, data dir and log file. */
  restart(id: string): BenchNode {
    const i = this.children.findIndex((c) => c.node.id === id);
    const old = this.children[i]!;
    if (isRunning(old.proc)) throw new BenchClusterError(`node ${id} is still running`);
    const { pid: _pid, ...spec } = old.node;
    this.children[i] = this.launch(spec);
    return this.children[i]!.node;
  }

  private child(id: string): Child {
    const c = this.children.find((x) => x.node.id === id);
    if (!c) throw new BenchClusterError(`no node ${id} in this cluster`);
    return c;
  }

  /** For process 'exit' and fatal paths: nothing async is possible any more. */
  killNowSync(): void {
    for (const c of this.children) if (isRunning(c.proc)) c.proc.kill('SIGKILL');
    if (!this.stopped) rmSync(this.root, { recursive: true, force: true });
    this.stopped = true;
  }
}

function spawnNode(
  spec: Omit<BenchNode, 'pid'>,
  configPath: string,
  env: NodeJS.ProcessEnv,
  profileDir: string | undefined,
  profileIntervalUs: number | undefined,
  built: boolean,
): Child {
  const fd = openSync(spec.logFile, 'a');
  const nodeArgs = built ? [] : ['--import', 'tsx'];
  // One directory per node: tsx's loader thread writes a profile too, and the default file
  // names (with pid and thread id) keep the two apart; the main thread's is the large one.
  if (profileDir) {
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir, spec.id));
    if (profileIntervalUs !== undefined) nodeArgs.push('--cpu-prof-interval', String(profileIntervalUs));
  }
  const main = built ? BUILT_MAIN : CLI_MAIN;
  const proc = spawn(process.execPath, [...nodeArgs, main, 'serve', '--config', configPath, '--node', spec.id], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd); // the child holds its own copy
  if (proc.pid === undefined) throw new BenchClusterError(`could not spawn node ${spec.id} (${process.execPath} ${main})`);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { node: { ...spec, pid: proc.pid }, proc, exited };
}
