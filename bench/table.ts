// Renders a bench report as plain text: one results table, then the floor and the target checks.
import { WORKLOAD_LABEL, WORKLOADS, type BenchReport } from './results.js';

/** Columns padded to their widest cell; numbers (right-aligned) are told apart by `rightAlign`. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], rightAlign: readonly boolean[] = []): string {
  for (const row of rows) {
    if (row.length !== headers.length) throw new RangeError(`row has ${row.length} cells, header has ${headers.length}`);
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** Milliseconds with a precision that suits their size (µs resolution below 1 ms). */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1) return ms.toFixed(3);
  if (ms < 100) return ms.toFixed(2);
  return ms.toFixed(0);
}

export function fmtRate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n >= 100 ? Math.round(n).toString() : n.toFixed(1);
}

/** "n1* 45 n2 20 n3 21 | 60": each node's CPU (percent of one core, * = leader), then the bench client's. */
export function fmtCpuSplit(nodes: Record<string, number> | undefined, client: number | undefined, leaderId?: string): string {
  if (!nodes) return '-';
  const parts = Object.entries(nodes).map(([id, pct]) => `${id}${id === leaderId ? '*' : ''} ${Math.round(pct)}`);
  return `${parts.join(' ')} | ${client === undefined ? '-' : Math.round(client)}`;
}

export function renderReport(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(`quorumkv bench — ${m.date} — ${m.cpuModel} x${m.cores}, node ${m.nodeVersion}, ${m.platform}`);
  out.push(
    `load average (1/5/15 min) at start ${m.loadAvgStart.join(' / ')}` +
      (m.loadAvgEnd ? `, at end ${m.loadAvgEnd.join(' / ')}` : '') +
      (m.loadAvgStart[0]! > m.cores * 0.5 ? ' — other processes were competing for the CPU' : ''),
  );

  if (report.floor) {
    const f = report.floor;
    out.push(
      `floor: fdatasync ${f.fsync.blockBytes} B p50 ${fmtMs(f.fsync.p50Ms)} ms, p99 ${fmtMs(f.fsync.p99Ms)} ms (${f.fsync.samples} samples); ` +
        `gRPC loopback RTT (${f.loopback.source}) p50 ${fmtMs(f.loopback.p50Ms)} ms, p99 ${fmtMs(f.loopback.p99Ms)} ms (${f.loopback.samples} samples)`,
    );
  }

  if (report.idleClusterCpuPercent !== undefined) {
    out.push(`idle cluster CPU (3 nodes, ticks and heartbeats): ${report.idleClusterCpuPercent.toFixed(1)}% of one core`);
  }

  const leaderId = report.leader?.before.id;
  const rows: string[][] = [];
  for (const w of WORKLOADS) {
    const micro = report.micro.find((r) => r.workload === w);
    if (micro) {
      rows.push([
        WORKLOAD_LABEL[w],
        'seq (Benchmark.js)',
        fmtRate(micro.opsPerSec),
        `${fmtMs(micro.meanMs)} mean ±${micro.rmePercent.toFixed(1)}%`,
        '',
        '',
        '',
        '',
        '',
        micro.errors ? String(micro.errors) : '0',
      ]);
    }
    for (const r of report.load.filter((x) => x.workload === w)) {
      rows.push([
        WORKLOAD_LABEL[w],
        `c=${r.concurrency}`,
        fmtRate(r.opsPerSec),
        fmtMs(r.latency?.p50Ms),
        fmtMs(r.latency?.p99Ms),
        fmtMs(r.latency?.p999Ms),
        fmtMs(r.cpuMsPerOp),
        fmtMs(r.clientCpuMsPerOp),
        fmtCpuSplit(r.nodeCpuPercent, r.clientCpuPercent, leaderId),
        String(r.errors),
      ]);
    }
  }
  if (rows.length > 0) {
    out.push('');
    out.push('cpu % = percent of one core over the phase; * marks the leader; the client is this bench process');
    out.push(
      renderTable(
        ['operation', 'load', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'cluster cpu ms/op', 'client cpu ms/op', 'cpu % nodes | client', 'errors'],
        rows,
        [false, false, true, true, true, true, true, true, true, true],
      ),
    );
  }

  const errs = [...report.micro, ...report.load].filter((r) => r.firstError);
  if (errs.length > 0) {
    out.push('');
    out.push('first error per phase:');
    for (const r of errs) {
      const where = 'concurrency' in r ? `c=${r.concurrency}` : 'seq';
      out.push(`  ${WORKLOAD_LABEL[r.workload]} ${where}: ${r.firstError}`);
    }
  }

  if (report.leader) {
    const l = report.leader;
    out.push('');
    out.push(
      `leader: before ${l.before.id} (term ${l.before.term}), after ` +
        (l.after ? `${l.after.id} (term ${l.after.term})` : 'unknown') +
        (l.changed === undefined ? '' : l.changed ? ' — LEADER CHANGED during the run' : ' — no change'),
    );
    for (const c of l.changes) {
      out.push(`  seen after ${c.seenAfter}: ${c.from.id} term ${c.from.term} -> ${c.to ? `${c.to.id} term ${c.to.term}` : 'no agreed leader'}`);
    }
  }

  if (report.targets.length > 0) {
    out.push('');
    out.push('targets:');
    for (const t of report.targets) out.push(`  ${t.status.padEnd(4)}  ${t.description}: ${t.detail}`);
  }

  if (report.error) {
    out.push('');
    out.push(`run stopped early: ${report.error}`);
  }
  return out.join('\n');
}
