// `quorumkv cluster --config F`: runs every node of the config on this machine as a child process
// (`quorumkv serve`), prefixes their logs, waits for a leader, prints a table and an example
// command, and on Ctrl-C/SIGTERM stops all children (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig } from './config.js';
import { NodeProbe, type ProbeStatus } from './node-probe.js';
import { probeCredentials } from './node-security.js';
import { withNodeMallocEnv } from './node-env.js';
import type * as grpc from '@grpc/grpc-js';

// Each node runs this package's own entry point in the same form as the launcher: compiled
// JavaScript from dist/ (what `npm start` and the installed bin run), or the TypeScript sources
// when the launcher itself runs under tsx (development). Node flags (e.g. `--import tsx`) carry over.
const HERE = fileURLToPath(import.meta.url);
const MAIN = fileURLToPath(new URL(HERE.endsWith('.ts') ? './main.ts' : './main.js', import.meta.url));

export interface ClusterLauncherOptions {
  /** How long to wait for a leader before giving up (default 30 s). */
  leaderTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL when stopping children (default 5 s). */
  stopGraceMs?: number;
  /** Where the launcher's own lines go (default stdout). */
  out?: (line: string) => void;
  /**
   * How the nodes log: 'pretty' (default) = human lines, each prefixed with its node
   * id; 'json' = the nodes' pino records unchanged, one JSON object per line, so they can be piped
   * into a log tool (the launcher's own lines then go to stderr).
   */
  logFormat?: 'json' | 'pretty';
  /** --log-level for every node (default: the config's logLevel). */
  logLevel?: string;
}

interface Child {
  id: string;
  clientAddress: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  /**
   * The child printed its own "ready" line (node-process.ts stdout protocol, with its pid). Only
   * then is whatever answers on its client address this child: a node that failed to start (its
   * port or data dir taken by another cluster) must not be probed, or the launcher would report
   * the other cluster as its own.
   */
  ready: boolean;
  /** Its last stderr line: the reason, when it fails to start. */
  lastErrorLine: string;
}

/**
 * Relays a child's output line by line. JSON mode passes every line through untouched; pretty
 * mode prefixes each with the node id and leaves out the stdout protocol lines ({"event":"ready"}
 * and the like), which the launcher reports in its own words.
 */
function relayLines(stream: NodeJS.ReadableStream | null, prefix: string | undefined, write: (s: string) => void, onLine?: (raw: string) => void): void {
  if (!stream) return;
  const rl = createInterface({ input: stream });
  rl.on('line', (line) => {
    onLine?.(line);
    if (prefix === undefined) write(`${line}\n`);
    else if (!isProtocolLine(line)) write(`${prefix} ${line}\n`);
  });
}

function isProtocolLine(line: string): boolean {
  return line.startsWith('{"event":');
}

