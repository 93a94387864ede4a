// Where does a node's CPU go? One fresh three-node cluster with every node under `node --cpu-prof`,
// then, one after the other: idle, sync put at c=1, sync put at c=16 (and any scenario named with
// --scenarios). Each scenario's timed window is noted on the monotonic clock, which is the clock
// V8 stamps profile samples with, so after the nodes stop (SIGTERM: the profiles are written on
// exit) each node's single profile is cut into per-scenario windows and summarized for the leader
// and one follower: busy CPU per op, self time by area, by function and by file, and inclusive time
// of quorumkv's own functions.
//
// Also per thread CPU from /proc/<pid>/task (main thread vs libuv pool and V8 helper threads; the
// profiler's own thread shows up as v8:ProfEvntProc), with --no-cpu-prof the same scenarios without
// the profiler (numbers it does not inflate), and with --strace each node's syscalls per op.
//
//   npm run bench:profile -- [--duration-ms 8000] [--out <dir>] [--top 20] [--interval-us 500]
//        [--scenarios idle,put-sync-c1,put-sync-c16] [--json <file>] [--no-cpu-prof] [--strace]
//        [--delete-profiles]
// Other scenarios: put-sync-c256, put-async-c16, get-linearizable-c16. The cluster is fresh (temp
// dirs, loopback); only the raw profiles (and strace tables) are kept, in --out.
import { readdirSync, statSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/index.js';
import { BenchCluster, BENCH_RAFT_SETTINGS } from './cluster.js';
import { agreedLeader, waitForLeader, waitForSettle } from './cluster-status.js';
import { srcFingerprint } from './src-fingerprint.js';
import { cpuMsByNode } from './cpu.js';
import { runLoadPhase } from './load.js';
import { inclusiveTimes, resolveTsxLines, sampledMs, selfTimes, type CpuProfile, type SelfTime } from './profile-summary.js';
import type { Workload } from './results.js';
import { makeOperation } from './workloads.js';

interface Scenario {
  name: string;
  workload?: Workload;
  concurrency?: number;
}

const KNOWN: Record<string, Scenario> = {
  idle: { name: 'idle' },
  'put-sync-c1': { name: 'put-sync-c1', workload: 'put-sync', concurrency: 1 },
  'put-sync-c16': { name: 'put-sync-c16', workload: 'put-sync', concurrency: 16 },
  'put-sync-c256': { name: 'put-sync-c256', workload: 'put-sync', concurrency: 256 },
  'put-async-c16': { name: 'put-async-c16', workload: 'put-async', concurrency: 16 },
  'get-linearizable-c16': { name: 'get-linearizable-c16', workload: 'get-linearizable', concurrency: 16 },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  const inline = process.argv.find((a) => a.startsWith(`${name}=`));
  return inline ? inline.slice(name.length + 1) : fallback;
}

const durationMs = Math.max(1000, Math.min(120_000, Number(arg('--duration-ms', '8000'))));
const warmupMs = 500;
const top = Math.max(5, Math.min(100, Number(arg('--top', '20'))));
const intervalUs = Math.max(100, Math.min(10_000, Number(arg('--interval-us', '500'))));
const outDir = path.resolve(arg('--out', path.join(os.tmpdir(), `quorumkv-profile-${Date.now()}`)));
const jsonOut = arg('--json', '');
/** --no-cpu-prof: the same scenarios without the profiler, for per-thread CPU the sampler does not inflate. */
const profiling = !process.argv.includes('--no-cpu-prof');
/** --strace: count each node's syscalls over each window (strace -c -f; it slows the nodes, but at c=1 the counts per op are exact). */
const tracing = process.argv.includes('--strace');

interface Tracer {
  proc: ChildProcess;
  file: string;
  done: Promise<void>;
}

function startStrace(pid: number, file: string): Tracer {
  const proc = spawn('strace', ['-c', '-f', '-q', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  const done = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, file, done };
}

/** Stops strace (SIGINT makes it detach and write its table) and returns calls per syscall. */
async function stopStrace(t: Tracer): Promise<Record<string, number>> {
  t.proc.kill('SIGINT');
  const timer = setTimeout(() => t.proc.kill('SIGKILL'), 10_000);
  await t.done;
  clearTimeout(timer);
  const out: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(t.file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== 'total') out[m[2]!] = Number(m[1]);
  }
  return out;
}
const scenarios = arg('--scenarios', 'idle,put-sync-c1,put-sync-c16')
  .split(',')
  .map((s) => {
    const sc = KNOWN[s.trim()];
    if (!sc) throw new Error(`unknown scenario "${s}"; known: ${Object.keys(KNOWN).join(', ')}`);
    return sc;
  });

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface Window {
  scenario: string;
  fromUs: number;
  toUs: number;
  ops: number;
  /** /proc utime+stime per node over the window (ms), to check the profile against. */
  procCpuMs: Record<string, number>;
  /** Per node, CPU ms over the window by thread name (/proc/<pid>/task/<tid>/stat), threads of one name summed. */
  threadCpuMs: Record<string, Record<string, number>>;
  /** With --strace: per node, syscalls over the window. */
  syscalls?: Record<string, Record<string, number>>;
}

let clk: number | undefined;
function ticksPerSecond(): number {
  if (clk === undefined) {
    try {
      clk = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clk = 100;
    }
  }
  return clk;
}

/** CPU ms so far of each thread of `pid`, by tid, with the thread's name. */
function threadCpu(pid: number): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const open = text.indexOf('(');
      const close = text.lastIndexOf(')');
      const rest = text.slice(close + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]); // fields 14 and 15
      out.set(Number(tid), { name: text.slice(open + 1, close), ms: (ticks * 1000) / ticksPerSecond() });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

