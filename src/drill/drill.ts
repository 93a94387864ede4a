// `quorumkv drill`: run a seeded fault schedule against a real cluster under a concurrent SDK
// workload, record the full history, check it, and report RTO per fault kind and RPO.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from '../client/kv-client.js';
import type { KvClient } from '../client/kv-client.js';
import { DEFAULT_RAFT_SETTINGS } from '../process/config.js';
import { checkHistory } from './checks.js';
import type { CheckReport } from './checks.js';
import { DrillCluster } from './drill-cluster.js';
import type { DrillRaftTiming } from './drill-cluster.js';
import type { FaultKind, HistoryOp, SavedHistory } from './history.js';
import { Nemesis } from './nemesis.js';
import { measureRecovery } from './recovery.js';
import type { RecoverySummary } from './recovery.js';
import { clockSince, Workload } from './workload.js';

export interface DrillOptions {
  durationMs: number;
  seed: number;
  clients: number;
  keys: number;
  thinkMs: number;
  /** Drive this cluster (client addresses) instead of starting one: only switchovers are injected. */
  endpoints?: string[];
  raft: DrillRaftTiming;
  kinds?: readonly FaultKind[];
  /** Where a failing history is saved. */
  outDir: string;
  /** Also check a copy of the history with injected stale reads (the checker must flag them). */
  injectStaleReads: boolean;
  /** Keep each node's output, at log level info, in `<logDir>/<id>.log`. */
  logDir?: string;
  log: (line: string) => void;
}

export interface DrillResult {
  seed: number;
  durationMs: number;
  cluster: 'started' | 'given';
  raft: DrillRaftTiming;
  check: CheckReport;
  recovery: RecoverySummary;
  faults: SavedHistory['faults'];
  hungLeaderSwitches: number;
  /**
   * --self-test: stale reads injected into a copy of the history (read op ids), the ops the
   * checker flagged there, and whether it flagged (at least) as many keys as were tampered with.
   */
  selfTest?: { injected: number[]; flagged: number[]; passed: boolean };
  /** Set when the history was saved (a violation was found). */
  savedHistory?: string;
}

export const DRILL_DEFAULTS = Object.freeze({
  durationMs: 60_000,
  clients: 4,
  keys: 4,
  thinkMs: 8,
  raft: Object.freeze({
    tickMs: DEFAULT_RAFT_SETTINGS.tickMs,
    electionTicks: DEFAULT_RAFT_SETTINGS.electionTicks,
    heartbeatTicks: DEFAULT_RAFT_SETTINGS.heartbeatTicks,
  }),
});

/** Per-op deadline of the workload: long enough to ride out one failover, short enough to stay unknown rarely. */
const OP_DEADLINE_MS = 3_000;
const MAX_INJECTED = 5;

/**
 * The self-test: a copy of the history in which a few linearizable reads that returned their key's
 * newest acked value report the value before it instead — chosen where nothing else on the key
 * was in flight since that older write, so each rewritten read is surely stale. Returns the copy
 * and the ids of the rewritten reads.
 */
export function injectStaleReads(ops: readonly HistoryOp[], max = MAX_INJECTED): { ops: HistoryOp[]; injected: number[] } {
  const copy = ops.map((o) => ({ ...o }));
  const byKey = new Map<string, HistoryOp[]>();
  for (const o of copy) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const injected: number[] = [];
  for (const keyOps of byKey.values()) {
    keyOps.sort((a, b) => a.start - b.start);
    let eligible = 0;
    for (let i = 0; i < keyOps.length && injected.length < max; i++) {
      const r = keyOps[i]!;
      if (r.kind !== 'get' || r.consistency !== 'linearizable' || r.outcome !== 'ok') continue;
      const before = keyOps.slice(0, i).filter((o) => o.kind !== 'get');
      const [older, latest] = before.slice(-2);
      const plain = (o: HistoryOp | undefined) => o?.kind === 'put' && o.durability === 'sync' && o.outcome === 'ok' && o.end !== undefined;
      if (!plain(older) || !plain(latest) || older!.end! >= latest!.start || latest!.end! >= r.start || r.read !== latest!.value) continue;
      if (++eligible % 10 !== 0) continue;
      r.read = older!.value ?? null;
      injected.push(r.id);
      break; // one per key keeps the injected reads independent
    }
  }
  return { ops: copy, injected };
}

