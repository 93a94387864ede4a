// The drill's checkers on hand-made histories: linearizable ones pass, and a stale read, a lost
// write, a CAS on an old value, a broken session, an ignored minIndex and an untruthful async
// receipt are each flagged.
import test from 'ava';
import { checkHistory } from '../../src/drill/checks.js';
import type { HistoryOp } from '../../src/drill/history.js';
import { checkRegister } from '../../src/drill/linearizability.js';
import type { RegisterOp } from '../../src/drill/linearizability.js';

let nextId = 0;
function op(o: Partial<HistoryOp> & Pick<HistoryOp, 'kind' | 'start'>): HistoryOp {
  return { id: nextId++, client: 0, key: 'k', outcome: 'ok', ...(o.kind === 'get' ? { consistency: 'linearizable' } : { durability: 'sync' }), ...o };
}
const put = (value: string, start: number, end: number | undefined, extra: Partial<HistoryOp> = {}) =>
  op({ kind: 'put', value, start, ...(end === undefined ? { outcome: 'unknown' } : { end }), ...extra });
const get = (read: string | null, start: number, end: number, extra: Partial<HistoryOp> = {}) => op({ kind: 'get', read, start, end, ...extra });
const kinds = (ops: HistoryOp[]) => checkHistory(ops).violations.map((v) => v.kind);

test('a sequential history and overlapping operations in either order are linearizable', (t) => {
  t.deepEqual(kinds([put('a', 0, 10), get('a', 11, 20), put('b', 21, 30), get('b', 31, 40)]), []);
  // The read overlaps the write: it may see the old or the new value.
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, 40), get('a', 25, 30)]), []);
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, 40), get('b', 25, 30)]), []);
  t.deepEqual(kinds([get(null, 0, 5), op({ kind: 'delete', start: 6, end: 9 }), get(null, 10, 12)]), []);
});

test('a stale read is flagged: a read that began after a newer write was acked returns the older value', (t) => {
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, 30), get('a', 40, 50)]), ['not-linearizable']);
});

test('a lost write is flagged: an acked write that later reads never see', (t) => {
  const v = checkHistory([put('a', 0, 10), get('a', 20, 25), get(null, 30, 35)]);
  t.false(v.ok);
  t.is(v.violations[0]!.kind, 'not-linearizable');
  t.regex(v.violations[0]!.message, /key k/);
});

test('a CAS that succeeded against an old value is flagged; one against the current value is not', (t) => {
  const cas = (expected: string, value: string, start: number, end: number, succeeded: boolean) => op({ kind: 'cas', expected, value, start, end, succeeded });
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, 30), cas('a', 'c', 40, 50, true)]), ['not-linearizable']);
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, 30), cas('b', 'c', 40, 50, true), get('c', 60, 70)]), []);
  // A CAS that failed although its expected value was current is as wrong.
  t.deepEqual(kinds([put('a', 0, 10), cas('a', 'c', 40, 50, false)]), ['not-linearizable']);
});

test('an operation with an unknown outcome may have happened, late, or not at all', (t) => {
  // The timed-out write shows up long after its client gave up...
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, undefined), get('a', 30, 40), get('b', 50, 60)]), []);
  // ...or never; but once seen, it cannot be un-seen.
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, undefined), get('a', 30, 40)]), []);
  t.deepEqual(kinds([put('a', 0, 10), put('b', 20, undefined), get('b', 30, 40), get('a', 50, 60)]), ['not-linearizable']);
});

test('async writes: committed ones count from invocation to their waitFor; a value reported lost must never be read', (t) => {
  t.deepEqual(kinds([put('a', 0, 10, { durability: 'async', receipt: 'committed' }), get('a', 20, 30)]), []);
  t.deepEqual(kinds([put('a', 0, 10, { durability: 'async', receipt: 'lost' }), get(null, 20, 30)]), []);
  const k = kinds([put('a', 0, 10, { durability: 'async', receipt: 'lost' }), get('a', 20, 30)]);
  t.true(k.includes('lost-async-read'));
});

test('follower reads must return a value the key held between minIndex and the served index', (t) => {
  const w1 = put('a', 0, 10, { index: 5 });
  const w2 = put('b', 20, 30, { index: 8 });
  const ok = get('b', 40, 50, { consistency: 'follower', minIndex: 8, appliedIndex: 9, servedBy: 'n2' });
  const lagging = get('a', 40, 50, { consistency: 'follower', appliedIndex: 6, servedBy: 'n3' });
  t.deepEqual(kinds([w1, w2, ok, lagging]), []);
  const stale = get('a', 40, 50, { consistency: 'follower', minIndex: 8, appliedIndex: 9, servedBy: 'n2' });
  t.deepEqual(kinds([w1, w2, stale]), ['stale-follower-read']);
  const ignored = get('b', 40, 50, { consistency: 'follower', minIndex: 12, appliedIndex: 9, servedBy: 'n2' });
  t.deepEqual(kinds([w1, w2, ignored]), ['min-index']);
});

test('session reads going backwards across nodes are flagged', (t) => {
  const w = put('a', 0, 10, { index: 5 });
  const first = get('a', 20, 25, { consistency: 'session', client: 1, minIndex: 0, appliedIndex: 7, servedBy: 'n1' });
  const back = get('a', 30, 35, { consistency: 'session', client: 1, minIndex: 0, appliedIndex: 6, servedBy: 'n2' });
  t.deepEqual(kinds([w, first, back]), ['session-monotonic']);
  const forward = get('a', 30, 35, { consistency: 'session', client: 1, minIndex: 7, appliedIndex: 7, servedBy: 'n2' });
  t.deepEqual(kinds([w, first, forward]), []);
});

test('keys are checked independently, and a long history with unknowns stays within the search bound', (t) => {
  const ops: RegisterOp[] = [];
  let time = 0;
  for (let i = 0; i < 3000; i++) {
    const start = time;
    time += 3;
    if (i % 3 === 0) ops.push({ id: i, kind: 'put', value: `v${i}`, start, end: i % 30 === 0 ? Number.POSITIVE_INFINITY : start + 5 });
    else ops.push({ id: i, kind: 'get', read: `v${i - (i % 3)}`, start: start + 1, end: start + 4 });
  }
  // Reads of an unknown write's value are possible only if it happened: here it did.
  const verdict = checkRegister('k', ops);
  t.true(verdict.ok, JSON.stringify(verdict));
  t.false(verdict.inconclusive);
});

test('drill --check FILE re-checks a saved history: 0 when it holds, 1 on a violation, 2 for a file that is not one', async (t) => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { drillMain } = await import('../../src/drill/cli.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'quorumkv-drill-check-'));
  try {
    const save = async (name: string, ops: HistoryOp[]) => {
      const file = path.join(dir, name);
      await writeFile(file, JSON.stringify({ format: 'quorumkv-drill-history/1', seed: 7, ops, faults: [] }));
      return file;
    };
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } };
    t.is(await drillMain(['--check', await save('good.json', [put('a', 0, 10), get('a', 20, 30)])], io), 0);
    t.is(await drillMain(['--check', await save('bad.json', [put('a', 0, 10), put('b', 20, 30), get('a', 40, 50)])], io), 1);
    t.regex(out.join(''), /not-linearizable/);
    await writeFile(path.join(dir, 'junk.json'), '{"hello":1}');
    t.is(await drillMain(['--check', path.join(dir, 'junk.json')], io), 2);
    t.is(await drillMain(['--duration', 'forever'], io), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
