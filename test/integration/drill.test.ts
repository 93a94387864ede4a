// The 60 s drill with a fixed seed, as `npm test` runs it: a real 3-process cluster behind per-link
// proxies, every fault kind, a concurrent SDK workload, and every check on the recorded history.
// The self-test injects stale reads into a copy of that history and expects each to be flagged.
// RTO/RPO figures are logged, never asserted (timing is the bench's and the drill's report's job).
import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DRILL_DEFAULTS, formatReport, runDrill } from '../../src/drill/drill.js';
import { FAULT_KINDS } from '../../src/drill/history.js';

const SEED = 20261202;

test('a 60 s seeded drill: every fault kind, a linearizable history, truthful receipts, monotonic sessions', async (t) => {
  t.timeout(150_000);
  const out = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-drill-test-'));
  try {
    const result = await runDrill({
      ...DRILL_DEFAULTS,
      raft: { ...DRILL_DEFAULTS.raft },
      durationMs: 60_000,
      seed: SEED,
      outDir: out,
      injectStaleReads: true,
      log: (line) => t.log(line),
    });
    t.log(formatReport(result));
    t.deepEqual(result.check.violations, [], `history saved at ${result.savedHistory}`);
    t.true(result.check.ok);
    t.deepEqual(await readdir(out), [], 'a passing drill saves no history');
    // Every kind ran (the schedule cycles through all of them first) and the cluster recovered.
    t.deepEqual([...new Set(result.faults.map((f) => f.kind))].sort(), [...FAULT_KINDS].sort());
    for (const f of result.faults.filter((x) => x.leaderLoss)) t.not(f.rtoMs, undefined, `no write acked in a newer term after ${f.kind} at ${f.start} ms`);
    t.true(result.check.counted.linearizabilityOps > 1000);
    t.true(result.check.counted.sessionReads > 100);
    // The self-test: the checker flags the stale reads injected into a copy of this very history.
    t.truthy(result.selfTest);
    t.true(result.selfTest!.injected.length > 0);
    t.true(result.selfTest!.passed, JSON.stringify(result.selfTest));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
