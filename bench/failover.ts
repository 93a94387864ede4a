// `npm run bench:failover`: the client-visible write gap when the leader dies (or hangs: --fault
// pause), on a real 3-process cluster with the shipped raft timings. Per run: a writer does
// sequential sync puts through the SDK, the leader gets SIGKILL (or SIGSTOP), and the gap is the time from the kill to the first sync write
// acknowledged in a later term. Node logs split the gap into election (kill -> a survivor logs that
// it became leader) and client catch-up (-> first ack). A no-fault load phase first counts spurious
// elections. Results: bench/results/failover.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '../src/index.js';
import type { KvClient } from '../src/index.js';
import { ProcessCluster, sleep } from '../test/integration/harness.js';
import type { NodeHandle } from '../test/integration/harness.js';
import { BENCH_RAFT_SETTINGS } from './cluster.js';
import type { BenchRaftSettings } from './cluster.js';
import { BenchUsageError } from './errors.js';
import { percentileOfSorted } from './stats.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const HELP = `npm run bench:failover -- [options]

Starts a 3-node cluster (real processes, loopback, temp dirs, shipped raft timings), runs a
no-fault load phase counting spurious elections, then SIGKILLs the leader --runs times under a
sequential sync writer and measures the gap to the first acknowledged write of the new leader.

  --fault <kind>      kill (SIGKILL, default) or pause (SIGSTOP until the first write of the
                      new leader is acked, then SIGCONT): a hung leader, not a refusing one
  --runs <n>          failover runs (default 7, at least 5)
  --load-ms <n>       no-fault load phase length (default 10000)
  --load-clients <n>  concurrent writers in the no-fault phase (default 16)
  --json-out <file>   results file (default bench/results/failover.json)
  --tick-ms <n>, --election-ticks <n>, --heartbeat-ticks <n>
                      raft timings to try instead of the shipped ones (10, 30, 3)
  --help`;

type Fault = 'kill' | 'pause';

interface Options {
  fault: Fault;
  runs: number;
  loadMs: number;
  loadClients: number;
  jsonOut: string;
  raft: BenchRaftSettings;
}

function positiveInt(raw: string | undefined, name: string, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) throw new BenchUsageError(`--${name}`, `must be an integer >= ${min}, got "${raw}"`);
  return n;
}

const FAILOVER_OPTIONS = {
  fault: { type: 'string' },
  runs: { type: 'string' },
  'load-ms': { type: 'string' },
  'load-clients': { type: 'string' },
  'json-out': { type: 'string' },
  'tick-ms': { type: 'string' },
  'election-ticks': { type: 'string' },
  'heartbeat-ticks': { type: 'string' },
  help: { type: 'boolean' },
} as const;

function parseOptions(argv: string[]): Options | undefined {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof FAILOVER_OPTIONS; strict: true }>>['values'];
  try {
    values = parseArgs({
      args: argv,
      options: FAILOVER_OPTIONS,
      strict: true,
    }).values;
  } catch (e) {
    throw new BenchUsageError('arguments', (e as Error).message);
  }
  if (values.help) return undefined;
  const fault = values.fault ?? 'kill';
  if (fault !== 'kill' && fault !== 'pause') throw new BenchUsageError('--fault', `must be kill or pause, got "${fault}"`);
  return {
    fault,
    runs: positiveInt(values.runs, 'runs', 7, 5),
    loadMs: positiveInt(values['load-ms'], 'load-ms', 10_000, 1000),
    loadClients: positiveInt(values['load-clients'], 'load-clients', 16),
    jsonOut: values['json-out'] ?? 'bench/results/failover.json',
    raft: {
      ...BENCH_RAFT_SETTINGS,
      tickMs: positiveInt(values['tick-ms'], 'tick-ms', BENCH_RAFT_SETTINGS.tickMs),
      electionTicks: positiveInt(values['election-ticks'], 'election-ticks', BENCH_RAFT_SETTINGS.electionTicks, 2),
      heartbeatTicks: positiveInt(values['heartbeat-ticks'], 'heartbeat-ticks', BENCH_RAFT_SETTINGS.heartbeatTicks),
    },
  };
}

interface LogRecord {
  event?: string;
  time?: number;
  role?: string;
  leader?: string | null;
}

/** Pino records of one event on a node, with their wall-clock times. */
function records(h: NodeHandle, event: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of h.lines) {
    if (!line.startsWith('{') || !line.includes(`"event":"${event}"`)) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // a partial line: ignore
    }
  }
  return out;
}

/** Wall time at which some node logged becoming leader after `since`. */
function electedAt(cluster: ProcessCluster, since: number): { id: string; at: number } | undefined {
  let best: { id: string; at: number } | undefined;
  for (const h of cluster.nodes.values()) {
    for (const r of records(h, 'leader_changed')) {
      if (r.role === 'leader' && r.time !== undefined && r.time >= since && (!best || r.time < best.at)) best = { id: h.id, at: r.time };
    }
  }
  return best;
}

function leaderChangesSince(cluster: ProcessCluster, since: number): number {
  let n = 0;
  for (const h of cluster.nodes.values())
    n += records(h, 'leader_changed').filter((r) => r.time !== undefined && r.time >= since && r.role === 'leader').length;
  return n;
}

async function termOf(cluster: ProcessCluster): Promise<{ term: number; leader: string }> {
  const leader = await cluster.waitForLeader(30_000);
  const st = await leader.probe.status(1000);
  return { term: st.term, leader: leader.id };
}

interface RunResult {
  run: number;
  killed: string;
  oldTerm: number;
  newLeader: string | null;
  newTerm: number | null;
  /** Kill -> first sync write acked in a later term. */
  gapMs: number | null;
  /** Kill -> a survivor logged that it became leader (from node logs, ms resolution). */
  electionMs: number | null;
  /** Election -> first acked write: what the SDK (retry, backoff, rediscovery) adds. */
  clientMs: number | null;
  /** Writes that failed during the run (each after the SDK's own retries). */
  failedWrites: number;
  errorNames: string[];
}

/** Sequential sync puts until stopped; reports each ack (time, term) to `onAck`. */
function startWriter(kv: KvClient, onAck: (at: number, term: number) => void, onError: (err: Error) => void): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      try {
        const w = await kv.put(`failover/${i % 1000}`, `v${i}`);
        onAck(performance.now(), w.term);
      } catch (err) {
        onError(err as Error);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

async function failoverRun(cluster: ProcessCluster, endpoints: string[], run: number, fault: Fault): Promise<RunResult> {
  const { term: oldTerm, leader: killed } = await termOf(cluster);
  // A fresh client per run: no state carried over from the previous failover.
  const kv = await connect({ endpoints });
  let warm = 0;
  let killPerf = 0;
  let firstAck: { at: number; term: number } | undefined;
  const errors: string[] = [];
  let failedWrites = 0;
  const writer = startWriter(
    kv,
    (at, term) => {
      warm++;
      if (killPerf > 0 && !firstAck && term > oldTerm && at >= killPerf) firstAck = { at, term };
    },
    (err) => {
      failedWrites++;
      if (!errors.includes(err.name)) errors.push(err.name);
    },
  );
  try {
    const warmDeadline = Date.now() + 10_000;
    while (warm < 50 && Date.now() < warmDeadline) await sleep(20);
    if (warm < 50) throw new Error(`run ${run}: the writer got only ${warm} acks before the kill; is the cluster healthy?`);
    const killWall = Date.now();
    killPerf = performance.now();
    if (fault === 'kill') await cluster.kill(killed);
    else await cluster.signal(killed, 'SIGSTOP');
    const deadline = Date.now() + 20_000;
    while (!firstAck && Date.now() < deadline) await sleep(5);
    if (fault === 'pause') await cluster.signal(killed, 'SIGCONT');
    const elected = electedAt(cluster, killWall);
    const gapMs = firstAck ? firstAck.at - killPerf : null;
    const electionMs = elected ? elected.at - killWall : null;
    const st = elected
      ? await cluster
          .node(elected.id)
          .probe.status(1000)
          .catch(() => undefined)
      : undefined;
    return {
      run,
      killed,
      oldTerm,
      newLeader: elected?.id ?? null,
      newTerm: firstAck?.term ?? st?.term ?? null,
      gapMs: gapMs === null ? null : round(gapMs),
      electionMs,
      clientMs: gapMs !== null && electionMs !== null ? round(gapMs - electionMs) : null,
      failedWrites,
      errorNames: errors,
    };
  } finally {
    await writer.stop();
    await kv.close();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** No faults, `clients` concurrent sync writers: do terms or leaders change on their own? */
async function noFaultPhase(cluster: ProcessCluster, endpoints: string[], clients: number, ms: number) {
  const before = await termOf(cluster);
  const since = Date.now();
  const kvs = await Promise.all(Array.from({ length: clients }, () => connect({ endpoints })));
  let ops = 0;
  let errors = 0;
  let running = true;
  const workers = kvs.map(async (kv, c) => {
    for (let i = 0; running; i++) {
      try {
        await kv.put(`load/${c}/${i % 100}`, 'x'.repeat(256));
        ops++;
      } catch {
        errors++;
      }
    }
  });
  await sleep(ms);
  running = false;
  await Promise.all(workers);
  await Promise.all(kvs.map((kv) => kv.close()));
  const after = await termOf(cluster);
  return {
    durationMs: ms,
    clients,
    ops,
    opsPerSec: Math.round((ops / ms) * 1000),
    errors,
    termBefore: before.term,
    termAfter: after.term,
    leaderBefore: before.leader,
    leaderAfter: after.leader,
    /** Nodes logging "became leader" during the phase: 0 means no spurious election. */
    electionsWon: leaderChangesSince(cluster, since),
  };
}

function summary(values: number[]): { p50: number; max: number; min: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentileOfSorted(sorted, 50), max: sorted[sorted.length - 1]!, min: sorted[0]! };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    console.log(HELP);
    return 0;
  }
  const raft = options.raft;
  if (raft.heartbeatTicks >= raft.electionTicks) throw new BenchUsageError('--heartbeat-ticks', 'must be below --election-ticks');
  console.log(
    `raft: tickMs ${raft.tickMs}, electionTicks ${raft.electionTicks}, heartbeatTicks ${raft.heartbeatTicks} ` +
      `(election timeout ${raft.tickMs * raft.electionTicks}-${raft.tickMs * raft.electionTicks * 2} ms randomized, heartbeat ${raft.tickMs * raft.heartbeatTicks} ms)`,
  );
  console.log('starting a 3-node cluster...');
  const cluster = await ProcessCluster.start({ size: 3, raft, startTimeoutMs: 60_000 });
  const onSignal = (): void => {
    void cluster.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const endpoints = [...cluster.nodes.values()].map((h) => h.clientAddress);
    await cluster.waitForLeader(30_000);

    console.log(`no-fault phase: ${options.loadClients} sync writers for ${options.loadMs} ms...`);
    const noFault = await noFaultPhase(cluster, endpoints, options.loadClients, options.loadMs);
    console.log(
      `  ${noFault.ops} writes (${noFault.opsPerSec}/s, ${noFault.errors} errors); term ${noFault.termBefore} -> ${noFault.termAfter}, ` +
        `elections won during the phase: ${noFault.electionsWon}`,
    );

    const runs: RunResult[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const r = await failoverRun(cluster, endpoints, run, options.fault);
      runs.push(r);
      console.log(
        `  run ${run}: killed ${r.killed} (term ${r.oldTerm}) -> ${r.newLeader ?? '?'} (term ${r.newTerm ?? '?'}): ` +
          `gap ${r.gapMs ?? 'none'} ms = election ${r.electionMs ?? '?'} ms + client ${r.clientMs ?? '?'} ms; ` +
          `failed writes ${r.failedWrites}${r.errorNames.length ? ` (${r.errorNames.join(', ')})` : ''}`,
      );
      if (options.fault === 'kill') await cluster.restart(r.killed);
      // Every node agrees on the leader before the next kill, so each run starts from a full cluster.
      await cluster.waitForLeader(30_000);
      await sleep(500);
    }

    const gaps = summary(runs.flatMap((r) => (r.gapMs === null ? [] : [r.gapMs])));
    const elections = summary(runs.flatMap((r) => (r.electionMs === null ? [] : [r.electionMs])));
    const clientPart = summary(runs.flatMap((r) => (r.clientMs === null ? [] : [r.clientMs])));
    const report = {
      date: new Date().toISOString(),
      fault: options.fault,
      shippedRaft: raft === BENCH_RAFT_SETTINGS || JSON.stringify(raft) === JSON.stringify(BENCH_RAFT_SETTINGS),
      raft: {
        ...raft,
        electionTimeoutMs: [raft.tickMs * raft.electionTicks, raft.tickMs * raft.electionTicks * 2],
        heartbeatMs: raft.tickMs * raft.heartbeatTicks,
      },
      goal: { gapP50Ms: 500, met: gaps !== null && gaps.p50 <= 500 },
      gapMs: gaps,
      electionMs: elections,
      clientMs: clientPart,
      runs,
      noFault,
    };
    const file = path.resolve(REPO_ROOT, options.jsonOut);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    console.log(
      `write gap after leader ${options.fault === 'kill' ? 'SIGKILL' : 'SIGSTOP'} over ${runs.length} runs: p50 ${gaps?.p50 ?? '?'} ms, max ${gaps?.max ?? '?'} ms ` +
        `(goal p50 <= 500 ms: ${report.goal.met ? 'met' : 'NOT met'})`,
    );
    console.log(
      `  of which election p50 ${elections?.p50 ?? '?'} ms (max ${elections?.max ?? '?'}), client catch-up p50 ${clientPart?.p50 ?? '?'} ms (max ${clientPart?.max ?? '?'})`,
    );
    console.log(`results: ${path.relative(REPO_ROOT, file)}`);
    return runs.every((r) => r.gapMs !== null) ? 0 : 1;
  } finally {
    await cluster.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof BenchUsageError ? `${err.message}\n\n${HELP}` : err);
    process.exit(err instanceof BenchUsageError ? 2 : 1);
  },
);
