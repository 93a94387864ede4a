// The pure parts of the bench: percentile/summary math, /proc parsing, target evaluation, the
// leader checks, table rendering, profile summaries and argument parsing. No timing here.
import test from 'ava';
import { parseBenchArgs, parseConcurrencyList, DEFAULT_JSON_OUT } from '../../bench/args.js';
import { agreedLeader } from '../../bench/cluster-status.js';
import { BenchUsageError } from '../../bench/errors.js';
import { selfTimes, type CpuProfile } from '../../bench/profile-summary.js';
import type { FloorResult, LoadResult, Workload } from '../../bench/results.js';
import {
  cpuMsPerOp,
  newLatencyHistogram,
  opsPerSecond,
  parseProcStat,
  percentileOfSorted,
  recordMs,
  summarizeHistogram,
  summarizeSamples,
} from '../../bench/stats.js';
import { fmtCpuSplit, renderTable } from '../../bench/table.js';
import { evaluateTargets, leaderChanged } from '../../bench/targets.js';
import type { EndpointStatus, NodeStatus } from '../../src/index.js';

// ---- percentiles and summaries ----

test('nearest-rank percentile returns a measured sample at the right rank', (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  t.is(percentileOfSorted(sorted, 50), 50);
  t.is(percentileOfSorted(sorted, 99), 99);
  t.is(percentileOfSorted(sorted, 99.9), 100);
  t.is(percentileOfSorted(sorted, 100), 100);
  t.is(percentileOfSorted(sorted, 0), 1);
  t.is(percentileOfSorted([7], 50), 7);
  // Four samples: p50 is the 2nd (rank ceil(2)), p51 the 3rd.
  t.is(percentileOfSorted([1, 2, 3, 4], 50), 2);
  t.is(percentileOfSorted([1, 2, 3, 4], 51), 3);
});

test('percentile rejects empty input and out-of-range p', (t) => {
  t.throws(() => percentileOfSorted([], 50), { instanceOf: RangeError });
  t.throws(() => percentileOfSorted([1], 101), { instanceOf: RangeError });
  t.throws(() => percentileOfSorted([1], -1), { instanceOf: RangeError });
  t.throws(() => percentileOfSorted([1], Number.NaN), { instanceOf: RangeError });
});

test('summarizeSamples sorts a copy and reports min/mean/percentiles/max', (t) => {
  const samples = [5, 1, 4, 2, 3];
  const s = summarizeSamples(samples);
  t.deepEqual(samples, [5, 1, 4, 2, 3], 'input left untouched');
  t.is(s.count, 5);
  t.is(s.minMs, 1);
  t.is(s.maxMs, 5);
  t.is(s.meanMs, 3);
  t.is(s.p50Ms, 3);
  t.is(s.p99Ms, 5);
  t.is(s.p999Ms, 5);
});

test('summarizeSamples rejects empty, negative and non-finite samples', (t) => {
  t.throws(() => summarizeSamples([]), { instanceOf: RangeError });
  t.throws(() => summarizeSamples([1, -0.5]), { instanceOf: RangeError });
  t.throws(() => summarizeSamples([1, Number.POSITIVE_INFINITY]), { instanceOf: RangeError });
});

test('histogram summary reports milliseconds within hdr resolution, including the tail', (t) => {
  const h = newLatencyHistogram();
  t.is(summarizeHistogram(h), undefined, 'an empty histogram has no summary');
  // 990 fast ops at 2 ms, 9 at 50 ms, 1 outlier at 1500 ms.
  for (let i = 0; i < 990; i++) recordMs(h, 2);
  for (let i = 0; i < 9; i++) recordMs(h, 50);
  recordMs(h, 1500);
  const s = summarizeHistogram(h)!;
  t.is(s.count, 1000);
  t.true(Math.abs(s.p50Ms - 2) / 2 < 0.002, `p50 ${s.p50Ms}`);
  t.true(Math.abs(s.p99Ms - 2) / 2 < 0.002, `p99 ${s.p99Ms}: 990 of 1000 at 2 ms`);
  t.true(Math.abs(s.p999Ms - 50) / 50 < 0.002, `p99.9 ${s.p999Ms}`);
  t.true(Math.abs(s.maxMs - 1500) / 1500 < 0.002, `max ${s.maxMs}`);
  t.true(Math.abs(s.minMs - 2) / 2 < 0.002);
  h.destroy();
});

