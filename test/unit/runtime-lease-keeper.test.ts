// Lease expiry by the leader's monotonic clock (LeaseKeeper) on a fake clock: only a leader
// proposes an expiry, never before the TTL; a new leader counts a full TTL again; a lease whose
// expiry was proposed refuses keep-alives.
import test from 'ava';
import { LEASE_LIMITS, type LeaseInfo } from '../../src/api/command.js';
import { LeaseNotFoundError } from '../../src/api/errors.js';
import { LeaseKeeper } from '../../src/runtime/lease-keeper.js';

/** A keeper over a fake clock and a lease table the test edits (as applies would). */
function keeper(retryMs = 500) {
  const state = { now: 1_000, leases: new Map<number, LeaseInfo>(), proposed: [] as { at: number; ids: number[] }[] };
  const k = new LeaseKeeper({
    now: () => state.now,
    leases: () => [...state.leases.values()],
    lease: (id) => state.leases.get(id),
    proposeExpiry: (ids) => state.proposed.push({ at: state.now, ids }),
    retryMs,
  });
  const grant = (id: number, ttlMs: number) => state.leases.set(id, { id, ttlMs, keys: 0 });
  /** Ticks every 10 ms up to `until` with the given role. */
  const runTo = (until: number, leader: boolean) => {
    for (let guard = 0; guard < 100_000 && state.now < until; guard++) {
      state.now = Math.min(until, state.now + 10);
      k.tick(leader);
    }
  };
  return { k, state, grant, runTo };
}

test('a follower never proposes an expiry, however long it waits', (t) => {
  const { state, grant, runTo } = keeper();
  grant(5, 1_000);
  runTo(10_000, false);
  t.deepEqual(state.proposed, []);
});

test('the leader proposes an expiry once the TTL has run out on its clock, not a tick before', (t) => {
  const { k, state, grant, runTo } = keeper();
  k.tick(true);
  const grantedAt = state.now;
  grant(5, 1_000);
  k.tick(true); // the leader sees the grant applied: the TTL runs from now
  runTo(grantedAt + 990, true);
  t.deepEqual(state.proposed, [], 'not before the TTL');
  runTo(grantedAt + 1_000, true);
  t.deepEqual(state.proposed, [{ at: grantedAt + 1_000, ids: [5] }]);
});

test('a keep-alive gives a full TTL again; after the expiry was proposed it is refused', (t) => {
  const { k, state, grant, runTo } = keeper();
  grant(5, 1_000);
  k.tick(true);
  const start = state.now;
  runTo(start + 800, true);
  t.is(k.keepAlive(5), 1_000);
  t.is(k.remainingMs({ id: 5, ttlMs: 1_000, keys: 0 }), 1_000);
  runTo(start + 1_790, true);
  t.deepEqual(state.proposed, [], 'renewed at 800: not due before 1800');
  runTo(start + 1_800, true);
  t.deepEqual(
    state.proposed.map((p) => p.ids),
    [[5]],
  );
  // The expiry is in the log but not applied yet: the lease still exists in the table.
  const err = t.throws(() => k.keepAlive(5), { instanceOf: LeaseNotFoundError });
  t.is(err.leaseId, 5);
  t.throws(() => k.keepAlive(99), { instanceOf: LeaseNotFoundError }, 'an unknown lease');
});

test('an expiry that was not applied is proposed again after retryMs, and stops once the lease is gone', (t) => {
  const { k, state, grant, runTo } = keeper(500);
  grant(5, 1_000);
  k.tick(true);
  const start = state.now;
  runTo(start + 1_000, true);
  runTo(start + 1_490, true);
  t.is(state.proposed.length, 1, 'not again within retryMs');
  runTo(start + 1_500, true);
  t.is(state.proposed.length, 2);
  state.leases.delete(5); // the expiry was applied
  runTo(start + 5_000, true);
  t.is(state.proposed.length, 2);
});

test('a new leader gives every lease its full TTL from when it took over', (t) => {
  const { k, state, grant, runTo } = keeper();
  grant(5, 1_000);
  grant(6, 3_000);
  // Granted long ago under another leader (this node followed).
  runTo(50_000, false);
  const tookOver = state.now;
  k.tick(true);
  runTo(tookOver + 990, true);
  t.deepEqual(state.proposed, [], 'lease 5 not expired early by the change of leader');
  t.is(k.remainingMs({ id: 6, ttlMs: 3_000, keys: 0 }), 2_010);
  runTo(tookOver + 1_000, true);
  t.deepEqual(
    state.proposed.map((p) => p.ids),
    [[5]],
  );
  // Losing leadership forgets this leader's judgment (and its proposed expiries): taking over
  // again starts a full TTL again, and a keep-alive is accepted again.
  runTo(tookOver + 1_500, false);
  const again = state.now;
  k.tick(true);
  t.is(k.keepAlive(6), 3_000);
  runTo(again + 990, true);
  t.deepEqual(
    state.proposed.map((p) => p.ids),
    [[5]],
  );
  runTo(again + 1_000, true);
  t.deepEqual(
    state.proposed.map((p) => p.ids),
    [[5], [5]],
  );
});

test('many leases due at once are proposed in commands of at most maxExpirePerCommand ids', (t) => {
  const { k, state, grant, runTo } = keeper();
  const n = LEASE_LIMITS.maxExpirePerCommand * 2 + 3;
  for (let id = 1; id <= n; id++) grant(id, 1_000);
  k.tick(true);
  runTo(state.now + 1_000, true);
  t.deepEqual(
    state.proposed.map((p) => p.ids.length),
    [LEASE_LIMITS.maxExpirePerCommand, LEASE_LIMITS.maxExpirePerCommand, 3],
  );
  t.deepEqual(
    state.proposed.flatMap((p) => p.ids),
    Array.from({ length: n }, (_, i) => i + 1),
  );
});
