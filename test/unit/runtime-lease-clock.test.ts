// The lease judged on a monotonic clock: a paused process loses timer callbacks, not time.
import test from 'ava';
import { LeaseClock } from '../../src/runtime/lease-clock.js';

const clock = () => new LeaseClock({ tickMs: 10, leaseMs: 240, capacity: 120, maxCatchUpTicks: 120 });

test('a lease holds until leaseMs after the acknowledged round was sent, whatever the tick count says', (t) => {
  const c = clock();
  c.recordTick(5, 1000); // heartbeats stamped 5 were sent no earlier than t=1000
  t.true(c.holds(5, 1000));
  t.true(c.holds(5, 1239));
  t.false(c.holds(5, 1240));
  // A pause: no tick recorded since, but monotonic time moved 3 s on.
  t.false(c.holds(5, 4000));
});

test('an unknown or evicted stamp grants no lease', (t) => {
  const c = clock();
  t.false(c.holds(7, 0));
  t.false(c.holds(-Infinity, 0));
  c.recordTick(7, 100);
  c.recordTick(127, 200); // same slot (capacity 120): 7 is evicted
  t.false(c.holds(7, 150));
  t.true(c.holds(127, 200));
});

test('ticksDue never runs ahead of real time and catches up a stall, bounded', (t) => {
  const c = clock();
  c.start(0);
  t.is(c.ticksDue(5), 0); // the timer fired early: nothing due yet
  t.is(c.ticksDue(10), 1);
  t.is(c.ticksDue(19), 0);
  t.is(c.ticksDue(20), 1);
  t.is(c.ticksDue(620), 60); // a 600 ms stall: the 60 missed ticks are fed at once
  t.is(c.ticksDue(630), 1);
  t.is(c.ticksDue(630 + 10_000), 120); // beyond the bound: dropped, not owed
  t.is(c.ticksDue(630 + 10_010), 1);
  // Over any span, ticks fed <= elapsed / tickMs.
  const d = clock();
  d.start(0);
  let fed = 0;
  for (let now = 0; now <= 5000; now += 7) fed += d.ticksDue(now);
  t.true(fed <= 500);
  t.true(fed >= 499);
});
