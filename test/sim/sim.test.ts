import test from 'ava';
import { runSeed } from './run.js';

// 320 seeds in four blocks so ava can run them concurrently; 3- and 5-node clusters alternate.
function runBlock(first: number, count: number): { failures: string[]; acked: number; snapshots: number; elections: number } {
  const failures: string[] = [];
  let acked = 0;
  let snapshots = 0;
  let elections = 0;
  for (let seed = first; seed < first + count; seed++) {
    const result = runSeed(seed, { nodes: seed % 2 === 0 ? 3 : 5 });
    if (!result.ok) failures.push(result.error!);
    acked += result.stats.acked;
    snapshots += result.stats.snapshotsSent;
    elections += result.stats.elections;
  }
  return { failures, acked, snapshots, elections };
}

for (const first of [1, 81, 161, 241]) {
  test(`seeds ${first}..${first + 79} keep every invariant and recover after faults stop`, (t) => {
    const r = runBlock(first, 80);
    t.deepEqual(r.failures, [], r.failures[0]);
    // The runs must actually exercise the cluster, not pass vacuously.
    t.true(r.acked > 80 * 20, `only ${r.acked} acknowledged writes`);
    t.true(r.snapshots > 0, 'no snapshot was ever installed');
    t.true(r.elections > 80, `only ${r.elections} elections`);
  });
}

test('the same seed reproduces the same run exactly', (t) => {
  for (const seed of [7, 12345]) {
    const a = runSeed(seed, { trace: true });
    const b = runSeed(seed, { trace: true });
    t.true(a.trace.length > 1000);
    t.is(a.traceHash, b.traceHash);
    t.deepEqual(a.stats, b.stats);
  }
  t.not(runSeed(7, { trace: true }).traceHash, runSeed(8, { trace: true }).traceHash);
});

/** The first seed in [1, 400] on which `sabotage` makes the run fail (bounded search). */
function firstFailingSeed(sabotage: 'forget-votes' | 'early-reads'): number | undefined {
  for (let seed = 1; seed <= 400; seed++) if (!runSeed(seed, { sabotage }).ok) return seed;
  return undefined;
}

test('the checkers catch a runtime that forgets its votes, and the report names checker, seed, tick and trace', (t) => {
  const seed = firstFailingSeed('forget-votes');
  if (seed === undefined) return t.fail('no seed in 1..400 exposed a runtime that forgets its votes');
  const result = runSeed(seed, { sabotage: 'forget-votes' });
  t.false(result.ok);
  t.is(result.violations[0]?.checker, 'election-safety');
  t.regex(result.error!, new RegExp(`^\\[election-safety\\] seed ${seed} tick \\d+: two leaders in term \\d+`));
  t.regex(result.error!, new RegExp(`npm run sim -- --seed ${seed} --trace`));
  t.is(result.trace.length, 50);
  t.true(runSeed(seed).ok, 'the same seed passes with an honest runtime');
});

test('the checkers catch reads served before the state machine reached the read index', (t) => {
  const seed = firstFailingSeed('early-reads');
  if (seed === undefined) return t.fail('no seed in 1..400 exposed reads served early');
  const result = runSeed(seed, { sabotage: 'early-reads' });
  t.is(result.violations[0]?.checker, 'linearizable-reads');
  t.true(runSeed(seed).ok);
});