test('sub-microsecond latencies are recorded as 1 µs, not dropped', (t) => {
  const h = newLatencyHistogram();
  recordMs(h, 0.0001);
  t.is(summarizeHistogram(h)!.count, 1);
  t.is(summarizeHistogram(h)!.maxMs, 0.001);
});

test('ops/s and CPU per op', (t) => {
  t.is(opsPerSecond(500, 250), 2000);
  t.throws(() => opsPerSecond(1, 0), { instanceOf: RangeError });
  t.is(cpuMsPerOp(120, 60), 2);
  t.is(cpuMsPerOp(120, 0), undefined, 'no ops: no per-op figure rather than Infinity');
});

test('parseProcStat counts fields from the last parenthesis (command names may contain spaces and parens)', (t) => {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const line = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 11 0 100 0 0';
  t.deepEqual(parseProcStat(line), { utime: 1234, stime: 567 });
  t.throws(() => parseProcStat('garbage'), { message: /not a \/proc/ });
  t.throws(() => parseProcStat('1 (x) S 1 2'), { message: /no utime/ });
});

// ---- targets ----

const floor: FloorResult = {
  fsync: { dir: '/tmp', blockBytes: 4096, samples: 100, p50Ms: 1, p99Ms: 3 },
  loopback: { source: 'ping', samples: 100, p50Ms: 0.2, p99Ms: 1 },
};

function load(workload: Workload, concurrency: number, opsPerSec: number, p50Ms: number): LoadResult {
  return {
    workload,
    concurrency,
    ops: Math.round(opsPerSec),
    errors: 0,
    elapsedMs: 1000,
    opsPerSec,
    latency: { count: Math.round(opsPerSec), minMs: p50Ms, meanMs: p50Ms, p50Ms, p99Ms: p50Ms, p999Ms: p50Ms, maxMs: p50Ms },
  };
}

const before = { id: 'n1', term: 3 };

test('targets: every target PASSes on numbers that meet it, with the numbers in the detail', (t) => {
  const checks = evaluateTargets({
    floor,
    load: [
      load('put-sync', 1, 400, 2.9), // limit 2.5 x 1.2 = 3.0
      load('put-async', 1, 2000, 1.4), // limit 0.5 x 2.9 = 1.45
      load('put-sync', 64, 3300, 19), // needs 8 x 400 = 3200
      load('get-linearizable', 64, 4000, 15),
      load('get-follower', 64, 6000, 10), // needs 1.5 x 4000 = 6000
    ],
    leader: { before, after: { ...before }, changed: false, changes: [] },
  });
  t.deepEqual(
    checks.map((c) => [c.id, c.status]),
    [
      ['sync-put-p50-c1', 'PASS'],
      ['async-put-p50-c1', 'PASS'],
      ['sync-put-scaling-c64', 'PASS'],
      ['follower-read-scaling-c64', 'PASS'],
      ['no-leader-change', 'PASS'],
    ],
  );
  t.is(checks[0]!.limit, 3);
  t.regex(checks[0]!.detail, /2\.90 ms vs limit 3\.00 ms/);
  t.is(checks[2]!.limit, 3200);
});

test('targets: MISS when a number is just past its limit', (t) => {
  const checks = evaluateTargets({
    floor,
    load: [
      load('put-sync', 1, 400, 3.01),
      load('put-async', 1, 2000, 1.51), // limit 0.5 x 3.01 = 1.505
      load('put-sync', 64, 3199, 19),
      load('get-linearizable', 64, 4000, 15),
      load('get-follower', 64, 5999, 10),
    ],
    leader: { before, after: { id: 'n2', term: 4 }, changed: true, changes: [] },
  });
  t.deepEqual(
    checks.map((c) => c.status),
    ['MISS', 'MISS', 'MISS', 'MISS', 'MISS'],
  );
  t.regex(checks[4]!.detail, /before n1 term 3, after n2 term 4/);
});

