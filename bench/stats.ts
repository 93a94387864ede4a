// Percentile and summary math for the bench. Pure (no clocks, no I/O) so it is unit tested.
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/**
 * Nearest-rank percentile of ascending samples: the smallest sample such that at least p% of the
 * samples are <= it. Nearest rank never invents a value that was not measured.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within [0, 100], got ${p}`);
  if (sorted.length === 0) throw new RangeError('percentile of an empty sample set is undefined');
  if (p === 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Summary of raw latency samples given in milliseconds (any order). */
export function summarizeSamples(samplesMs: readonly number[]): LatencySummary {
  if (samplesMs.length === 0) throw new RangeError('cannot summarize zero samples');
  for (const s of samplesMs) {
    if (!Number.isFinite(s) || s < 0) throw new RangeError(`latency samples must be finite and >= 0, got ${s}`);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    minMs: sorted[0]!,
    meanMs: sum / sorted.length,
    p50Ms: percentileOfSorted(sorted, 50),
    p99Ms: percentileOfSorted(sorted, 99),
    p999Ms: percentileOfSorted(sorted, 99.9),
    maxMs: sorted[sorted.length - 1]!,
  };
}

/**
 * Latencies are recorded in microseconds: 3 significant digits keep 0.1% resolution from 1 µs to
 * minutes, which is finer than anything the cluster can resolve.
 */
export function newLatencyHistogram(): Histogram {
  return hdr.build({ bitBucketSize: 32, lowestDiscernibleValue: 1, autoResize: true, numberOfSignificantValueDigits: 3 });
}

/** Records one latency given in milliseconds (sub-microsecond values count as 1 µs). */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export function summarizeHistogram(h: Histogram): LatencySummary | undefined {
  if (h.totalCount === 0) return undefined;
  const ms = (us: number): number => us / 1000;
  return {
    count: h.totalCount,
    minMs: ms(h.minNonZeroValue),
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
  };
}

export function opsPerSecond(ops: number, elapsedMs: number): number {
  if (elapsedMs <= 0) throw new RangeError(`elapsed time must be positive, got ${elapsedMs} ms`);
  return (ops * 1000) / elapsedMs;
}

/** CPU milliseconds spent per operation, or undefined when no operation completed. */
export function cpuMsPerOp(cpuMs: number, ops: number): number | undefined {
  return ops > 0 ? cpuMs / ops : undefined;
}

export interface ProcCpuTicks {
  utime: number;
  stime: number;
}

/**
 * utime and stime (fields 14 and 15, in clock ticks) of a /proc/<pid>/stat line. The command name
 * (field 2) is in parentheses and may itself contain spaces and parentheses, so fields are counted
 * from the last ')'.
 */
export function parseProcStat(text: string): ProcCpuTicks {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new Error(`/proc/<pid>/stat line has no utime/stime: ${JSON.stringify(text.slice(0, 120))}`);
  }
  return { utime, stime };
}
