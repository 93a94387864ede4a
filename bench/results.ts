// The shapes of what one bench run measured (also the schema of bench/results/latest.json).
import type { LatencySummary } from './stats.js';

export type Workload = 'put-sync' | 'put-async' | 'get-linearizable' | 'get-lease' | 'get-follower';

export const WORKLOADS: readonly Workload[] = ['put-sync', 'put-async', 'get-linearizable', 'get-lease', 'get-follower'];

export const WORKLOAD_LABEL: Record<Workload, string> = {
  'put-sync': 'sync put',
  'put-async': 'async put',
  'get-linearizable': 'linearizable get',
  'get-lease': 'lease get',
  'get-follower': 'follower get',
};

export interface FloorResult {
  fsync: {
    /** The directory whose filesystem was measured (the cluster's temp data root). */
    dir: string;
    blockBytes: number;
    samples: number;
    p50Ms: number;
    p99Ms: number;
  };
  loopback: {
    /** 'ping': the node's Ping RPC; 'in-process-echo': a grpc-js echo server in the bench process. */
    source: 'ping' | 'in-process-echo';
    samples: number;
    p50Ms: number;
    p99Ms: number;
  };
}

/** One Benchmark.js measurement: single client, one operation at a time. */
export interface MicroResult {
  workload: Workload;
  meanMs: number;
  /** Relative margin of error of the mean, percent. */
  rmePercent: number;
  /** Benchmark.js cycles sampled (each cycle runs many operations). */
  samples: number;
  opsPerSec: number;
  errors: number;
  firstError?: string;
}

/** One closed-loop phase: `concurrency` workers, each issuing its next operation when the last ends. */
export interface LoadResult {
  workload: Workload;
  concurrency: number;
  /** Operations that completed successfully inside the timed window. */
  ops: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  opsPerSec: number;
  latency?: LatencySummary;
  /** Sum of the three node processes' utime+stime over the phase, divided by ops. */
  cpuMsPerOp?: number;
  /**
   * The bench process's own CPU (SDK + load generator) per op: it shares the machine with the
   * nodes, so when nodes + client reach the core count, throughput is capped by the box.
   */
  clientCpuMsPerOp?: number;
  /** Each node's CPU over the phase, percent of one core: shows whether the leader is the bottleneck. */
  nodeCpuPercent?: Record<string, number>;
  /** The bench process's CPU over the phase, percent of one core. */
  clientCpuPercent?: number;
}

export interface LeaderSnapshot {
  id: string;
  term: number;
}

export interface LeaderChange {
  /** The phase after which the change was seen (the change happened during it or just before). */
  seenAfter: string;
  from: LeaderSnapshot;
  /** undefined when the nodes did not agree on a leader at that moment. */
  to?: LeaderSnapshot;
}

export interface LeaderCheck {
  before: LeaderSnapshot;
  after?: LeaderSnapshot;
  /** undefined when the leader could not be read at the end. */
  changed?: boolean;
  /** Checked after every phase, to say when a change happened. */
  changes: LeaderChange[];
}

export type TargetStatus = 'PASS' | 'MISS' | 'SKIP';

export interface TargetCheck {
  id: string;
  description: string;
  status: TargetStatus;
  /** The numbers behind the verdict, in words. */
  detail: string;
  actual?: number;
  limit?: number;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  nodeVersion: string;
  platform: string;
  totalMemoryBytes: number;
  date: string;
  /** os.loadavg() at the start and the end: above `cores`, other processes competed for the CPU. */
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

export interface BenchReport {
  machine: MachineInfo;
  config: Record<string, unknown>;
  floor?: FloorResult;
  /** Cluster CPU while idle (ticks, heartbeats): the background part of every cpu-per-op figure. */
  idleClusterCpuPercent?: number;
  micro: MicroResult[];
  load: LoadResult[];
  leader?: LeaderCheck;
  targets: TargetCheck[];
  /** Set when the run stopped early; the results above are what was measured until then. */
  error?: string;
}
