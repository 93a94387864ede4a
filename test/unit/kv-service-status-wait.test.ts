// Status as a long poll: a client waiting on a hung leader asks the other nodes to answer once they
// know a leader in a newer term. The wait ends on that news, at wait_ms (capped at 1 s), or at
// once when the node's bound on parked calls is reached.
import test from 'ava';
import { EndpointPool } from '../../src/client/endpoint-pool.js';
import type { WireStatusResponse } from '../../src/api/kv-proto.js';
import { LeaderWaiters } from '../../src/runtime/leader-waiters.js';
import { SYSTEM_CLOCK } from '../../src/runtime/clock.js';
import { startFakeNode } from './kv-service-fake-backend.js';
import type { FakeNode } from './kv-service-fake-backend.js';

let node: FakeNode;
let pool: EndpointPool;

test.before(async () => {
  node = await startFakeNode('n2');
  pool = new EndpointPool([node.address]);
});

test.after.always(async () => {
  pool?.close();
  await node?.server.close();
});

const status = (request: object) => pool.call<WireStatusResponse>(node.address, 'Status', request, Date.now() + 5_000);

test.serial('a long-polling Status answers when the node learns of a leader in a newer term', async (t) => {
  node.backend.term = 4;
  let answered = false;
  const call = status({ leaderTermAbove: 4, waitMs: 1_000 }).then((r) => {
    answered = true;
    return r;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(answered, 'held while no newer leader is known');
  node.backend.newTerm(5);
  const r = await call;
  t.is(Number(r.term), 5);
  t.is(node.backend.leaderWaiters.size, 0);
});

test.serial('it answers at once when a newer leader is already known, or without both fields', async (t) => {
  node.backend.term = 7;
  // A sentinel parked for the whole 1 s cap: the calls below return while it is still parked.
  const sentinel = status({ leaderTermAbove: 7, waitMs: 1_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(Number((await status({ leaderTermAbove: 6, waitMs: 5_000 })).term), 7);
  t.is(Number((await status({ leaderTermAbove: 7 })).term), 7);
  t.is(Number((await status({})).term), 7);
  t.is(node.backend.leaderWaiters.size, 1, 'only the sentinel ever parked');
  node.backend.newTerm(8);
  await sentinel;
});

test.serial('with no newer leader it answers after wait_ms with the view as it is', async (t) => {
  node.backend.term = 9;
  const started = Date.now();
  const r = await status({ leaderTermAbove: 9, waitMs: 200 });
  t.is(Number(r.term), 9);
  t.true(Date.now() - started >= 190);
  t.is(node.backend.leaderWaiters.size, 0);
});

test.serial('past the bound on parked calls a Status answers at once', async (t) => {
  node.backend.term = 11;
  // The fake's bound is 4.
  const held = Array.from({ length: 4 }, () => status({ leaderTermAbove: 11, waitMs: 5_000 }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(node.backend.leaderWaiters.size, 4);
  await status({ leaderTermAbove: 11, waitMs: 5_000 });
  t.is(node.backend.leaderWaiters.size, 4, 'the fifth answered while the four were still parked');
  node.backend.newTerm(12);
  await Promise.all(held);
});

test.serial('wait_ms is capped at 1 s whatever the client asks', async (t) => {
  node.backend.term = 13;
  const started = Date.now();
  t.is(Number((await status({ leaderTermAbove: 13, waitMs: 4_294_967_295 })).term), 13);
  const took = Date.now() - started;
  t.true(took >= 950 && took < 3_000, `took ${took} ms`);
  t.is(node.backend.leaderWaiters.size, 0);
});

test('LeaderWaiters: a cancelled or timed-out wait is removed, shutdown releases all, the bound is checked', async (t) => {
  const waiters = new LeaderWaiters(SYSTEM_CLOCK, 2);
  const ac = new AbortController();
  const a = waiters.wait(3, Date.now() + 10_000, ac.signal);
  const b = waiters.wait(3, Date.now() + 50);
  t.is(waiters.size, 2);
  await waiters.wait(3, Date.now() + 10_000); // bound reached: at once
  ac.abort();
  await a;
  await b;
  t.is(waiters.size, 0);
  const c = waiters.wait(5, Date.now() + 10_000);
  waiters.notify(5); // not newer than 5
  t.is(waiters.size, 1);
  waiters.releaseAll();
  await c;
  t.is(waiters.size, 0);
  t.throws(() => new LeaderWaiters(SYSTEM_CLOCK, -1), { instanceOf: RangeError });
});
