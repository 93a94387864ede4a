// Closed-loop load: `concurrency` workers, each starting its next operation as soon as the last
// one ends. After an untimed warm-up, the window [start, end) counts the operations that complete
// inside it; operations still in flight at the end finish uncounted.
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadResult, Workload } from './results.js';
import { cpuMsPerOp, newLatencyHistogram, opsPerSecond, recordMs, summarizeHistogram } from './stats.js';
import type { Operation } from './workloads.js';

export interface LoadPhase {
  workload: Workload;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  op: Operation;
  /** CPU time so far (ms) of each node process by node id, or undefined when it cannot be read. */
  nodeCpuMs: () => Record<string, number> | undefined;
  /** Called about twice a second with completed ops in the window so far. */
  onTick?: (opsSoFar: number) => void;
}

/** After a failed operation a worker pauses this long, so a broken cluster is not hammered in a hot loop. */
const ERROR_PAUSE_MS = 20;

export async function runLoadPhase(p: LoadPhase): Promise<LoadResult> {
  const hist = newLatencyHistogram();
  let state: 'warmup' | 'timed' | 'done' = 'warmup';
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;

  const worker = async (): Promise<void> => {
    while (state !== 'done') {
      const t0 = performance.now();
      try {
        await p.op();
        const dt = performance.now() - t0;
        // Completions inside the window: in a steady closed loop this is unbiased for throughput
        // (what straddles the start is balanced by what straddles the end).
        if (state === 'timed') {
          ops++;
          recordMs(hist, dt);
        }
      } catch (e) {
        if (state === 'timed') {
          errors++;
          firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        }
        await sleep(ERROR_PAUSE_MS);
      }
    }
  };

  const workers = Array.from({ length: p.concurrency }, () => worker());
  await sleep(p.warmupMs);

  state = 'timed';
  const cpu0 = p.nodeCpuMs();
  const client0 = process.cpuUsage();
  const start = performance.now();
  const ticker = p.onTick ? setInterval(() => p.onTick!(ops), 500) : undefined;
  await sleep(p.durationMs);
  const elapsedMs = performance.now() - start;
  const cpu1 = p.nodeCpuMs();
  const client1 = process.cpuUsage(client0);
  state = 'done';
  if (ticker) clearInterval(ticker);
  await Promise.all(workers);

  const latency = summarizeHistogram(hist);
  hist.destroy();
  const result: LoadResult = {
    workload: p.workload,
    concurrency: p.concurrency,
    ops,
    errors,
    elapsedMs,
    opsPerSec: opsPerSecond(ops, elapsedMs),
  };
  if (latency) result.latency = latency;
  if (firstError) result.firstError = firstError;
  const clientPerOp = cpuMsPerOp((client1.user + client1.system) / 1000, ops);
  if (clientPerOp !== undefined) result.clientCpuMsPerOp = clientPerOp;
  result.clientCpuPercent = round1(((client1.user + client1.system) / 1000 / elapsedMs) * 100);
  if (cpu0 !== undefined && cpu1 !== undefined) {
    let total = 0;
    const byNode: Record<string, number> = {};
    for (const [id, ms] of Object.entries(cpu1)) {
      const delta = ms - (cpu0[id] ?? ms);
      total += delta;
      byNode[id] = round1((delta / elapsedMs) * 100);
    }
    result.nodeCpuPercent = byNode;
    const perOp = cpuMsPerOp(total, ops);
    if (perOp !== undefined) result.cpuMsPerOp = perOp;
  }
  return result;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