function isReadyLine(line: string, pid: number | undefined): boolean {
  if (!line.startsWith('{') || !line.includes('"event":"ready"')) return false;
  try {
    const parsed = JSON.parse(line) as { event?: unknown; pid?: unknown };
    return parsed.event === 'ready' && parsed.pid === pid;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the cluster until a signal; resolves with the exit code (0 after a clean stop, 1 if no
 * leader was elected or every node exited). A node that dies is reported and the rest keep running.
 */
export async function runClusterLauncher(configPath: string, options: ClusterLauncherOptions = {}): Promise<number> {
  const logFormat = options.logFormat ?? 'pretty';
  // In JSON mode stdout carries only JSON records; the launcher's own lines go to stderr.
  const out = options.out ?? ((line: string) => (logFormat === 'json' ? process.stderr : process.stdout).write(`${line}\n`));
  const nodeFlags = ['--log-format', logFormat, ...(options.logLevel ? ['--log-level', options.logLevel] : [])];
  const config = await loadClusterConfig(configPath);
  const width = Math.max(...config.nodes.map((n) => n.id.length));
  const children: Child[] = [];
  let stopping = false;

  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    const grace = options.stopGraceMs ?? 5000;
    await Promise.all(
      children.map(async (c) => {
        const timer = setTimeout(() => {
          if (c.proc.exitCode === null && c.proc.signalCode === null) {
            out(`[${c.id}] did not stop within ${grace} ms; sending SIGKILL`);
            c.proc.kill('SIGKILL');
          }
        }, grace);
        await c.exited;
        clearTimeout(timer);
      }),
    );
  };

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    out(`received ${sig}: stopping ${children.length} nodes`);
    void stopAll().then(() => resolveDone(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last resort if the launcher exits abnormally while nodes still run.
  const killLeftovers = () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  };
  process.on('exit', killLeftovers);

  try {
    for (const node of config.nodes) {
      const proc = spawn(process.execPath, [...process.execArgv, MAIN, 'serve', '--config', configPath, '--node', node.id, ...nodeFlags], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group: Ctrl-C reaches only the launcher, which stops each node with one
        // SIGTERM (a node treats a second signal as "exit now, skip the clean stop"). Nodes watch
        // QUORUMKV_LAUNCHER_PID and stop themselves if the launcher dies.
        detached: true,
        env: withNodeMallocEnv({ ...process.env, QUORUMKV_LAUNCHER_PID: String(process.pid) }),
      });
      const prefix = logFormat === 'pretty' ? `[${node.id.padEnd(width)}]` : undefined;
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      const child: Child = { id: node.id, clientAddress: node.clientAddress, proc, exited, ready: false, lastErrorLine: '' };
      relayLines(
        proc.stdout,
        prefix,
        (s) => process.stdout.write(s),
        (line) => {
          if (isReadyLine(line, proc.pid)) child.ready = true;
        },
      );
      relayLines(
        proc.stderr,
        prefix,
        // JSON mode: the records go to stdout with the protocol lines, so `cluster | jq` sees them all.
        (s) => (logFormat === 'json' ? process.stdout : process.stderr).write(s),
        (line) => {
          if (line.trim()) child.lastErrorLine = line.trim();
        },
      );
      children.push(child);
      void exited.then((code) => {
        if (stopping) return;
        if (!child.ready) {
          // It never served: its port or data dir is taken (another cluster runs with this config?),
          // or its data dir refused to open. A cluster missing a node from the start is not what
          // was asked for: stop the others and say why, without a cluster table.
          out(`[${node.id}] failed to start (exit code ${code}, signal ${proc.signalCode ?? 'none'}): ${child.lastErrorLine || 'no error printed'}`);
          out('the cluster did not start; stopping the other nodes. Is another cluster running with this config (same ports or data dirs)?');
          void stopAll().then(() => resolveDone(1));
          return;
        }
        // The others keep serving: losing a minority is exactly what the cluster is built to survive.
        const alive = children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
        out(`[${node.id}] exited (code ${code}, signal ${proc.signalCode ?? 'none'}); ${alive.length} node(s) still running.`);
        if (alive.length === 0) {
          out('every node has exited; stopping.');
          stopping = true;
          resolveDone(1);
          return;
        }
        out(`  restart it with: npx quorumkv serve --config ${configPath} --node ${node.id}`);
      });
    }

    const leader = await waitForLeader(children, options.leaderTimeoutMs ?? 30_000, () => stopping, probeCredentials(config));
    if (!leader) {
      if (!stopping) {
        out('no leader was elected in time; check the node logs above. Stopping.');
        await stopAll();
        resolveDone(1);
      }
    } else {
      out('');
      out(renderTable(leader.statuses, children));
      out('');
      out(`leader: ${leader.leaderId}. Try: npx quorumkv put hello world --config ${configPath}`);
      out('Ctrl-C stops every node.');
    }
    return await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killLeftovers);
  }
}

async function waitForLeader(
  children: Child[],
  timeoutMs: number,
  cancelled: () => boolean,
  credentials?: grpc.ChannelCredentials,
): Promise<{ leaderId: string; statuses: Map<string, ProbeStatus | undefined> } | undefined> {
  const probes = children.map((c) => new NodeProbe(c.clientAddress, credentials));
  try {
    const deadline = Date.now() + timeoutMs;
    let leaderSeenAt: number | undefined;
    while (Date.now() < deadline && !cancelled()) {
      const statuses = new Map<string, ProbeStatus | undefined>();
      await Promise.all(
        probes.map(async (p, i) => {
          // Only a child that announced itself ready owns its address (see Child.ready).
          const child = children[i]!;
          statuses.set(child.id, child.ready ? await p.status(500).catch(() => undefined) : undefined);
        }),
      );
      if (cancelled()) return undefined;
      const leader = [...statuses.values()].find((s) => s?.role === 'leader');
      // Print once every node answers, or with what we have if some stay silent for 3 s.
      const everyoneAnswered = [...statuses.values()].every((s) => s !== undefined);
      if (leader && (everyoneAnswered || (leaderSeenAt !== undefined && Date.now() - leaderSeenAt > 3000))) {
        return { leaderId: leader.id, statuses };
      }
      if (leader) leaderSeenAt ??= Date.now();
      await sleep(50);
    }
    return undefined;
  } finally {
    for (const p of probes) p.close();
  }
}

function renderTable(statuses: Map<string, ProbeStatus | undefined>, children: Child[]): string {
  const rows = [['node', 'client address', 'role', 'term', 'applied']];
  for (const c of children) {
    const s = statuses.get(c.id);
    rows.push([c.id, c.clientAddress, s?.role ?? 'unreachable', s ? String(s.term) : '-', s ? String(s.appliedIndex) : '-']);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ')).join('\n');
}
