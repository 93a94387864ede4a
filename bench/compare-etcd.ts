// `npm run bench -- --compare etcd`: a fresh three-member etcd and a fresh three-node quorumkv, up
// together on loopback with the same raft timing, and the same closed-loop workloads run on both,
// alternating system by system, in one run. etcd is driven by a bare grpc-js client of its KV API
// (bench/etcd.ts), quorumkv by its SDK. Printed as ratios quorumkv / etcd: the two clusters share
// the same (noisy, shared) cores at the same minute, so the ratios are what to read, not the
// absolute numbers.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type KvClient } from '../src/index.js';
import { BenchCluster, type BenchRaftSettings } from './cluster.js';
import { agreedLeader, waitForLeader, waitForSettle } from './cluster-status.js';
import { cpuMsByNode, totalCpuMs } from './cpu.js';
import { BenchClusterError } from './errors.js';
import { EtcdCluster, EtcdKv, etcdTiming, findEtcd } from './etcd.js';
import { runLoadPhase } from './load.js';
import type { Progress } from './progress.js';
import type { LoadResult, Workload } from './results.js';
import { srcFingerprint } from './src-fingerprint.js';
import { fmtMs, fmtRate, renderTable } from './table.js';
import { makeOperation, type Operation } from './workloads.js';

export type EtcdOp = 'put' | 'range-linearizable' | 'range-serializable';

export interface ComparePair {
  id: string;
  label: string;
  quorumkv: Workload;
  etcd: EtcdOp;
  concurrency: number;
}

/** The workloads of issue 12, each as (quorumkv workload, the etcd call that matches it). */
export const COMPARE_PAIRS: readonly ComparePair[] = [
  { id: 'sync-put-c1', label: 'sync put / put', quorumkv: 'put-sync', etcd: 'put', concurrency: 1 },
  { id: 'sync-put-c16', label: 'sync put / put', quorumkv: 'put-sync', etcd: 'put', concurrency: 16 },
  { id: 'sync-put-c256', label: 'sync put / put', quorumkv: 'put-sync', etcd: 'put', concurrency: 256 },
  { id: 'async-put-c16', label: 'async put / put', quorumkv: 'put-async', etcd: 'put', concurrency: 16 },
  { id: 'lin-get-c16', label: 'linearizable get / get', quorumkv: 'get-linearizable', etcd: 'range-linearizable', concurrency: 16 },
  { id: 'follower-get-c16', label: 'follower get / serializable get', quorumkv: 'get-follower', etcd: 'range-serializable', concurrency: 16 },
];

export type CompareSystemName = 'etcd' | 'quorumkv';

export interface ComparePhase {
  pair: string;
  rep: number;
  system: CompareSystemName;
  result: LoadResult;
  /** The system's leader (or term) differed after this phase from before it. */
  leaderChanged?: boolean;
}

export interface IdleCpu {
  /** Percent of one core, the three server processes together. */
  etcdPercent?: number;
  quorumkvPercent?: number;
  windowMs: number;
}

export interface CompareEtcdResult {
  etcdVersion: string;
  etcdBin: string;
  raft: BenchRaftSettings;
  heartbeatMs: number;
  electionMs: number;
  durationMs: number;
  warmupMs: number;
  reps: number;
  valueSize: number;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  /** Hash of src/ when the phase started (the quorumkv nodes run it through tsx). */
  srcFingerprint: string;
  idle: IdleCpu;
  phases: ComparePhase[];
  /** Leader changes seen between phases, per system (none is the expected case). */
  leaderChanges: string[];
  warnings: string[];
  error?: string;
}

export interface CompareOptions {
  raft: BenchRaftSettings;
  durationMs: number;
  warmupMs: number;
  reps: number;
  valueSize: number;
  progress: Progress;
  /** Where the members' logs are copied when the phase ends (elections, slow fsyncs, errors). */
  saveLogsTo?: string;
  /** The clusters, as soon as they exist, so a signal handler can stop them. */
  onClusters?: (stop: () => Promise<void>) => void;
}

