// `npm run bench -- --scale <size>`: data larger than memory. Fills a fresh three-node cluster (real
// processes, shipped settings) with `size` bytes of sync puts of distinct keys through the SDK at a
// fixed concurrency and reports, per tenth of the fill: throughput, the largest RSS of each node, the
// longest event-loop stall of any node (from the nodes' own `event_loop_stall` lines, logged here
// from 10 ms), and leader changes. Then SIGKILLs a follower, wipes its data dir, starts it again and
// times its rebuild (a streamed snapshot plus the log after it) until it applied the leader's commit
// index, with the RSS and stalls during the rebuild. The targets of issue 11 are checked at the end.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/index.js';
import { NodeProbe } from '../src/process/node-probe.js';
import { BENCH_RAFT_SETTINGS, BenchCluster } from './cluster.js';
import { BenchClusterError } from './errors.js';
import { measureFsync, measureLoopback } from './floor.js';
import type { FloorResult } from './results.js';
import { NODE_MALLOC_ENV } from '../src/process/node-env.js';

export interface ScaleOptions {
  bytes: number;
  /** The nodes' logs are copied here at the end (snapshot progress lines, stalls, elections). */
  saveLogsTo?: string;
  valueSize: number;
  concurrency: number;
  log?: (line: string) => void;
}

export interface ScaleTenth {
  tenth: number;
  ops: number;
  opsPerSec: number;
  /** Largest RSS seen per node during this tenth (MB). */
  rssMb: Record<string, number>;
  longestStallMs: number;
  /** The longest stall less the time the node's main thread waited for a CPU (the part its own work caused). */
  longestOwnStallMs: number;
  leaderChanges: number;
}

export interface ScaleResult {
  bytes: number;
  valueSize: number;
  concurrency: number;
  keys: number;
  tenths: ScaleTenth[];
  fillSeconds: number;
  errors: number;
  rebuild?: {
    node: string;
    seconds: number;
    mbPerSec: number;
    snapshotBytes: number;
    peakRssMb: Record<string, number>;
    longestStallMs: number;
    longestOwnStallMs: number;
    leaderChanges: number;
  };
  targets: { name: string; ok: boolean; detail: string }[];
  machine: { cores: number; loadAvgStart: number[]; loadAvgEnd?: number[] };
  floor?: FloorResult;
}

const MB = 1024 * 1024;
const STALL_LOG_MS = 10;

function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

interface LogEvent {
  time: number;
  event: string;
  ms?: number;
  bytes?: number;
}

/** A node logs where a stall's time went (event-loop-watch.ts); without that, all of it counts as its own. */
function longestOwnStall(stalls: LogEvent[]): number {
  const own = stalls.map((s) => {
    const waiting = (s as { waitingForCpuMs?: unknown }).waitingForCpuMs;
    return Math.max(0, (s.ms ?? 0) - (typeof waiting === 'number' ? waiting : 0));
  });
  return Math.round(Math.max(0, ...own));
}

