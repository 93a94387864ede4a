import test from 'ava';
import { existsSync } from 'node:fs';
import { procSchedClock, type StallAttribution, watchEventLoop } from '../../src/process/event-loop-watch.js';

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

/** Blocks the event loop for `ms` (this is the stall). */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

test('a stall carries where the main thread spent it: on a CPU or waiting for one (from the scheduler clock)', async (t) => {
  let clock: [number, number] = [5e6, 1e6];
  const stalls: { ms: number; where: StallAttribution | undefined }[] = [];
  const stop = watchEventLoop({ observe() {}, onStall: (ms, where) => stalls.push({ ms, where }), stallMs: 80, everyMs: 20, schedClock: () => clock });
  t.teardown(stop);
  await sleep(60);
  // The thread ran 12 ms and waited 110 ms for a CPU over the window of the stall.
  clock = [clock[0] + 12e6, clock[1] + 110e6];
  block(120);
  await sleep(40);
  stop();
  // A loaded machine may add stalls of its own before or after; the clock moved in one window only,
  // so exactly one stall carries time, and it carries exactly that window's.
  const attributed = stalls.filter((s) => s.where && (s.where.onCpuMs > 0 || s.where.waitingForCpuMs > 0));
  t.is(attributed.length, 1, JSON.stringify(stalls));
  t.true(attributed[0]!.ms >= 80, JSON.stringify(stalls));
  t.deepEqual(attributed[0]!.where, { onCpuMs: 12, waitingForCpuMs: 110 });
  for (const other of stalls) if (other !== attributed[0]) t.deepEqual(other.where, { onCpuMs: 0, waitingForCpuMs: 0 });
});

test("on Linux the scheduler clock is the main thread's: a loop blocked by its own work shows that time on a CPU", async (t) => {
  if (!existsSync('/proc/thread-self/schedstat')) {
    t.log('no /proc/thread-self/schedstat (not Linux, or schedstats off): stalls carry no attribution here');
    t.is(procSchedClock().read(), undefined);
    return;
  }
  const stalls: (StallAttribution | undefined)[] = [];
  const stop = watchEventLoop({ observe() {}, onStall: (_ms, where) => stalls.push(where), stallMs: 80, everyMs: 20 });
  t.teardown(stop);
  await sleep(60);
  block(200);
  await sleep(40);
  stop();
  // A loaded machine may add stalls of its own: the block's is the one with the most time on a CPU.
  const where = stalls.filter((w) => w !== undefined).sort((a, b) => b!.onCpuMs - a!.onCpuMs)[0];
  t.truthy(where, 'the stall was attributed');
  // On a loaded machine part of a busy loop's time can go to waiting; together they cover the block.
  t.true(where!.onCpuMs + where!.waitingForCpuMs >= 150, JSON.stringify(where));
  t.true(where!.onCpuMs >= 50, `the busy loop ran on a CPU: ${JSON.stringify(where)}`);
});
