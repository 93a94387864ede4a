import test from 'ava';
import { watchEventLoop } from '../../src/process/event-loop-watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the event-loop watch observes every period and reports a blocked loop as a stall of about its length', async (t) => {
  const observed: number[] = [];
  const stalls: number[] = [];
  const stop = watchEventLoop({ observe: (ms) => observed.push(ms), onStall: (ms) => stalls.push(ms), stallMs: 80, everyMs: 20 });
  t.teardown(stop);
  await sleep(100);
  const until = performance.now() + 150;
  while (performance.now() < until) {
    // Block the loop: this is the stall.
  }
  await sleep(60);
  stop();
  const seen = observed.length;
  await sleep(60);
  t.true(seen >= 3, `${seen} observations`);
  t.is(observed.length, seen, 'stopped: no more observations');
  t.true(observed.every((ms) => ms >= 0));
  t.true(stalls.length >= 1, 'the blocked loop was reported');
  t.true(Math.max(...stalls) >= 100, `stall of ${Math.max(...stalls)} ms for a 150 ms block`);
});

test('the event-loop watch refuses a period or threshold that is not positive', (t) => {
  t.throws(() => watchEventLoop({ observe() {}, onStall() {}, stallMs: 0 }), { instanceOf: RangeError, message: /stallMs/ });
  t.throws(() => watchEventLoop({ observe() {}, onStall() {}, stallMs: 50, everyMs: -1 }), { instanceOf: RangeError, message: /everyMs/ });
});
