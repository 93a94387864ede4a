// Per-operation latency with Benchmark.js: one client, one operation at a time (deferred tests),
// so the number is the round trip a lone caller sees, with Benchmark.js's statistics on top.
import Benchmark from 'benchmark';
import type { MicroResult, Workload } from './results.js';
import type { Operation } from './workloads.js';

export interface MicroCase {
  workload: Workload;
  op: Operation;
}

export interface MicroOptions {
  /** Seconds Benchmark.js may spend on one case. */
  maxTimeS: number;
  onStart?: (workload: Workload) => void;
}

/** Runs the cases one after another (never concurrently, which would measure contention instead). */
export async function runMicro(cases: readonly MicroCase[], options: MicroOptions): Promise<MicroResult[]> {
  const results: MicroResult[] = [];
  for (const c of cases) {
    options.onStart?.(c.workload);
    results.push(await runOne(c, options.maxTimeS));
  }
  return results;
}

function runOne(c: MicroCase, maxTimeS: number): Promise<MicroResult> {
  return new Promise((resolve) => {
    let errors = 0;
    let firstError: string | undefined;
    const bench = new Benchmark(c.workload, {
      defer: true,
      maxTime: maxTimeS,
      minSamples: 5,
      // A function (not a string) keeps Benchmark.js from decompiling it, so closures survive.
      fn: (deferred: Benchmark.Deferred) => {
        c.op().then(
          () => deferred.resolve(),
          (e: unknown) => {
            errors++;
            firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
            // A failing operation has no latency worth reporting: stop this case.
            deferred.benchmark.abort();
            deferred.resolve();
          },
        );
      },
    });
    let done = false;
    // An aborted or failed case may not emit 'complete'; whichever comes first settles it.
    bench.on('complete abort error', () => {
      if (done) return;
      done = true;
      const s = bench.stats;
      if (bench.error && !firstError) {
        errors++;
        firstError = String((bench.error as Error).message ?? bench.error);
      }
      const result: MicroResult = {
        workload: c.workload,
        meanMs: s.sample.length > 0 ? s.mean * 1000 : Number.NaN,
        rmePercent: s.sample.length > 0 ? s.rme : Number.NaN,
        samples: s.sample.length,
        opsPerSec: s.sample.length > 0 ? bench.hz : 0,
        errors,
      };
      if (firstError) result.firstError = firstError;
      resolve(result);
    });
    bench.run({ async: true });
  });
}