test('targets: SKIP (never PASS) when the data is missing, a phase had no successful op, or the leader is unknown', (t) => {
  const noOps = { ...load('put-sync', 1, 0, 1), ops: 0, latency: undefined };
  const checks = evaluateTargets({ load: [noOps, load('get-follower', 64, 100, 1)] });
  t.true(
    checks.every((c) => c.status === 'SKIP'),
    JSON.stringify(checks),
  );
  const noEnd = evaluateTargets({ floor, load: [], leader: { before, changes: [] } });
  t.is(noEnd.find((c) => c.id === 'no-leader-change')!.status, 'SKIP');
});

test('a leader change is a new leader or a new term', (t) => {
  t.false(leaderChanged({ id: 'n1', term: 2 }, { id: 'n1', term: 2 }));
  t.true(leaderChanged({ id: 'n1', term: 2 }, { id: 'n2', term: 3 }));
  t.true(leaderChanged({ id: 'n1', term: 2 }, { id: 'n1', term: 3 }), 're-elected after an election still counts');
});

function status(id: string, role: NodeStatus['role'], term: number, leaderId: string): EndpointStatus {
  return {
    endpoint: `127.0.0.1:${id}`,
    status: { id, clientAddress: '', role, term, leaderId, leaderClientAddress: '', commitIndex: 1, appliedIndex: 1, lastIndex: 1, members: [] },
  };
}

test('agreedLeader needs every node answering, one leader, and the same leader and term everywhere', (t) => {
  const good = [status('n1', 'leader', 2, 'n1'), status('n2', 'follower', 2, 'n1'), status('n3', 'follower', 2, 'n1')];
  t.deepEqual(agreedLeader(good, 3), { id: 'n1', term: 2 });
  t.is(agreedLeader(good.slice(0, 2), 3), undefined, 'a node did not answer');
  t.is(agreedLeader([good[0]!, good[1]!, status('n3', 'follower', 1, '')], 3), undefined, 'n3 has not heard of the leader');
  t.is(agreedLeader([good[0]!, good[1]!, { endpoint: 'x', error: new Error('down') }], 3), undefined);
  t.is(agreedLeader([status('n1', 'candidate', 3, ''), status('n2', 'follower', 3, ''), status('n3', 'follower', 3, '')], 3), undefined);
});

// ---- rendering and profiles ----

test('renderTable pads columns and right-aligns numbers', (t) => {
  const out = renderTable(
    ['op', 'ops/s'],
    [
      ['put', '5'],
      ['linearizable get', '1234'],
    ],
    [false, true],
  );
  t.is(out, ['op                ops/s', '----------------  -----', 'put                   5', 'linearizable get   1234'].join('\n'));
  t.throws(() => renderTable(['a', 'b'], [['1']]), { instanceOf: RangeError });
});

test('selfTimes bills each sample to its own node, by function and by file', (t) => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
      { id: 2, callFrame: { functionName: 'encode', url: 'file:///w/node_modules/msgpackr/pack.js', lineNumber: 9 } },
      { id: 3, callFrame: { functionName: 'step', url: 'file:///w/src/raft/raft.ts', lineNumber: 99 } },
    ],
    samples: [2, 3, 2, 2],
    timeDeltas: [0, 1000, 1000, 1000, 1000], // µs; delta i+1 is sample i's time
  };
  const byFn = selfTimes(profile, 'function');
  t.is(byFn[0]!.name, 'encode node_modules/msgpackr/pack.js:10');
  t.is(byFn[0]!.ms, 3);
  t.is(byFn[0]!.percent, 75);
  t.deepEqual(
    selfTimes(profile, 'file').map((r) => [r.name, r.ms]),
    [
      ['node_modules/msgpackr/pack.js', 3],
      ['src/raft/raft.ts', 1],
    ],
  );
});

