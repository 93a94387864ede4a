// The node's watch history (WatchHub) and the watch slots per node and per connection
// (WatchCounter): in memory, no gRPC.
import test from 'ava';
import type { KvEvent } from '../../src/api/command.js';
import { OverloadedError, ShuttingDownError, WatchCompactedError } from '../../src/api/errors.js';
import { WatchHub } from '../../src/runtime/watch-hub.js';
import { WatchCounter } from '../../src/server/watch-stream.js';

const te = new TextEncoder();
const td = new TextDecoder();

function ev(index: number, key: string, value = `v${index}`): KvEvent {
  return { type: 'put', key: te.encode(key), value: te.encode(value), index, lease: 0 };
}

/** Applies `index` with one event per key, as the state machine's listener and the Ready loop do. */
function apply(hub: WatchHub, index: number, ...keys: string[]): void {
  hub.append(keys.map((k) => ev(index, k)));
  hub.advance(index);
}

/** Reads everything from `from` in steps of at most `step` events, like a watch stream does. */
function readAll(hub: WatchHub, from: number, step: number): { index: number; key: string }[] {
  const out: { index: number; key: string }[] = [];
  let next = from;
  for (let guard = 0; guard < 10_000 && next <= hub.appliedIndex(); guard++) {
    const r = hub.read(next, step);
    for (const entry of r.entries) for (const e of entry.events) out.push({ index: entry.index, key: td.decode(e.key) });
    if (r.next <= next) throw new Error(`read from ${next} did not move on`);
    next = r.next;
  }
  return out;
}

test('the history returns events in log order, whole indexes at a time, and moves past indexes without events', (t) => {
  const hub = new WatchHub('n1', 10);
  apply(hub, 11, 'a');
  hub.advance(12); // a no-op entry: no events
  apply(hub, 13, 'b', 'c', 'd'); // one txn changing three keys
  apply(hub, 14, 'e');
  const first = hub.read(11, 2);
  // 11 has one event; 13's three do not fit in the rest of 2, but whole indexes only.
  t.deepEqual(
    first.entries.map((e) => e.index),
    [11],
  );
  t.is(first.next, 13);
  const second = hub.read(first.next, 2);
  t.deepEqual(
    second.entries.map((e) => [e.index, e.events.length]),
    [[13, 3]],
    'an index larger than the step still goes out whole',
  );
  t.deepEqual(
    readAll(hub, 11, 1).map((e) => `${e.index}${e.key}`),
    ['11a', '13b', '13c', '13d', '14e'],
  );
  const caughtUp = hub.read(15, 10);
  t.deepEqual(caughtUp.entries, []);
  t.is(caughtUp.next, 15);
});

test('resuming from the index after the last one delivered gives every later event exactly once', (t) => {
  const hub = new WatchHub('n1', 0);
  for (let i = 1; i <= 50; i++) apply(hub, i, `k${i % 5}`, ...(i % 7 === 0 ? [`x${i}`] : []));
  const all = readAll(hub, 1, 1000);
  for (const cut of [1, 7, 8, 30, 50]) {
    // A watcher delivered everything below `cut`, its stream broke, and it resumes from `cut`.
    const before = all.filter((e) => e.index < cut);
    const resumed = readAll(hub, cut, 3);
    t.deepEqual([...before, ...resumed], all, `resume from ${cut}`);
  }
});

test('a resume from before the window fails with WatchCompactedError naming the oldest index kept', (t) => {
  const hub = new WatchHub('n1', 100, { maxEvents: 4, maxBytes: 1 << 20 });
  t.is(hub.oldestIndex(), 101, 'a new node keeps history from its applied index + 1');
  const err = t.throws(() => hub.read(100, 10), { instanceOf: WatchCompactedError });
  t.is(err.oldestIndex, 101);
  t.is(err.requestedIndex, 100);
  for (let i = 101; i <= 106; i++) apply(hub, i, 'k');
  // 6 events, room for 4: 101 and 102 were evicted.
  t.is(hub.oldestIndex(), 103);
  t.is(hub.size.events, 4);
  const evicted = t.throws(() => hub.read(102, 10), { instanceOf: WatchCompactedError });
  t.is(evicted.oldestIndex, 103);
  t.regex(evicted.message, /keeps watch history from index 103/);
  t.deepEqual(
    readAll(hub, 103, 10).map((e) => e.index),
    [103, 104, 105, 106],
  );
});

test('the window is bounded by bytes too, and a snapshot install starts it again', (t) => {
  const hub = new WatchHub('n1', 0, { maxEvents: 1000, maxBytes: 300 });
  for (let i = 1; i <= 20; i++) apply(hub, i, 'key');
  t.true(hub.size.bytes <= 300);
  t.true(hub.oldestIndex() > 1);
  hub.reset(40);
  t.is(hub.oldestIndex(), 41);
  t.is(hub.appliedIndex(), 40);
  t.is(hub.size.events, 0);
  t.throws(() => hub.read(20, 10), { instanceOf: WatchCompactedError });
});

test('a waiting watcher wakes when its index is applied, on abort, and at close (then reads fail)', async (t) => {
  const hub = new WatchHub('n1', 5);
  await hub.waitFor(5, new AbortController().signal); // applied already: at once
  let woke = false;
  const waiting = hub.waitFor(7, new AbortController().signal).then(() => (woke = true));
  apply(hub, 6, 'a');
  await Promise.resolve();
  t.false(woke, 'index 6 is not the one it waits for');
  apply(hub, 7, 'b');
  await waiting;
  t.true(woke);
  const aborted = new AbortController();
  const onAbort = hub.waitFor(100, aborted.signal);
  t.is(hub.size.watchersWaiting, 1);
  aborted.abort();
  await onAbort;
  t.is(hub.size.watchersWaiting, 0, 'an aborted wait leaves nothing behind');
  const atClose = hub.waitFor(100, new AbortController().signal);
  hub.close();
  await atClose;
  t.throws(() => hub.read(8, 10), { instanceOf: ShuttingDownError });
  await t.throwsAsync(hub.waitFor(8, new AbortController().signal), { instanceOf: ShuttingDownError });
});

test('watch slots are limited per connection and per node, and a released slot is given back once', (t) => {
  const counter = new WatchCounter({ maxKeyBytes: 100, maxWatchers: 3, maxWatchersPerConnection: 2, maxWatchMessageBytes: 1000 });
  const a1 = counter.acquire('ipv4:127.0.0.1:1000');
  counter.acquire('ipv4:127.0.0.1:1000');
  const perConnection = t.throws(() => counter.acquire('ipv4:127.0.0.1:1000'), { instanceOf: OverloadedError });
  t.is(perConnection.limit, 2);
  t.regex(perConnection.message, /this connection/);
  const b1 = counter.acquire('ipv4:127.0.0.1:2000');
  const perNode = t.throws(() => counter.acquire('ipv4:127.0.0.1:3000'), { instanceOf: OverloadedError });
  t.is(perNode.limit, 3);
  t.regex(perNode.message, /this node/);
  a1();
  a1(); // twice: no second slot freed
  counter.acquire('ipv4:127.0.0.1:1000');
  t.throws(() => counter.acquire('ipv4:127.0.0.1:3000'), { instanceOf: OverloadedError }, 'a double release did not free two slots');
  b1();
  t.notThrows(() => counter.acquire('ipv4:127.0.0.1:3000'));
});
