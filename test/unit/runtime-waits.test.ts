// The runtime's parked waits: every one is bounded by withDeadline and unregistered when the
// deadline wins, so abandoned requests leave nothing behind.
import test from 'ava';
import type { CommandResult } from '../../src/api/command.js';
import { DeadlineExceededError, ReceiptTooOldError } from '../../src/api/errors.js';
import { IndexWaiters } from '../../src/runtime/index-waiters.js';
import { TransferWaiters } from '../../src/runtime/leadership-transfer.js';
import { PendingProposals, receiptOutcome } from '../../src/runtime/proposals.js';
import { ReadIndexBatcher } from '../../src/runtime/read-index-batcher.js';
import { SYSTEM_CLOCK } from '../../src/runtime/clock.js';
import { withDeadline } from '../../src/runtime/with-deadline.js';

const never = <T>() => new Promise<T>(() => {});

test('withDeadline rejects at the deadline, calls cancel once, and ignores a late outcome', async (t) => {
  let cancels = 0;
  let settle!: (v: string) => void;
  const work = new Promise<string>((resolve) => (settle = resolve));
  const raced = withDeadline(
    work,
    Date.now() + 20,
    SYSTEM_CLOCK,
    () => new DeadlineExceededError(20, 'test'),
    () => cancels++,
  );
  await t.throwsAsync(raced, { instanceOf: DeadlineExceededError });
  settle('late');
  await new Promise((r) => setTimeout(r, 5));
  t.is(cancels, 1);
});

test('withDeadline passes results and errors through and then never cancels', async (t) => {
  let cancels = 0;
  t.is(
    await withDeadline(
      Promise.resolve(7),
      Date.now() + 1000,
      SYSTEM_CLOCK,
      () => new Error('x'),
      () => cancels++,
    ),
    7,
  );
  await t.throwsAsync(
    withDeadline(
      Promise.reject(new RangeError('boom')),
      Date.now() + 1000,
      SYSTEM_CLOCK,
      () => new Error('x'),
      () => cancels++,
    ),
    { instanceOf: RangeError },
  );
  t.is(cancels, 0);
  // A deadline already in the past still rejects (on the next timer turn), not synchronously.
  await t.throwsAsync(
    withDeadline(never<number>(), Date.now() - 5, SYSTEM_CLOCK, () => new DeadlineExceededError(0, 'past')),
    { instanceOf: DeadlineExceededError },
  );
});

test('IndexWaiters.remove unparks exactly that waiter and keeps the heap ordered', (t) => {
  const w = new IndexWaiters();
  const released: number[] = [];
  const handles = [50, 10, 40, 20, 30, 60, 5].map((i) => w.add(i, () => released.push(i)));
  w.remove(handles[2]!); // 40
  w.remove(handles[6]!); // 5 (the root)
  w.remove(handles[6]!); // twice: no-op
  t.is(w.size, 5);
  w.notify(35);
  t.deepEqual(released, [10, 20, 30]);
  w.remove(handles[1]!); // already released: no-op
  w.notify(100);
  t.deepEqual(released, [10, 20, 30, 50, 60]);
  t.is(w.size, 0);
});

test('IndexWaiters: many waiters for an index never reached are all freed by remove', (t) => {
  const w = new IndexWaiters();
  const handles = Array.from({ length: 1000 }, (_, i) => w.add(1_000_000 + (i % 17), () => t.fail('must not release')));
  for (const h of handles) w.remove(h);
  t.is(w.size, 0);
});

test('ReadIndexBatcher.cancel gives the slot back, queued or in flight', async (t) => {
  const issued: string[] = [];
  const b = new ReadIndexBatcher({ issue: (c) => issued.push(c), contextPrefix: 'n1', retryAfterMs: 1000, now: Date.now });
  const first = b.request(); // issues round 1 at once
  const second = b.request(); // queued for round 2
  t.is(b.pending, 2);
  second.cancel();
  first.cancel();
  t.is(b.pending, 0);
  const third = b.request();
  b.onReadState(issued[0]!, 9); // round 1 answers: nobody left in it; round 2 (third) is issued
  t.is(issued.length, 2);
  b.onReadState(issued[1]!, 12);
  t.is(await third.index, 12);
});

test('PendingProposals: applied, overwritten, snapshot-covered and cancelled proposals', async (t) => {
  const lost = (term: number, index: number) => new Error(`lost ${term}/${index}`);
  const p = new PendingProposals(lost);
  const ok = p.track(2, 10);
  const overwritten = p.track(2, 11);
  const uncertain = p.track(1, 12);
  const covered = p.track(2, 13);
  const cancelled = p.track(2, 14);
  cancelled.cancel();
  t.is(p.size, 4);
  const result: CommandResult = { index: 10, result: { op: 'put', prevExisted: false } };
  p.applied(10, 2, result);
  p.applied(11, 3, undefined);
  p.snapshotInstalled(13, 2, () => new Error('uncertain')); // covers 12 (other term) and 13 (same term)
  t.is(await ok.result, result);
  await t.throwsAsync(overwritten.result, { message: 'lost 2/11' });
  t.is(await covered.result, null);
  await t.throwsAsync(uncertain.result, { message: 'uncertain' });
  t.is(p.size, 0);
});

test('receiptOutcome: from the log, from the snapshot, and too old to know', (t) => {
  const evidence = { termAt: (i: number) => (i >= 100 ? 4 : undefined), snapshot: { index: 99, term: 3 } };
  t.is(receiptOutcome(4, 100, evidence), 'committed');
  t.is(receiptOutcome(3, 100, evidence), 'lost');
  t.is(receiptOutcome(4, 50, evidence), 'lost'); // newer term than the snapshot's at an index it covers
  t.throws(() => receiptOutcome(2, 50, evidence), { instanceOf: ReceiptTooOldError });
});

test('TransferWaiters release only the waiters for the leader seen; cancel forgets one', async (t) => {
  const w = new TransferWaiters();
  const toN2 = w.wait('n2');
  const toN3 = w.wait('n3');
  const cancelled = w.wait('n2');
  cancelled.cancel();
  let n3Done = false;
  void toN3.done.then(() => (n3Done = true));
  w.leaderSeen('n2');
  await toN2.done;
  await new Promise((r) => setImmediate(r));
  t.false(n3Done);
  w.releaseAll();
  await toN3.done;
  t.pass();
});