function threadSnapshot(nodes: readonly { id: string; pid: number }[]): Map<string, Map<number, { name: string; ms: number }>> {
  return new Map(nodes.map((n) => [n.id, threadCpu(n.pid)]));
}

/** Per node: CPU over the window by thread name; the main thread (tid = pid) is reported as "main". */
function threadDiff(
  nodes: readonly { id: string; pid: number }[],
  a: Map<string, Map<number, { name: string; ms: number }>>,
  b: Map<string, Map<number, { name: string; ms: number }>>,
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const n of nodes) {
    const before = a.get(n.id) ?? new Map();
    const byName: Record<string, number> = {};
    for (const [tid, t] of b.get(n.id) ?? new Map()) {
      const name = tid === n.pid ? 'main' : t.name;
      byName[name] = (byName[name] ?? 0) + t.ms - (before.get(tid)?.ms ?? 0);
    }
    out[n.id] = byName;
  }
  return out;
}

function mainThreadProfile(dir: string): string | undefined {
  // tsx's loader thread writes a small profile beside the main thread's; the main one is the large one.
  let best: { file: string; size: number } | undefined;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.cpuprofile')) continue;
    const size = statSync(path.join(dir, f)).size;
    if (!best || size > best.size) best = { file: path.join(dir, f), size };
  }
  return best?.file;
}

const fmtRow = (r: SelfTime): string => `${r.percent.toFixed(1).padStart(6)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`;

