// `npm run bench`: a fresh three-node cluster of real processes, the machine's floor, per-operation
// latency (Benchmark.js), closed-loop load (hdr histograms, cluster CPU per op), a leader check,
// one printed table with the target checks, and bench/results/latest.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type KvClient } from '../src/index.js';
import { HELP, parseBenchArgs, type BenchOptions } from './args.js';
import { BenchCluster, BENCH_RAFT_SETTINGS } from './cluster.js';
import { agreedLeader, waitForLeader, waitForSettle } from './cluster-status.js';
import { cpuMsByNode, totalCpuMs } from './cpu.js';
import { COMPARE_PAIRS, compareSteps, estimateCompareMs, etcdAvailability, renderCompareEtcd, runCompareEtcd, type CompareEtcdResult } from './compare-etcd.js';
import { BenchClusterError, BenchUsageError } from './errors.js';
import { measureFsync, measureLoopback } from './floor.js';
import { runLoadPhase } from './load.js';
import { renderScale, runScale } from './scale.js';
import { runMicro } from './micro.js';
import { createProgress, type Progress } from './progress.js';
import { WORKLOAD_LABEL, WORKLOADS, type BenchReport, type LeaderCheck, type LeaderSnapshot, type MachineInfo, type Workload } from './results.js';
import { srcFingerprint } from './src-fingerprint.js';
import { renderReport } from './table.js';
import { renderTransportCompare, runTransportCompare, type TransportCompareResult } from './transport-compare.js';
import { evaluateTargets, leaderChanged } from './targets.js';
import { makeOperation, type WorkloadContext } from './workloads.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLUSTER_SIZE = 3;
const READ_KEYS = 1024;
const LEADER_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 15_000;
const IDLE_SAMPLE_MS = 1000;

function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    nodeVersion: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryBytes: os.totalmem(),
    date: new Date().toISOString(),
    loadAvgStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function writeJson(file: string, report: BenchReport): string {
  const abs = path.resolve(REPO_ROOT, file);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, `${JSON.stringify(report, null, 2)}\n`);
  return abs;
}

async function preload(client: KvClient, keys: readonly string[], value: Uint8Array, concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) await client.put(keys[next++]!, value, { durability: 'sync' });
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function bench(options: BenchOptions, report: BenchReport, progress: Progress, setCluster: (c: BenchCluster) => void): Promise<void> {
  progress.step('starting a 3-node cluster');
  const cluster = await BenchCluster.start({
    size: CLUSTER_SIZE,
    raft: BENCH_RAFT_SETTINGS,
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
  });
  setCluster(cluster);
  report.config['clusterRoot'] = cluster.root;
  report.config['endpoints'] = cluster.endpoints;

  const client = await connect({ endpoints: cluster.endpoints, deadlineMs: 10_000, discover: false });
  try {
    const before = await waitForLeader(client, CLUSTER_SIZE, LEADER_TIMEOUT_MS, () => cluster.exitedNodes());
    const leader: LeaderCheck = { before, changes: [] };
    report.leader = leader;
    // Terms only grow, so comparing with the last seen leader after each phase catches every
    // election and says which phase it happened in.
    let current: LeaderSnapshot | undefined = before;
    const trackLeader = async (phase: string): Promise<void> => {
      const now = agreedLeader(await client.status({ deadlineMs: 2000 }), CLUSTER_SIZE);
      if (current && now && !leaderChanged(current, now)) return;
      if (!current && !now) return;
      leader.changes.push({ seenAfter: phase, from: current ?? before, ...(now ? { to: now } : {}) });
      progress.log(
        `warning: leader changed by the end of ${phase}: ${current ? `${current.id} term ${current.term}` : 'none'} -> ${now ? `${now.id} term ${now.term}` : 'no agreed leader'}`,
      );
      if (now) current = now;
    };
    progress.log(`leader ${before.id} (term ${before.term}); nodes ${cluster.nodes.map((n) => `${n.id}=${n.clientAddress} pid ${n.pid}`).join(', ')}`);

    progress.step('floor: idle cluster CPU, fdatasync of 4 KiB appends');
    const idle0 = totalCpuMs(cluster.pids);
    const idleT0 = performance.now();
    await sleep(IDLE_SAMPLE_MS);
    const idle1 = totalCpuMs(cluster.pids);
    if (idle0 !== undefined && idle1 !== undefined) report.idleClusterCpuPercent = ((idle1 - idle0) * 100) / (performance.now() - idleT0);
    const fsync = measureFsync(cluster.root, options.fsyncSamples);
    progress.step('floor: gRPC loopback Ping');
    const loopback = await measureLoopback(cluster.endpoints[0]!, options.pingSamples);
    if (loopback.fallbackReason) progress.log(`note: ${loopback.fallbackReason}; used an in-process echo server instead`);
    const { fallbackReason: _ignored, ...loopbackResult } = loopback;
    report.floor = { fsync, loopback: loopbackResult };

    progress.step('transport compare: unary Ping vs one PingStream');
    const transport = await runTransportCompare({
      endpoint: leaderEndpoint(cluster, before.id),
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      serverCpuMs: () => cpuMsByNode(cluster.nodes),
      onPhase: (t, c) => progress.detail(`${t} c=${c}`),
    });
    (report as BenchReport & { transportCompare?: TransportCompareResult }).transportCompare = transport;

    progress.step(`preloading ${READ_KEYS} keys for the reads`);
    const runTag = randomBytes(4).toString('hex');
    const value = randomBytes(options.valueSize);
    const readKeys = Array.from({ length: READ_KEYS }, (_, i) => `bench/${runTag}/r/${i.toString().padStart(4, '0')}`);
    await preload(client, readKeys, value);
    await settle(client, progress, 'preload');
    await trackLeader('floor and preload');
    const ctx: WorkloadContext = { client, value, readKeys, keyPrefix: `bench/${runTag}/w` };

    report.micro = await runMicro(
      WORKLOADS.map((w) => ({ workload: w, op: makeOperation(w, ctx, `micro-${w}`) })),
      {
        maxTimeS: options.microMaxTimeS,
        onStart: (w) => progress.step(`Benchmark.js: ${WORKLOAD_LABEL[w]} (sequential)`),
      },
    );
    await settle(client, progress, 'micro-benchmarks');
    await trackLeader('micro-benchmarks');

    for (const workload of WORKLOADS) {
      for (const concurrency of options.concurrency) {
        progress.step(`load: ${WORKLOAD_LABEL[workload]} at concurrency ${concurrency}`);
        const dead = cluster.exitedNodes();
        if (dead.length > 0) throw new BenchClusterError(`node ${dead.join(', ')} exited during the run`, cluster.logTails());
        const result = await runLoadPhase({
          workload,
          concurrency,
          durationMs: options.durationMs,
          warmupMs: options.warmupMs,
          op: makeOperation(workload, ctx, `${workload}-c${concurrency}`),
          nodeCpuMs: () => cpuMsByNode(cluster.nodes),
          onTick: (ops) => progress.detail(`${ops} ops`),
        });
        report.load.push(result);
        if (result.errors > 0) progress.log(`warning: ${result.errors} errors in ${workload} c=${concurrency}: ${result.firstError}`);
        if (isWrite(workload)) await settle(client, progress, `${workload} c=${concurrency}`);
        await trackLeader(`${workload} c=${concurrency}`);
      }
    }

    progress.step('checking the leader after the run');
    const after = agreedLeader(await client.status({ deadlineMs: 2000 }), CLUSTER_SIZE);
    if (after) {
      leader.after = after;
      leader.changed = leaderChanged(before, after);
    } else progress.log('warning: the nodes do not agree on a leader at the end of the run');
  } finally {
    await client.close();
  }
}