const READ_KEYS = 1024;
const LEADER_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 15_000;
const IDLE_WINDOW_MS = 4000;

/** Steps the progress display counts for this phase (start, preload, idle, the phases, stop). */
export function compareSteps(reps: number): number {
  return 3 + reps * COMPARE_PAIRS.length * 2 + 1;
}

/** Rough wall time of the phase, for the note printed before it starts. */
export function estimateCompareMs(reps: number, durationMs: number, warmupMs: number): number {
  return reps * COMPARE_PAIRS.length * 2 * (durationMs + warmupMs + 300) + IDLE_WINDOW_MS + 15_000;
}

/** The etcd to compare with, or the one-line note printed instead when no etcd is on PATH. */
export function etcdAvailability(): { bin: string; version: string } | { skip: string } {
  const found = findEtcd();
  return found ?? { skip: 'compare etcd: skipped, no `etcd` binary on PATH (Debian: apt-get install etcd-server)' };
}

async function preloadKeys(keys: readonly string[], put: (k: string) => Promise<void>, concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) await put(keys[next++]!);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function etcdOperation(kv: EtcdKv, op: EtcdOp, value: Uint8Array, readKeys: readonly string[], prefix: string): Operation {
  let n = 0;
  switch (op) {
    case 'put':
      return async () => {
        await kv.put(prefix + (n++).toString(36), value);
      };
    case 'range-linearizable':
    case 'range-serializable': {
      const serializable = op === 'range-serializable';
      return async () => {
        if (!(await kv.get(readKeys[n++ % readKeys.length]!, serializable))) throw new Error('preloaded key missing on an etcd read');
      };
    }
  }
}

function isWrite(p: ComparePair): boolean {
  return p.etcd === 'put';
}