/** The node log lines with an event since `since` (epoch ms). */
function events(cluster: BenchCluster, since: number, names: string[]): (LogEvent & { node: string })[] {
  const out: (LogEvent & { node: string })[] = [];
  for (const n of cluster.nodes) {
    let text = '';
    try {
      text = readFileSync(n.logFile, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!names.some((name) => line.includes(`"event":"${name}"`))) continue;
      try {
        const e = JSON.parse(line) as LogEvent;
        if (e.time >= since) out.push({ ...e, node: n.id });
      } catch {
        // a line cut by a kill
      }
    }
  }
  return out;
}

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const keys = Math.max(10, Math.ceil(o.bytes / o.valueSize));
  const result: ScaleResult = {
    bytes: o.bytes,
    valueSize: o.valueSize,
    concurrency: o.concurrency,
    keys,
    tenths: [],
    fillSeconds: 0,
    errors: 0,
    targets: [],
    machine: { cores: os.cpus().length, loadAvgStart: os.loadavg().map((x) => Number(x.toFixed(2))) },
  };
  // The nodes run the compiled package, as installed ones do: a rebuild's time includes the start.
  // ...with the malloc setting the cluster launcher gives its nodes (src/process/node-env.ts).
  const cluster = await BenchCluster.start({
    size: 3,
    raft: BENCH_RAFT_SETTINGS,
    built: true,
    nodeEnv: { QUORUMKV_STALL_LOG_MS: String(STALL_LOG_MS), ...NODE_MALLOC_ENV },
  });
  const probes = new Map<string, NodeProbe>();
  const probe = (id: string) => {
    let p = probes.get(id);
    if (!p) {
      p = new NodeProbe(cluster.nodes.find((n) => n.id === id)!.clientAddress);
      probes.set(id, p);
    }
    return p;
  };
  const client = await connect({ endpoints: cluster.endpoints, deadlineMs: 30_000, discover: false });
  let sampler: NodeJS.Timeout | undefined;
  try {
    const leaderId = await waitForLeader(cluster, probe);
    const { fallbackReason: _unused, ...loopback } = await measureLoopback(cluster.endpoints[0]!, 500);
    result.floor = { fsync: measureFsync(cluster.root, 300), loopback };
    log(`scale: ${(o.bytes / MB).toFixed(0)} MB = ${keys} puts of ${o.valueSize} B at c=${o.concurrency}, leader ${leaderId}`);
    const value = new Uint8Array(o.valueSize).fill(0x61);
    // Per-tenth RSS maxima, sampled every 500 ms.
    let current = 0;
    const rss: Record<string, number>[] = Array.from({ length: 10 }, () => ({}));
    sampler = setInterval(() => {
      for (const n of cluster.nodes) {
        const mb = rssMb(n.pid);
        if (mb !== undefined) rss[current]![n.id] = Math.max(rss[current]![n.id] ?? 0, mb);
      }
    }, 500);
    const fillStart = Date.now();
    const tenthEnds: number[] = [];
    let next = 0;
    let done = 0;
    const perTenth = Math.ceil(keys / 10);
    const worker = async (): Promise<void> => {
      while (next < keys) {
        const i = next++;
        for (let attempt = 0; ; attempt++) {
          try {
            await client.put(`scale-${String(i).padStart(10, '0')}`, value, { durability: 'sync' });
            break;
          } catch (err) {
            result.errors++;
            if (attempt >= 5) throw err;
            await sleep(50);
          }
        }
        done++;
        if (done % perTenth === 0 || done === keys) {
          tenthEnds.push(Date.now());
          current = Math.min(9, tenthEnds.length);
          log(`scale: ${done}/${keys} puts, ${((done * o.valueSize) / MB).toFixed(0)} MB, ${Math.round((Date.now() - fillStart) / 1000)} s`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    result.fillSeconds = (Date.now() - fillStart) / 1000;
    const stalls = events(cluster, fillStart, ['event_loop_stall']);
    const changes = events(cluster, fillStart, ['leader_changed']);
    for (let t = 0; t < 10; t++) {
      const from = t === 0 ? fillStart : tenthEnds[t - 1]!;
      const to = tenthEnds[t] ?? Date.now();
      const ops = Math.min(perTenth, keys - t * perTenth);
      const inTenth = stalls.filter((s) => s.time >= from && s.time < to);
      result.tenths.push({
        tenth: t + 1,
        ops,
        opsPerSec: Math.round(ops / Math.max((to - from) / 1000, 1e-3)),
        rssMb: rss[t]!,
        longestStallMs: Math.max(0, ...inTenth.map((s) => s.ms ?? 0)),
        longestOwnStallMs: longestOwnStall(inTenth),
        // Each node logs a change it sees: count distinct changes as the most any one node logged.
        leaderChanges: Math.max(0, ...cluster.nodes.map((n) => changes.filter((c) => c.node === n.id && c.time >= from && c.time < to).length)),
      });
    }
    clearInterval(sampler);
    sampler = undefined;

    // The rebuild of a wiped follower.
    const leader = await waitForLeader(cluster, probe);
    const victim = cluster.nodes.find((n) => n.id !== leader)!.id;
    const target = (await probe(leader).status()).commitIndex;
    await cluster.kill(victim);
    cluster.wipe(victim);
    probe(victim).close();
    probes.delete(victim);
    const t0 = Date.now();
    const node = cluster.restart(victim);
    log(`scale: ${victim} wiped and restarted (pid ${node.pid}); rebuilding to index ${target}`);
    const peak: Record<string, number> = {};
    for (;;) {
      for (const n of cluster.nodes) {
        const mb = rssMb(n.pid);
        if (mb !== undefined) peak[n.id] = Math.max(peak[n.id] ?? 0, mb);
      }
      const s = await probe(victim)
        .status(1000)
        .catch(() => undefined);
      if (s && s.appliedIndex >= target) break;
      if (Date.now() - t0 > 30 * 60_000) throw new BenchClusterError(`${victim} was not rebuilt within 30 min`);
      if (cluster.exitedNodes().includes(victim)) throw new BenchClusterError(`${victim} exited while rebuilding`, cluster.logTails());
      await sleep(200);
    }
    const seconds = (Date.now() - t0) / 1000;
    const installs = events(cluster, t0, ['snapshot_install']).filter((e) => e.node === victim && (e as { done?: boolean }).done);
    const rebuildStalls = events(cluster, t0, ['event_loop_stall']);
    const rebuildChanges = events(cluster, t0, ['leader_changed']);
    const snapshotBytes = installs.reduce((n, e) => n + ((e as { totalBytes?: number }).totalBytes ?? 0), 0);
    result.rebuild = {
      node: victim,
      seconds,
      snapshotBytes,
      mbPerSec: Math.round((o.bytes / MB / seconds) * 10) / 10,
      peakRssMb: peak,
      longestStallMs: Math.max(0, ...rebuildStalls.map((s) => s.ms ?? 0)),
      longestOwnStallMs: longestOwnStall(rebuildStalls),
      leaderChanges: Math.max(0, ...cluster.nodes.filter((n) => n.id !== victim).map((n) => rebuildChanges.filter((c) => c.node === n.id).length)),
    };
    log(
      `scale: ${victim} rebuilt in ${seconds.toFixed(1)} s (${installs.length} snapshot install(s), ${(snapshotBytes / MB).toFixed(0)} MB of snapshot files)`,
    );
  } finally {
    if (sampler) clearInterval(sampler);
    await client.close();
    for (const p of probes.values()) p.close();
    await cluster.stop(5000, o.saveLogsTo);
  }
  result.machine.loadAvgEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  result.targets = scaleTargets(result);
  return result;
}

async function waitForLeader(cluster: BenchCluster, probe: (id: string) => NodeProbe): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const n of cluster.nodes) {
      const s = await probe(n.id)
        .status(500)
        .catch(() => undefined);
      if (s?.role === 'leader' || s?.role === 'ROLE_LEADER') return n.id;
      if (s?.leaderId) return s.leaderId;
    }
    await sleep(200);
  }
  throw new BenchClusterError('no leader within 30 s', cluster.logTails());
}