/** The leader's client address (the node the SDK's calls land on), else the first node's. */
function leaderEndpoint(cluster: BenchCluster, leaderId: string): string {
  return cluster.nodes.find((n) => n.id === leaderId)?.clientAddress ?? cluster.endpoints[0]!;
}

function isWrite(w: Workload): boolean {
  return w === 'put-sync' || w === 'put-async';
}

async function settle(client: KvClient, progress: Progress, after: string): Promise<void> {
  if (!(await waitForSettle(client, CLUSTER_SIZE, SETTLE_TIMEOUT_MS))) {
    progress.log(
      `warning: the followers had not applied the leader's log ${SETTLE_TIMEOUT_MS} ms after ${after}; the next phase shares the cluster with that backlog`,
    );
  }
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof BenchUsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (options.scaleBytes !== undefined) return runScalePhase(options.scaleBytes, options);

  const report: BenchReport = {
    machine: machineInfo(),
    config: {
      clusterSize: CLUSTER_SIZE,
      raft: BENCH_RAFT_SETTINGS,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      valueSize: options.valueSize,
      concurrency: options.concurrency,
      quick: options.quick,
      readKeys: READ_KEYS,
      microMaxTimeS: options.microMaxTimeS,
      fsyncSamples: options.fsyncSamples,
      pingSamples: options.pingSamples,
      profileDir: options.profileDir ?? null,
      compare: options.compare ?? null,
      srcFingerprint: srcFingerprint(),
      compareReps: options.compareReps,
    },
    micro: [],
    load: [],
    targets: [],
  };

  // --compare etcd: decided before the progress bar exists, so its steps are counted.
  const etcd = options.compare === 'etcd' ? etcdAvailability() : undefined;
  const comparing = etcd !== undefined && !('skip' in etcd);
  const totalSteps = 1 + 2 + 1 + 1 + WORKLOADS.length + WORKLOADS.length * options.concurrency.length + 1 + (comparing ? compareSteps(options.compareReps) : 0);
  const progress = createProgress(totalSteps);
  if (etcd && 'skip' in etcd) progress.log(etcd.skip);
  const [load1] = os.loadavg();
  if (load1! > report.machine.cores * 0.5) {
    progress.log(
      `warning: load average ${load1!.toFixed(1)} on ${report.machine.cores} cores before the start: other processes compete for the CPU and the numbers will be worse and noisier than this machine can do`,
    );
  }
  let cluster: BenchCluster | undefined;
  let stopCompare: (() => Promise<void>) | undefined;
  let exitCode = 0;

  // Ctrl-C: stop the nodes and remove the temp dirs before leaving (the 'exit' hook in BenchCluster
  // is the last resort if even this is cut short).
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress.stop();
    process.stderr.write(`\n${sig}: stopping the cluster and removing its temp dir...\n`);
    void Promise.all([cluster?.stop(2000), stopCompare?.()]).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await bench(options, report, progress, (c) => (cluster = c));
  } catch (e) {
    exitCode = 1;
    const err = e as Error;
    report.error = `${err.name}: ${err.message}`;
    progress.stop();
    process.stderr.write(`\nbench failed: ${report.error}\n`);
    const tails = err instanceof BenchClusterError && Object.keys(err.logTails).length > 0 ? err.logTails : cluster?.logTails();
    for (const [id, tail] of Object.entries(tails ?? {})) process.stderr.write(`--- last lines of ${id}'s log ---\n${tail}\n`);
  } finally {
    if (!comparing || exitCode !== 0) progress.stop();
    if (cluster) {
      const logs = await cluster.stop(5000, path.resolve(REPO_ROOT, path.dirname(options.jsonOut), 'logs'));
      if (logs) report.config['nodeLogs'] = logs;
    }
  }
  // The comparison gets fresh clusters of its own (the bench's nodes are stopped by now, so they
  // neither compete for the CPU nor carry the previous phases' data into it).
  let compared: CompareEtcdResult | undefined;
  if (comparing && exitCode !== 0) {
    progress.log('compare etcd: skipped, the quorumkv phases failed');
  } else if (comparing && !interrupted) {
    progress.log(
      `compare etcd: ${COMPARE_PAIRS.length} workloads x ${options.compareReps} rep(s) x 2 systems, about ${Math.round(estimateCompareMs(options.compareReps, options.durationMs, options.warmupMs) / 1000)} s`,
    );
    compared = await runCompareEtcd(etcd, {
      raft: BENCH_RAFT_SETTINGS,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      reps: options.compareReps,
      valueSize: options.valueSize,
      progress,
      saveLogsTo: path.resolve(REPO_ROOT, path.dirname(options.jsonOut), 'logs-compare'),
      onClusters: (stop) => (stopCompare = stop),
    });
    progress.stop();
    (report as BenchReport & { compareEtcd?: CompareEtcdResult }).compareEtcd = compared;
    if (compared.error) exitCode = 1;
  } else if (etcd && 'skip' in etcd) {
    (report as BenchReport & { compareEtcd?: { skipped: string } }).compareEtcd = { skipped: etcd.skip };
  }
  report.machine.loadAvgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));

  report.targets = evaluateTargets({
    load: report.load,
    ...(report.floor ? { floor: report.floor } : {}),
    ...(report.leader ? { leader: report.leader } : {}),
  });
  process.stdout.write(`\n${renderReport(report)}\n`);
  const transport = (report as BenchReport & { transportCompare?: TransportCompareResult }).transportCompare;
  if (transport) process.stdout.write(`\n${renderTransportCompare(transport)}\n`);
  if (compared) process.stdout.write(`\n${renderCompareEtcd(compared)}\n`);
  else if (etcd && 'skip' in etcd) process.stdout.write(`\n${etcd.skip}\n`);
  const written = writeJson(options.jsonOut, report);
  process.stdout.write(`\nresults written to ${path.relative(process.cwd(), written) || written}\n`);
  if (options.profileDir)
    process.stdout.write(`node CPU profiles in ${path.resolve(options.profileDir)} (summarize: node --import tsx bench/profile-summary.ts <file>)\n`);
  return exitCode;
}

/** `--scale <size>`: the data-larger-than-memory phase alone (a fresh cluster of its own). */
async function runScalePhase(bytes: number, options: BenchOptions): Promise<number> {
  const saveLogsTo = path.resolve(REPO_ROOT, path.dirname(options.jsonOut), 'logs-scale');
  const result = await runScale({ bytes, valueSize: options.valueSize, concurrency: options.scaleConcurrency, saveLogsTo });
  process.stdout.write(`\n${renderScale(result)}\n`);
  const file = path.resolve(REPO_ROOT, path.dirname(options.jsonOut), 'scale.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...result, srcFingerprint: srcFingerprint(), date: new Date().toISOString() }, null, 2)}\n`);
  process.stdout.write(`\nresults written to ${path.relative(process.cwd(), file) || file}\n`);
  return result.targets.every((t) => t.ok) ? 0 : 1;
}

const code = await main();
process.exitCode = code;
// The SDK's channels and timers should be closed; exit anyway so a lingering handle cannot hang CI.
process.stdout.write('', () => process.exit(code));