export async function runCompareEtcd(etcd: { bin: string; version: string }, o: CompareOptions): Promise<CompareEtcdResult> {
  const { heartbeatMs, electionMs } = etcdTiming(o.raft);
  const result: CompareEtcdResult = {
    etcdVersion: etcd.version,
    etcdBin: etcd.bin,
    raft: o.raft,
    heartbeatMs,
    electionMs,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
    reps: o.reps,
    valueSize: o.valueSize,
    loadAvgStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    srcFingerprint: srcFingerprint(),
    idle: { windowMs: IDLE_WINDOW_MS },
    phases: [],
    leaderChanges: [],
    warnings: [],
  };
  const { progress } = o;
  const warn = (line: string): void => {
    result.warnings.push(line);
    progress.log(`warning: ${line}`);
  };

  let qkv: BenchCluster | undefined;
  let etc: EtcdCluster | undefined;
  let client: KvClient | undefined;
  let kv: EtcdKv | undefined;
  const stopAll = async (): Promise<void> => {
    kv?.close();
    if (o.saveLogsTo) rmSync(o.saveLogsTo, { recursive: true, force: true });
    await Promise.all([
      qkv?.stop(5000, o.saveLogsTo ? path.join(o.saveLogsTo, 'quorumkv') : undefined),
      etc?.stop(5000, o.saveLogsTo ? path.join(o.saveLogsTo, 'etcd') : undefined),
    ]);
  };
  o.onClusters?.(stopAll);

  try {
    progress.step(`compare etcd: starting etcd ${etcd.version} and quorumkv, 3 members each (heartbeat ${heartbeatMs} ms, election ${electionMs} ms)`);
    // Both start together; neither is measured until both have a leader everyone agrees on.
    // allSettled: if one fails to start, the other is still assigned and stopped in finally.
    const started = await Promise.allSettled([
      EtcdCluster.start({ bin: etcd.bin, raft: o.raft }).then((c) => (etc = c)),
      BenchCluster.start({ size: 3, raft: o.raft }).then((c) => (qkv = c)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    if (!etc || !qkv) throw new BenchClusterError('a cluster did not start');
    kv = new EtcdKv(etc.endpoints);
    client = await connect({ endpoints: qkv.endpoints, deadlineMs: 10_000, discover: false });
    const qc = client;
    const qcluster = qkv;
    const [etcdLeader0, qkvLeader0] = await Promise.all([
      etc.waitForLeader(kv, LEADER_TIMEOUT_MS),
      waitForLeader(qc, 3, LEADER_TIMEOUT_MS, () => qcluster.exitedNodes()),
    ]);
    let etcdLeader = etcdLeader0;
    let qkvLeader = qkvLeader0;
    progress.log(
      `compare etcd: etcd leader ${etcdLeader.name} (${etc.members.map((m) => `${m.name}=${m.clientAddress} pid ${m.pid}`).join(', ')}); ` +
        `quorumkv leader ${qkvLeader.id} (${qkv.nodes.map((n) => `${n.id}=${n.clientAddress} pid ${n.pid}`).join(', ')})`,
    );

    progress.step(`compare etcd: preloading ${READ_KEYS} keys into each`);
    const tag = randomBytes(4).toString('hex');
    const value = randomBytes(o.valueSize);
    const readKeys = Array.from({ length: READ_KEYS }, (_, i) => `bench/${tag}/r/${i.toString().padStart(4, '0')}`);
    const ekv = kv;
    await preloadKeys(readKeys, (k) => ekv.put(k, value));
    await preloadKeys(readKeys, async (k) => {
      await qc.put(k, value, { durability: 'sync' });
    });
    await settleBoth(ekv, qc, warn, 'preload');

    progress.step(`compare etcd: idle CPU of both clusters over ${IDLE_WINDOW_MS / 1000} s`);
    {
      const e0 = totalCpuMs(etc.cpuNodes.map((n) => n.pid));
      const q0 = totalCpuMs(qkv.pids);
      const t0 = performance.now();
      await sleep(IDLE_WINDOW_MS);
      const e1 = totalCpuMs(etc.cpuNodes.map((n) => n.pid));
      const q1 = totalCpuMs(qkv.pids);
      const dt = performance.now() - t0;
      if (e0 !== undefined && e1 !== undefined) result.idle.etcdPercent = ((e1 - e0) * 100) / dt;
      if (q0 !== undefined && q1 !== undefined) result.idle.quorumkvPercent = ((q1 - q0) * 100) / dt;
      result.idle.windowMs = dt;
    }

    const ctx = { client: qc, value, readKeys, keyPrefix: `bench/${tag}/w` };
    const ecluster = etc;
    for (let rep = 1; rep <= o.reps; rep++) {
      // Alternate which system goes first, so a drift in the machine's load (other tenants, a
      // growing log) does not always favour the same one.
      const order: CompareSystemName[] = rep % 2 === 1 ? ['etcd', 'quorumkv'] : ['quorumkv', 'etcd'];
      for (const pair of COMPARE_PAIRS) {
        for (const system of order) {
          progress.step(`compare etcd: rep ${rep}/${o.reps} ${pair.label} c=${pair.concurrency} on ${system}`);
          const deadE = ecluster.exitedMembers();
          const deadQ = qcluster.exitedNodes();
          if (deadE.length > 0) throw new BenchClusterError(`etcd member ${deadE.join(', ')} exited during the comparison`, ecluster.logTails());
          if (deadQ.length > 0) throw new BenchClusterError(`quorumkv node ${deadQ.join(', ')} exited during the comparison`, qcluster.logTails());
          const phaseTag = `${pair.id}-r${rep}`;
          const r = await runLoadPhase({
            workload: pair.quorumkv,
            concurrency: pair.concurrency,
            durationMs: o.durationMs,
            warmupMs: o.warmupMs,
            op: system === 'etcd' ? etcdOperation(ekv, pair.etcd, value, readKeys, `bench/${tag}/e/${phaseTag}/`) : makeOperation(pair.quorumkv, ctx, phaseTag),
            nodeCpuMs: () => (system === 'etcd' ? cpuMsByNode(ecluster.cpuNodes) : cpuMsByNode(qcluster.nodes)),
            onTick: (ops) => progress.detail(`${ops} ops`),
          });
          const phase: ComparePhase = { pair: pair.id, rep, system, result: r };
          result.phases.push(phase);
          if (r.errors > 0) warn(`${r.errors} errors on ${system} in ${pair.id} rep ${rep}: ${r.firstError}`);
          if (isWrite(pair)) {
            const settled = system === 'etcd' ? await ekv.waitForSettle(SETTLE_TIMEOUT_MS) : await waitForSettle(qc, 3, SETTLE_TIMEOUT_MS);
            if (!settled) warn(`${system}'s followers had not caught up ${SETTLE_TIMEOUT_MS} ms after ${pair.id} rep ${rep}`);
          }
          // The leader after every phase: a change means an election ran during it (or its settle),
          // and that phase's numbers include the unavailability.
          const where = `${pair.id} rep ${rep}`;
          if (system === 'etcd') {
            const e = await ekv.refreshLeader();
            const eName = e ? ecluster.members[e.index]!.name : undefined;
            if (!e || eName !== etcdLeader.name || e.term !== etcdLeader.term) {
              phase.leaderChanged = true;
              const line = `etcd leader after ${where}: ${etcdLeader.name} term ${etcdLeader.term} -> ${e ? `${eName} term ${e.term}` : 'no agreed leader'}`;
              result.leaderChanges.push(line);
              warn(line);
              if (e && eName) etcdLeader = { name: eName, term: e.term };
            }
          } else {
            const q = agreedLeader(await qc.status({ deadlineMs: 2000 }), 3);
            if (!q || q.id !== qkvLeader.id || q.term !== qkvLeader.term) {
              phase.leaderChanged = true;
              const line = `quorumkv leader after ${where}: ${qkvLeader.id} term ${qkvLeader.term} -> ${q ? `${q.id} term ${q.term}` : 'no agreed leader'}`;
              result.leaderChanges.push(line);
              warn(line);
              if (q) qkvLeader = q;
            }
          }
        }
      }
    }
  } catch (e) {
    const err = e as Error;
    result.error = `${err.name}: ${err.message}`;
    const tails = err instanceof BenchClusterError && Object.keys(err.logTails).length > 0 ? err.logTails : { ...etc?.logTails(), ...qkv?.logTails() };
    for (const [id, tail] of Object.entries(tails)) progress.log(`--- last lines of ${id}'s log ---\n${tail}`);
  } finally {
    progress.step('compare etcd: stopping both clusters');
    await client?.close().catch(() => undefined);
    await stopAll();
    result.loadAvgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  }
  return result;
}

async function settleBoth(kv: EtcdKv, client: KvClient, warn: (l: string) => void, after: string): Promise<void> {
  const [e, q] = await Promise.all([kv.waitForSettle(SETTLE_TIMEOUT_MS), waitForSettle(client, 3, SETTLE_TIMEOUT_MS)]);
  if (!e) warn(`etcd's members had not applied the leader's log ${SETTLE_TIMEOUT_MS} ms after ${after}`);
  if (!q) warn(`quorumkv's followers had not applied the leader's log ${SETTLE_TIMEOUT_MS} ms after ${after}`);
}

// ---- ratios and rendering (pure) ---------------------------------------------------------------

export interface PairRatios {
  pair: string;
  rep: number;
  etcd: LoadResult;
  quorumkv: LoadResult;
  /** Which side saw a leader change during its phase. */
  leaderChanged?: CompareSystemName[];
  /** quorumkv / etcd; undefined when either side lacks the number (no op completed). */
  opsPerSec?: number;
  p50?: number;
  p99?: number;
  cpuPerOp?: number;
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 && Number.isFinite(a) && Number.isFinite(b) ? a / b : undefined;
}

export function pairRatios(phases: readonly ComparePhase[]): PairRatios[] {
  const out: PairRatios[] = [];
  for (const pair of COMPARE_PAIRS) {
    const reps = [...new Set(phases.filter((p) => p.pair === pair.id).map((p) => p.rep))].sort((a, b) => a - b);
    for (const rep of reps) {
      const ep = phases.find((p) => p.pair === pair.id && p.rep === rep && p.system === 'etcd');
      const qp = phases.find((p) => p.pair === pair.id && p.rep === rep && p.system === 'quorumkv');
      if (!ep || !qp) continue;
      const e = ep.result;
      const q = qp.result;
      const r: PairRatios = { pair: pair.id, rep, etcd: e, quorumkv: q };
      const changed = [ep, qp].filter((p) => p.leaderChanged).map((p) => p.system);
      if (changed.length > 0) r.leaderChanged = changed;
      const ops = ratio(q.ops > 0 ? q.opsPerSec : undefined, e.ops > 0 ? e.opsPerSec : undefined);
      const p50 = ratio(q.latency?.p50Ms, e.latency?.p50Ms);
      const p99 = ratio(q.latency?.p99Ms, e.latency?.p99Ms);
      const cpu = ratio(q.cpuMsPerOp, e.cpuMsPerOp);
      if (ops !== undefined) r.opsPerSec = ops;
      if (p50 !== undefined) r.p50 = p50;
      if (p99 !== undefined) r.p99 = p99;
      if (cpu !== undefined) r.cpuPerOp = cpu;
      out.push(r);
    }
  }
  return out;
}

export interface CompareTarget {
  description: string;
  /** One verdict per rep (or one for idle). */
  values: { rep?: number; actual: number; pass: boolean }[];
  limit: string;
}

/** Issue 12's targets, as ratios within one run. Reported, never asserted. */
export function compareTargets(result: Pick<CompareEtcdResult, 'phases' | 'idle'>): CompareTarget[] {
  const ratios = pairRatios(result.phases);
  const pick = (pair: string, f: (r: PairRatios) => number | undefined, ok: (x: number) => boolean): CompareTarget['values'] =>
    ratios
      .filter((r) => r.pair === pair)
      .flatMap((r) => {
        const v = f(r);
        return v === undefined ? [] : [{ rep: r.rep, actual: v, pass: ok(v) }];
      });
  const out: CompareTarget[] = [
    {
      description: 'sync put c=1: p50 <= 0.7 x etcd',
      limit: '<= 0.7x',
      values: pick(
        'sync-put-c1',
        (r) => r.p50,
        (x) => x <= 0.7,
      ),
    },
    {
      description: 'sync put c=1: server CPU/op <= 1 x etcd',
      limit: '<= 1x',
      values: pick(
        'sync-put-c1',
        (r) => r.cpuPerOp,
        (x) => x <= 1,
      ),
    },
    {
      description: 'sync put c=256: server CPU/op <= 1 x etcd',
      limit: '<= 1x',
      values: pick(
        'sync-put-c256',
        (r) => r.cpuPerOp,
        (x) => x <= 1,
      ),
    },
    {
      description: 'sync put c=256: ops/s >= 2 x etcd',
      limit: '>= 2x',
      values: pick(
        'sync-put-c256',
        (r) => r.opsPerSec,
        (x) => x >= 2,
      ),
    },
    {
      description: 'linearizable get c=16: ops/s >= 3 x etcd',
      limit: '>= 3x',
      values: pick(
        'lin-get-c16',
        (r) => r.opsPerSec,
        (x) => x >= 3,
      ),
    },
  ];
  const { etcdPercent, quorumkvPercent } = result.idle;
  const idleRatio = ratio(quorumkvPercent, etcdPercent);
  out.push({
    description: 'idle cluster CPU: quorumkv <= etcd',
    limit: '<= 1x',
    values:
      quorumkvPercent !== undefined && etcdPercent !== undefined
        ? [{ actual: idleRatio ?? (quorumkvPercent <= 0 ? 0 : Number.POSITIVE_INFINITY), pass: quorumkvPercent <= etcdPercent }]
        : [],
  });
  return out;
}

const fx = (x: number | undefined): string => (x === undefined ? '-' : Number.isFinite(x) ? `${x.toFixed(2)}x` : 'inf');

export function renderCompareEtcd(result: CompareEtcdResult): string {
  const out: string[] = [];
  out.push(
    `compare etcd: etcd ${result.etcdVersion} (${result.etcdBin}, bare grpc-js on its KV API) vs quorumkv (SDK); 3 members each on loopback, ` +
      `heartbeat ${result.heartbeatMs} ms, election ${result.electionMs} ms; ${result.valueSize}-byte values; ${result.durationMs} ms per phase after ${result.warmupMs} ms warm-up; ` +
      `${result.reps} rep(s), systems alternating; quorumkv src/ ${result.srcFingerprint}`,
  );
  out.push(
    `load average at start ${result.loadAvgStart.join(' / ')}${result.loadAvgEnd ? `, at end ${result.loadAvgEnd.join(' / ')}` : ''} — ` +
      'both clusters and the client share this machine: read the ratios (same minute, same cores), not the absolute numbers',
  );
  const idle = result.idle;
  out.push(
    `idle CPU over ${(idle.windowMs / 1000).toFixed(1)} s (3 server processes, % of one core): etcd ${idle.etcdPercent?.toFixed(1) ?? '-'}%, ` +
      `quorumkv ${idle.quorumkvPercent?.toFixed(1) ?? '-'}%` +
      (idle.etcdPercent && idle.quorumkvPercent !== undefined ? ` (quorumkv / etcd ${fx(idle.quorumkvPercent / idle.etcdPercent)})` : ''),
  );
  out.push('');
  out.push(
    'x = quorumkv / etcd (ops/s: higher is better for quorumkv; p50, p99, cpu/op: lower is better); cpu/op = utime+stime of the 3 server processes / ops',
  );
  out.push("rep! = a leader change (an election) was seen right after that row's phase: its numbers include the unavailability");
  const rows: string[][] = [];
  for (const r of pairRatios(result.phases)) {
    const pair = COMPARE_PAIRS.find((p) => p.id === r.pair)!;
    const e = r.etcd;
    const q = r.quorumkv;
    rows.push([
      pair.label,
      `c=${pair.concurrency}`,
      `${r.rep}${r.leaderChanged ? '!' : ''}`,
      fmtRate(e.opsPerSec),
      fmtMs(e.latency?.p50Ms),
      fmtMs(e.latency?.p99Ms),
      fmtMs(e.cpuMsPerOp),
      fmtRate(q.opsPerSec),
      fmtMs(q.latency?.p50Ms),
      fmtMs(q.latency?.p99Ms),
      fmtMs(q.cpuMsPerOp),
      fx(r.opsPerSec),
      fx(r.p50),
      fx(r.p99),
      fx(r.cpuPerOp),
      `${e.errors}/${q.errors}`,
    ]);
  }
  if (rows.length > 0) {
    out.push(
      renderTable(
        [
          'workload (quorumkv / etcd)',
          'load',
          'rep',
          'etcd ops/s',
          'p50 ms',
          'p99 ms',
          'cpu ms/op',
          'qkv ops/s',
          'p50 ms',
          'p99 ms',
          'cpu ms/op',
          'ops/s x',
          'p50 x',
          'p99 x',
          'cpu/op x',
          'errors e/q',
        ],
        rows,
        [false, false, true, true, true, true, true, true, true, true, true, true, true, true, true, true],
      ),
    );
  }
  out.push('');
  out.push('issue 12 targets (ratios within this run):');
  for (const t of compareTargets(result)) {
    if (t.values.length === 0) {
      out.push(`  SKIP  ${t.description}: not measured`);
      continue;
    }
    const pass = t.values.every((v) => v.pass);
    const detail = t.values.map((v) => `${v.rep !== undefined ? `rep ${v.rep} ` : ''}${fx(v.actual)}`).join(', ');
    out.push(`  ${(pass ? 'PASS' : 'MISS').padEnd(4)}  ${t.description}: ${detail}`);
  }
  for (const l of result.leaderChanges) out.push(`  leader change: ${l}`);
  for (const w of result.warnings) if (!result.leaderChanges.includes(w)) out.push(`  warning: ${w}`);
  if (result.error) out.push(`compare phase stopped early: ${result.error}`);
  return out.join('\n');
}
