// `quorumkv cluster --config F`: runs every node of the config on this machine as a child process
// (`quorumkv serve`), prefixes their logs, waits for a leader, prints a table and an example
// command, and on Ctrl-C/SIGTERM stops all children (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig } from './config.ts';
import { NodeProbe, type ProbeStatus } from './node-probe.ts';

// Resolved from this file, not the cwd: `--import tsx` alone fails when run from another directory.
const TSX = import.meta.resolve('tsx');
const CLI_MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

export interface ClusterLauncherOptions {
  /** How long to wait for a leader before giving up (default 30 s). */
  leaderTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL when stopping children (default 5 s). */
  stopGraceMs?: number;
  /** Where the launcher's own lines go (default stdout). */
  out?: (line: string) => void;
}

interface Child {
  id: string;
  clientAddress: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

function pipePrefixed(stream: NodeJS.ReadableStream | null, prefix: string, write: (s: string) => void): void {
  if (!stream) return;
  const rl = createInterface({ input: stream });
  rl.on('line', (line) => write(`${prefix} ${line}\n`));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the cluster until a signal; resolves with the exit code (0 after a clean stop, 1 if a node
 * failed to start or exited on its own).
 */
export async function runClusterLauncher(configPath: string, options: ClusterLauncherOptions = {}): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
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

  try {
    for (const node of config.nodes) {
      const proc = spawn(process.execPath, ['--import', TSX, CLI_MAIN, 'serve', '--config', configPath, '--node', node.id], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group not needed: the launcher forwards signals itself and Ctrl-C reaches the
        // group anyway; children treat a second signal as "exit now".
      });
      const prefix = `[${node.id.padEnd(width)}]`;
      pipePrefixed(proc.stdout, prefix, (s) => process.stdout.write(s));
      pipePrefixed(proc.stderr, prefix, (s) => process.stderr.write(s));
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      const child: Child = { id: node.id, clientAddress: node.clientAddress, proc, exited };
      children.push(child);
      void exited.then((code) => {
        if (!stopping) {
          out(`[${node.id}] exited unexpectedly (code ${code}); stopping the cluster`);
          void stopAll().then(() => resolveDone(1));
        }
      });
    }

    const leader = await waitForLeader(children, options.leaderTimeoutMs ?? 30_000, () => stopping);
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
  }
}

async function waitForLeader(
  children: Child[],
  timeoutMs: number,
  cancelled: () => boolean,
): Promise<{ leaderId: string; statuses: Map<string, ProbeStatus | undefined> } | undefined> {
  const probes = children.map((c) => new NodeProbe(c.clientAddress));
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !cancelled()) {
      const statuses = new Map<string, ProbeStatus | undefined>();
      await Promise.all(
        probes.map(async (p, i) => {
          statuses.set(children[i]!.id, await p.status(500).catch(() => undefined));
        }),
      );
      const leader = [...statuses.values()].find((s) => s?.role === 'leader');
      if (leader) return { leaderId: leader.id, statuses };
      await sleep(250);
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
