// One seed, one run of the real runtime: build the cluster, drive it, report what the checkers found.

import type { Violation } from './checkers.js';
import { type ClusterOptions, type ClusterStats, type FaultProfile, type Sabotage, SimCluster } from './cluster.js';
import { traceHash } from './trace.js';

export interface RunOptions {
  /** Bootstrap voters, 3 or 5 (default: drawn from the seed). */
  nodes?: number;
  spares?: number;
  /** Ticks with faults and workload before the liveness phase. Default 400. */
  faultTicks?: number;
  /** After faults stop, progress is required within this many election timeouts. Default 20. */
  livenessElections?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  profile?: Partial<FaultProfile>;
  /** Keep (and return) every trace line instead of the last 50. */
  trace?: boolean;
  /** Deliberately break one rule (checker self-test); see ClusterOptions.sabotage. */
  sabotage?: Sabotage;
}

export interface RunResult {
  seed: number;
  ok: boolean;
  ticks: number;
  violations: Violation[];
  /** Human-readable failure (checker, seed, tick, trace tail) when !ok. */
  error?: string;
  /** The full trace with `trace: true`, otherwise the last 50 lines. */
  trace: string[];
  traceHash: string;
  nodes: number;
  profile: FaultProfile;
  stats: ClusterStats;
}

/** The CLI options that replay a run made with `options` (beyond its seed). */
export function replayArgs(options: RunOptions): string {
  let args = '';
  if (options.nodes !== undefined) args += ` --nodes ${options.nodes}`;
  if (options.faultTicks !== undefined) args += ` --ticks ${options.faultTicks}`;
  if (options.sabotage !== undefined) args += ` --sabotage ${options.sabotage}`;
  if (options.profile !== undefined) args += ` --profile '${JSON.stringify(options.profile)}'`;
  return args;
}

export async function runSeed(seed: number, options: RunOptions = {}): Promise<RunResult> {
  const clusterOptions: ClusterOptions = { seed, trace: options.trace ?? false };
  if (options.nodes !== undefined) clusterOptions.nodes = options.nodes;
  if (options.spares !== undefined) clusterOptions.spares = options.spares;
  if (options.electionTicks !== undefined) clusterOptions.electionTicks = options.electionTicks;
  if (options.heartbeatTicks !== undefined) clusterOptions.heartbeatTicks = options.heartbeatTicks;
  if (options.profile !== undefined) clusterOptions.profile = options.profile;
  if (options.sabotage !== undefined) clusterOptions.sabotage = options.sabotage;
  const cluster = new SimCluster(clusterOptions);
  const violation = await cluster.run(options.faultTicks ?? 400, options.livenessElections ?? 20);
  const trace = cluster.trace.lines();
  const result: RunResult = {
    seed,
    ok: violation === null,
    ticks: cluster.tick,
    violations: violation ? [violation] : [],
    trace,
    traceHash: traceHash(trace),
    nodes: cluster.bootstrap.length,
    profile: cluster.profile,
    stats: cluster.stats,
  };
  if (violation) result.error = cluster.violationError(violation, replayArgs(options)).message;
  return result;
}

/** Runs seeds [first, first + count) (each draws 3 or 5 nodes, as `npm run sim` does): the failures and the summed stats. */
export async function runBlock(first: number, count: number, options: RunOptions = {}): Promise<{ failures: string[]; totals: ClusterStats }> {
  const failures: string[] = [];
  let totals: ClusterStats | undefined;
  for (let seed = first; seed < first + count; seed++) {
    const result = await runSeed(seed, options);
    if (!result.ok) failures.push(result.error!);
    if (!totals) totals = { ...result.stats };
    else for (const k of Object.keys(totals) as (keyof ClusterStats)[]) totals[k] += result.stats[k];
  }
  return { failures, totals: totals! };
}
