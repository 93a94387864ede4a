// One seed, one run: build the cluster, drive it, report what the checkers found.

import type { Violation } from './checkers.js';
import { SimCluster, type ClusterOptions, type ClusterStats, type FaultProfile, type Sabotage } from './cluster.js';
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
  /** Deliberately break the runtime's contract (checker self-test); see ClusterOptions.sabotage. */
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

export function runSeed(seed: number, options: RunOptions = {}): RunResult {
  const clusterOptions: ClusterOptions = { seed, trace: options.trace ?? false };
  if (options.nodes !== undefined) clusterOptions.nodes = options.nodes;
  if (options.spares !== undefined) clusterOptions.spares = options.spares;
  if (options.electionTicks !== undefined) clusterOptions.electionTicks = options.electionTicks;
  if (options.heartbeatTicks !== undefined) clusterOptions.heartbeatTicks = options.heartbeatTicks;
  if (options.profile !== undefined) clusterOptions.profile = options.profile;
  if (options.sabotage !== undefined) clusterOptions.sabotage = options.sabotage;
  const cluster = new SimCluster(clusterOptions);
  const violation = cluster.run(options.faultTicks ?? 400, options.livenessElections ?? 20);
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
  if (violation) result.error = cluster.violationError(violation).message;
  return result;
}