async function main(): Promise<void> {
  if (profiling || tracing) mkdirSync(outDir, { recursive: true });
  process.stdout.write(`quorumkv src/ ${srcFingerprint()}; `);
  process.stdout.write(
    `${profiling ? `profiles in ${outDir} (sampling every ${intervalUs} µs)` : 'no profiler (--no-cpu-prof)'}; scenarios ${scenarios.map((s) => s.name).join(', ')}, ${durationMs} ms each\n`,
  );
  const cluster = await BenchCluster.start({ size: 3, raft: BENCH_RAFT_SETTINGS, ...(profiling ? { profileDir: outDir, profileIntervalUs: intervalUs } : {}) });
  const onSignal = (): void => void cluster.stop(2000).finally(() => process.exit(130));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const windows: Window[] = [];
  let leaderId: string;
  const client = await connect({ endpoints: cluster.endpoints, deadlineMs: 10_000, discover: false });
  try {
    leaderId = (await waitForLeader(client, 3, 30_000, () => cluster.exitedNodes())).id;
    const tag = randomBytes(4).toString('hex');
    const value = randomBytes(256);
    const readKeys = Array.from({ length: 256 }, (_, i) => `prof/${tag}/r/${i}`);
    for (const k of readKeys) await client.put(k, value);
    await waitForSettle(client, 3, 15_000);
    await sleep(1000); // let startup work (JIT of the first requests, a lease round) drain before idle
    const ctx = { client, value, readKeys, keyPrefix: `prof/${tag}/w` };
    for (const sc of scenarios) {
      process.stdout.write(`  ${sc.name}...\n`);
      const cpu0 = cpuMsByNode(cluster.nodes) ?? {};
      let tracers: [string, Tracer][] = [];
      const startTracing = (): void => {
        if (tracing) tracers = cluster.nodes.map((n) => [n.id, startStrace(n.pid, path.join(outDir, `strace-${sc.name}-${n.id}.txt`))]);
      };
      const stopTracing = async (): Promise<Record<string, Record<string, number>> | undefined> => {
        if (!tracing) return undefined;
        const out: Record<string, Record<string, number>> = {};
        for (const [id, t] of tracers) out[id] = await stopStrace(t);
        return out;
      };
      if (!sc.workload) {
        startTracing();
        const th0 = threadSnapshot(cluster.nodes);
        const fromUs = nowUs();
        await sleep(durationMs);
        const cpu1 = cpuMsByNode(cluster.nodes) ?? {};
        const th1 = threadSnapshot(cluster.nodes);
        const toUs = nowUs();
        const syscalls = await stopTracing();
        windows.push({
          scenario: sc.name,
          fromUs,
          toUs,
          ops: 0,
          procCpuMs: diff(cpu0, cpu1),
          threadCpuMs: threadDiff(cluster.nodes, th0, th1),
          ...(syscalls ? { syscalls } : {}),
        });
      } else {
        let fromUs = 0;
        let toUs = 0;
        let cpuA: Record<string, number> = {};
        let cpuB: Record<string, number> = {};
        let thA = new Map<string, Map<number, { name: string; ms: number }>>();
        let thB = thA;
        // The window is runLoadPhase's own timed window: it reads node CPU exactly at its start and end.
        let reads = 0;
        const r = await runLoadPhase({
          workload: sc.workload,
          concurrency: sc.concurrency!,
          durationMs,
          warmupMs,
          op: makeOperation(sc.workload, ctx, sc.name),
          nodeCpuMs: () => {
            const c = cpuMsByNode(cluster.nodes) ?? {};
            if (reads++ === 0) {
              startTracing();
              fromUs = nowUs();
              cpuA = c;
              thA = threadSnapshot(cluster.nodes);
            } else {
              toUs = nowUs();
              cpuB = c;
              thB = threadSnapshot(cluster.nodes);
            }
            return c;
          },
        });
        const syscalls = await stopTracing();
        windows.push({
          scenario: sc.name,
          fromUs,
          toUs,
          ops: r.ops,
          procCpuMs: diff(cpuA, cpuB),
          threadCpuMs: threadDiff(cluster.nodes, thA, thB),
          ...(syscalls ? { syscalls } : {}),
        });
        process.stdout.write(
          `    ${r.ops} ops, ${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.latency?.p50Ms.toFixed(2)} ms, cluster cpu ${r.cpuMsPerOp?.toFixed(3)} ms/op\n`,
        );
        if (sc.workload.startsWith('put')) await waitForSettle(client, 3, 15_000);
        await sleep(500);
      }
      // Leader and follower are told apart by the leader at the start: a change would mix them up.
      const now = agreedLeader(await client.status({ deadlineMs: 2000 }), 3);
      if (now?.id !== leaderId) process.stdout.write(`    warning: leader is now ${now?.id ?? 'unknown'} (was ${leaderId}); roles in this window are mixed\n`);
    }
  } finally {
    await client.close();
    // SIGTERM: the nodes stop cleanly and V8 writes the profiles on exit. Keep the profiles (outDir), drop the rest.
    await cluster.stop(15_000);
  }

  const follower = cluster.nodes.find((n) => n.id !== leaderId)!.id;
  const report: Record<string, unknown> = { outDir, intervalUs, profiling, durationMs, leader: leaderId, follower, windows, summaries: {} };
  process.stdout.write(
    `\nCPU by thread (/proc/<pid>/task, ms over the window; per op where there were ops)${profiling ? " — includes the profiler's own overhead" : ''}:\n`,
  );
  for (const w of windows) {
    for (const n of cluster.nodes) {
      const byName = Object.entries(w.threadCpuMs[n.id] ?? {})
        .filter(([, ms]) => ms > 0)
        .sort((x, y) => y[1] - x[1]);
      const total = byName.reduce((s2, [, ms]) => s2 + ms, 0);
      const fmt = (ms: number): string =>
        w.ops > 0 ? `${ms.toFixed(0)} (${(ms / w.ops).toFixed(3)}/op)` : `${ms.toFixed(0)} (${((100 * ms * 1000) / (w.toUs - w.fromUs)).toFixed(1)}%)`;
      process.stdout.write(
        `  ${w.scenario.padEnd(14)} ${n.id}${n.id === leaderId ? '*' : ' '} total ${fmt(total)}: ${byName.map(([name, ms]) => `${name} ${fmt(ms)}`).join(', ')}\n`,
      );
    }
  }
  if (tracing) {
    process.stdout.write('\nsyscalls (strace -c -f over the window; per op where there were ops, per second when idle):\n');
    for (const w of windows) {
      for (const n of cluster.nodes) {
        const calls = Object.entries(w.syscalls?.[n.id] ?? {}).sort((x, y) => y[1] - x[1]);
        const secs = (w.toUs - w.fromUs) / 1e6;
        const fmt = (c: number): string => (w.ops > 0 ? (c / w.ops).toFixed(2) : `${(c / secs).toFixed(0)}/s`);
        process.stdout.write(
          `  ${w.scenario.padEnd(14)} ${n.id}${n.id === leaderId ? '*' : ' '} ${calls
            .slice(0, 14)
            .map(([k, c]) => `${k} ${fmt(c)}`)
            .join(', ')}\n`,
        );
      }
    }
  }
  if (!profiling) {
    if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(report, null, 1)}\n`);
    return;
  }
  for (const [role, id] of [
    ['leader', leaderId],
    ['follower', follower],
  ] as const) {
    const file = mainThreadProfile(path.join(outDir, id));
    if (!file) {
      process.stdout.write(`no profile for ${id} in ${path.join(outDir, id)}\n`);
      continue;
    }
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const resolvedFiles = resolveTsxLines(profile);
    process.stdout.write(`\n${role} ${id}: ${file} (TypeScript lines resolved through tsx's cache for ${resolvedFiles} files)\n`);
    for (const w of windows) {
      const o = { fromUs: w.fromUs, toUs: w.toUs, excludeIdle: true };
      const busy = sampledMs(profile, o);
      const wallMs = (w.toUs - w.fromUs) / 1000;
      const areas = selfTimes(profile, 'area', o);
      const fns = selfTimes(profile, 'function', o);
      const files = selfTimes(profile, 'file', o);
      const incl = inclusiveTimes(profile, o, (k) => / src\//.test(k));
      (report['summaries'] as Record<string, unknown>)[`${role}:${w.scenario}`] = {
        node: id,
        file,
        busyMs: busy,
        wallMs,
        ops: w.ops,
        procCpuMs: w.procCpuMs[id],
        areas: areas.slice(0, 30),
        functions: fns.slice(0, 60),
        files: files.slice(0, 40),
        inclusive: incl.slice(0, 60),
      };
      const perOp = w.ops > 0 ? ` = ${(busy / w.ops).toFixed(3)} ms/op over ${w.ops} ops` : '';
      process.stdout.write(
        `\n===== ${role} ${id}, ${w.scenario}: main thread busy ${busy.toFixed(0)} ms in ${wallMs.toFixed(0)} ms (${((100 * busy) / wallMs).toFixed(1)}% of a core)${perOp}; ` +
          `/proc utime+stime ${w.procCpuMs[id]?.toFixed(0) ?? '-'} ms (all threads)\n`,
      );
      process.stdout.write(`-- self time by area (% of busy):\n${areas.slice(0, 16).map(fmtRow).join('\n')}\n`);
      process.stdout.write(`-- self time by function:\n${fns.slice(0, top).map(fmtRow).join('\n')}\n`);
      process.stdout.write(`-- self time by file:\n${files.slice(0, Math.min(top, 15)).map(fmtRow).join('\n')}\n`);
      process.stdout.write(`-- inclusive time, quorumkv functions:\n${incl.slice(0, top).map(fmtRow).join('\n')}\n`);
    }
  }
  if (jsonOut) {
    writeFileSync(jsonOut, `${JSON.stringify(report, null, 1)}\n`);
    process.stdout.write(`\nsummary JSON: ${jsonOut}\n`);
  }
  if (process.argv.includes('--delete-profiles')) rmSync(outDir, { recursive: true, force: true });
  else process.stdout.write(`\nraw profiles kept in ${outDir} (open in Chrome DevTools > Performance, or bench/profile-summary.ts)\n`);
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) out[k] = v - (a[k] ?? v);
  return out;
}

await main();
process.exit(0);