export function scaleTargets(r: ScaleResult): ScaleResult['targets'] {
  const first = r.tenths[0]?.opsPerSec ?? 0;
  const last = r.tenths[r.tenths.length - 1]?.opsPerSec ?? 0;
  const maxRss = Math.max(0, ...r.tenths.flatMap((t) => Object.values(t.rssMb)), ...Object.values(r.rebuild?.peakRssMb ?? {}));
  const stall = Math.max(0, ...r.tenths.map((t) => t.longestStallMs), r.rebuild?.longestStallMs ?? 0);
  const ownStall = Math.max(0, ...r.tenths.map((t) => t.longestOwnStallMs), r.rebuild?.longestOwnStallMs ?? 0);
  const changes = r.tenths.reduce((n, t) => n + t.leaderChanges, 0) + (r.rebuild?.leaderChanges ?? 0);
  return [
    {
      name: 'last tenth throughput within 15 % of the first',
      ok: last >= 0.85 * first,
      detail: `${first} → ${last} ops/s (${first ? Math.round((100 * (last - first)) / first) : 0} %)`,
    },
    { name: 'RSS <= 512 MB per node', ok: maxRss <= 512, detail: `max ${maxRss} MB` },
    {
      name: 'no event-loop stall > 50 ms',
      ok: stall <= 50,
      detail: `longest ${stall} ms; less the time spent waiting for a CPU, at most ${ownStall} ms`,
    },
    { name: 'no leader change', ok: changes === 0, detail: `${changes}` },
    {
      name: 'wiped-follower rebuild >= 50 MB/s',
      ok: (r.rebuild?.mbPerSec ?? 0) >= 50,
      detail: `${r.rebuild?.mbPerSec ?? 0} MB/s (${r.rebuild?.seconds.toFixed(1) ?? '?'} s)`,
    },
  ];
}

export function renderScale(r: ScaleResult): string {
  const ids = Object.keys(r.tenths[0]?.rssMb ?? {}).sort();
  const lines = [
    `scale: ${(r.bytes / MB).toFixed(0)} MB in ${r.keys} sync puts of ${r.valueSize} B at c=${r.concurrency}, ${r.fillSeconds.toFixed(0)} s, ${r.errors} retried errors; ${r.machine.cores} cores, load ${r.machine.loadAvgStart.join('/')} → ${r.machine.loadAvgEnd?.join('/')}`,
    ...(r.floor
      ? [
          `floor: fdatasync p50 ${r.floor.fsync.p50Ms} ms p99 ${r.floor.fsync.p99Ms} ms; gRPC loopback p50 ${r.floor.loopback.p50Ms} ms p99 ${r.floor.loopback.p99Ms} ms`,
        ]
      : []),
    `tenth | ops/s | ${ids.map((id) => `RSS ${id} MB`).join(' | ')} | longest stall ms (less CPU wait) | leader changes`,
    ...r.tenths.map(
      (t) =>
        `${String(t.tenth).padStart(5)} | ${String(t.opsPerSec).padStart(5)} | ${ids.map((id) => String(t.rssMb[id] ?? '-').padStart(9)).join(' | ')} | ${`${t.longestStallMs} (${t.longestOwnStallMs})`.padStart(32)} | ${t.leaderChanges}`,
    ),
  ];
  if (r.rebuild) {
    const b = r.rebuild;
    lines.push(
      `rebuild of wiped ${b.node}: ${b.seconds.toFixed(1)} s, ${b.mbPerSec} MB/s of data, snapshot files ${(b.snapshotBytes / MB).toFixed(0)} MB, peak RSS ${Object.entries(
        b.peakRssMb,
      )
        .map(([id, mb]) => `${id} ${mb}`)
        .join(', ')} MB, longest stall ${b.longestStallMs} ms (less CPU wait ${b.longestOwnStallMs} ms), leader changes ${b.leaderChanges}`,
    );
  }
  for (const t of r.targets) lines.push(`${t.ok ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`);
  return lines.join('\n');
}