// ---- argument parsing ----

test('bench args: defaults, --quick shortens the run, explicit values win', (t) => {
  const d = parseBenchArgs([]);
  t.is(d.durationMs, 5000);
  t.is(d.valueSize, 256);
  t.deepEqual(d.concurrency, [1, 16, 64, 256]);
  t.false(d.quick);
  t.is(d.jsonOut, DEFAULT_JSON_OUT);
  t.is(d.profileDir, undefined);

  const q = parseBenchArgs(['--quick']);
  t.true(q.quick);
  t.is(q.durationMs, 1000);
  t.true(q.microMaxTimeS < d.microMaxTimeS);

  const o = parseBenchArgs([
    '--quick',
    '--duration-ms',
    '2500',
    '--value-size=1024',
    '--concurrency',
    '64,1,16,1',
    '--json-out',
    'x.json',
    '--profile-dir',
    'p',
  ]);
  t.is(o.durationMs, 2500, 'an explicit duration overrides --quick');
  t.is(o.valueSize, 1024);
  t.deepEqual(o.concurrency, [1, 16, 64], 'sorted and deduplicated');
  t.is(o.jsonOut, 'x.json');
  t.is(o.profileDir, 'p');
  t.true(parseBenchArgs(['--help']).help);
});

test('bench args: bad input names the option and is rejected', (t) => {
  const bad: [string[], RegExp][] = [
    [['--duration-ms'], /--duration-ms: needs a value/],
    [['--duration-ms', 'fast'], /--duration-ms: expected an integer/],
    [['--duration-ms', '10'], /--duration-ms: must be between 100/],
    [['--value-size', '0'], /--value-size: must be between 1/],
    [['--value-size', String(2 * 1024 * 1024)], /--value-size: must be between/],
    [['--concurrency', '1,,4'], /--concurrency: empty item/],
    [['--concurrency', '1,-4'], /--concurrency: expected an integer/],
    [['--concurrency', '--quick'], /--concurrency: needs a value/],
    [['--json-out'], /--json-out: needs a file path/],
    [['--quick=yes'], /--quick: takes no value/],
    [['--turbo'], /--turbo: unknown option/],
  ];
  for (const [argv, message] of bad) {
    const e = t.throws(() => parseBenchArgs(argv), { instanceOf: BenchUsageError, message }, argv.join(' '));
    t.truthy(e?.option);
  }
  t.deepEqual(parseConcurrencyList('256'), [256]);
});

test('bench args: --scale takes a size with a unit, defaults to 1 KiB values, and refuses nonsense', (t) => {
  const s = parseBenchArgs(['--scale', '2GB']);
  t.is(s.scaleBytes, 2 * 1024 ** 3);
  t.is(s.valueSize, 1024);
  t.is(s.scaleConcurrency, 64);
  t.is(parseBenchArgs(['--scale=150MB', '--value-size', '512', '--scale-concurrency', '16']).scaleBytes, 150 * 1024 ** 2);
  t.is(parseBenchArgs(['--scale=150MB', '--value-size', '512']).valueSize, 512);
  t.is(parseBenchArgs([]).scaleBytes, undefined);
  for (const bad of ['lots', '0', '100TB', '10KB']) {
    t.throws(() => parseBenchArgs(['--scale', bad]), { instanceOf: BenchUsageError, message: /--scale/ });
  }
});

test('fmtCpuSplit marks the leader and rounds percentages', (t) => {
  t.is(fmtCpuSplit({ n1: 45.4, n2: 20.6, n3: 0 }, 59.5, 'n1'), 'n1* 45 n2 21 n3 0 | 60');
  t.is(fmtCpuSplit(undefined, 10), '-');
  t.is(fmtCpuSplit({ n1: 1 }, undefined), 'n1 1 | -');
});