export async function runDrill(options: DrillOptions): Promise<DrillResult> {
  const clock = clockSince();
  const log = options.log;
  const cluster = options.endpoints
    ? undefined
    : await DrillCluster.start({ raft: options.raft, ...(options.logDir === undefined ? {} : { logDir: options.logDir }) });
  const endpoints = options.endpoints ?? cluster!.endpoints;
  let admin: KvClient | undefined;
  let workload: Workload | undefined;
  // Ctrl-C: no node process, proxy or temp dir outlives the drill.
  const onSignal = (): void => {
    void (cluster?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    admin = await connect({ endpoints, deadlineMs: 2_000 });
    workload = new Workload({
      endpoints,
      clients: options.clients,
      keys: options.keys,
      seed: options.seed,
      thinkMs: options.thinkMs,
      deadlineMs: OP_DEADLINE_MS,
      clock,
    });
    const kinds = cluster ? options.kinds : (['switchover'] as const);
    const nemesis = new Nemesis(cluster, admin, {
      seed: options.seed,
      electionTimeoutMaxMs: options.raft.tickMs * options.raft.electionTicks * 2,
      clock,
      log,
      ...(kinds && kinds.length > 0 ? { kinds } : {}),
    });
    log(
      `drill seed ${options.seed}: ${cluster ? `started ${cluster.nodes.length} nodes in ${cluster.root}` : `driving ${endpoints.join(',')}`}; faults in seeded order: ${nemesis.preview(8).join(', ')}, ...`,
    );
    await workload.start();
    await nemesis.run(options.durationMs);
    await workload.stop();
    await workload.finalReads();
    return await finish(options, workload, nemesis.faults, cluster ? 'started' : 'given', clock);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await workload?.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await cluster?.close();
  }
}

async function finish(
  options: DrillOptions,
  workload: Workload,
  faults: SavedHistory['faults'],
  cluster: DrillResult['cluster'],
  clock: () => number,
): Promise<DrillResult> {
  const ops = workload.ops;
  const check = checkHistory(ops);
  const recovery = measureRecovery(faults, ops, workload.syncAcks);
  const result: DrillResult = {
    seed: options.seed,
    durationMs: Math.round(clock()),
    cluster,
    raft: options.raft,
    check,
    recovery,
    faults,
    hungLeaderSwitches: workload.hungLeaderSwitches(),
  };
  if (options.injectStaleReads) {
    const tampered = injectStaleReads(ops);
    const flagged = checkHistory(tampered.ops)
      .violations.filter((v) => v.kind === 'not-linearizable')
      .map((v) => v.ops[0]!);
    result.selfTest = { injected: tampered.injected, flagged, passed: tampered.injected.length > 0 && flagged.length >= tampered.injected.length };
  }
  if (!check.ok) result.savedHistory = await saveHistory(options.outDir, { format: 'quorumkv-drill-history/1', seed: options.seed, ops, faults });
  return result;
}

export async function saveHistory(dir: string, history: SavedHistory): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.resolve(dir, `drill-history-seed${history.seed}-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(history));
  return file;
}

/** Human-readable report. */
export function formatReport(r: DrillResult): string {
  const lines: string[] = [];
  const c = r.check.counted;
  lines.push(
    `drill seed ${r.seed}: ${(r.durationMs / 1000).toFixed(1)} s, ${r.cluster} cluster, election timeout ${r.raft.tickMs * r.raft.electionTicks}-${r.raft.tickMs * r.raft.electionTicks * 2} ms`,
  );
  lines.push(
    `history: ${c.ops} ops (${c.linearizabilityOps} in the linearizability check, ${c.followerReads} follower/session reads, ${c.sessionReads} session)`,
  );
  lines.push(
    `faults: ${r.faults.length}; SDK moved off a hung leader ${r.hungLeaderSwitches} times; spurious leader changes: ${r.recovery.spuriousLeaderChanges}`,
  );
  lines.push('');
  lines.push(
    `${'fault'.padEnd(22)}${'count'.padStart(6)}${'RTO p50'.padStart(10)}${'RTO max'.padStart(10)}${'elected p50'.padStart(13)}${'async lost'.padStart(12)}`,
  );
  for (const k of r.recovery.byKind) {
    const ms = (v: number | undefined) => (v === undefined ? '-' : `${v} ms`);
    lines.push(
      `${k.kind.padEnd(22)}${String(k.count).padStart(6)}${ms(k.rtoP50Ms).padStart(10)}${ms(k.rtoMaxMs).padStart(10)}${ms(k.electionP50Ms).padStart(13)}${String(k.asyncLost).padStart(12)}${k.unmeasured ? `  (${k.unmeasured} unmeasured)` : ''}`,
    );
  }
  lines.push(
    `RPO: ${r.recovery.asyncLost} of ${r.recovery.asyncWrites} async writes reported lost (every one reported, none silent); sync writes: 0 by design, checked below`,
  );
  if (r.selfTest) {
    lines.push(
      `self-test: ${r.selfTest.injected.length} stale reads injected into a copy of the history (ops ${r.selfTest.injected.join(', ')}); the checker flagged ${r.selfTest.flagged.length} key(s): ${r.selfTest.passed ? 'passed' : 'FAILED'}`,
    );
  }
  lines.push('');
  if (r.check.ok) lines.push('checks: OK (linearizable; no acked write lost; async receipts truthful; minIndex honoured; session reads monotonic)');
  else {
    lines.push(`checks: ${r.check.violations.length + r.check.omitted} VIOLATION(S)`);
    for (const v of r.check.violations) lines.push(`  [${v.kind}] ${v.message}`);
    if (r.check.omitted) lines.push(`  ... and ${r.check.omitted} more`);
    if (r.savedHistory) lines.push(`history saved: ${r.savedHistory} (re-check: quorumkv drill --check ${r.savedHistory})`);
  }
  return lines.join('\n');
}
