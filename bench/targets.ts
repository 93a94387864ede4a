// The performance targets of the brief, evaluated from measured numbers. Reported, never asserted:
// a MISS is information for the reader, not a failure of the run.
import type { FloorResult, LeaderCheck, LoadResult, TargetCheck, Workload } from './results.js';

export interface TargetInputs {
  floor?: FloorResult;
  load: readonly LoadResult[];
  leader?: LeaderCheck;
}

export const TARGET_FACTORS = {
  syncPutOverFloor: 2.5,
  asyncOverSync: 0.5,
  syncScalingC64: 8,
  followerOverLinearizableC64: 1.5,
} as const;

function find(load: readonly LoadResult[], workload: Workload, concurrency: number): LoadResult | undefined {
  return load.find((r) => r.workload === workload && r.concurrency === concurrency && r.ops > 0);
}

const fmt = (n: number, digits = 3): string => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(digits));

function skip(id: string, description: string, why: string): TargetCheck {
  return { id, description, status: 'SKIP', detail: why };
}

/** `actual <= limit` (or `>=` when atLeast) decides PASS/MISS. */
function verdict(id: string, description: string, actual: number, limit: number, atLeast: boolean, detail: string): TargetCheck {
  const pass = atLeast ? actual >= limit : actual <= limit;
  return { id, description, status: pass ? 'PASS' : 'MISS', actual, limit, detail };
}

export function evaluateTargets(input: TargetInputs): TargetCheck[] {
  const { floor, load, leader } = input;
  const out: TargetCheck[] = [];
  const f = TARGET_FACTORS;

  {
    const id = 'sync-put-p50-c1';
    const desc = `sync put p50 @c1 <= ${f.syncPutOverFloor} x (fsync p50 + loopback RTT p50)`;
    const r = find(load, 'put-sync', 1);
    if (!floor) out.push(skip(id, desc, 'floor not measured'));
    else if (!r?.latency) out.push(skip(id, desc, 'no sync put phase at concurrency 1'));
    else {
      const base = floor.fsync.p50Ms + floor.loopback.p50Ms;
      const limit = f.syncPutOverFloor * base;
      out.push(
        verdict(
          id,
          desc,
          r.latency.p50Ms,
          limit,
          false,
          `${fmt(r.latency.p50Ms)} ms vs limit ${fmt(limit)} ms (= ${f.syncPutOverFloor} x (${fmt(floor.fsync.p50Ms)} + ${fmt(floor.loopback.p50Ms)}))`,
        ),
      );
    }
  }

  {
    const id = 'async-put-p50-c1';
    const desc = `async put p50 @c1 <= ${f.asyncOverSync} x sync put p50 @c1`;
    const a = find(load, 'put-async', 1);
    const s = find(load, 'put-sync', 1);
    if (!a?.latency || !s?.latency) out.push(skip(id, desc, 'needs sync and async put phases at concurrency 1'));
    else {
      const limit = f.asyncOverSync * s.latency.p50Ms;
      out.push(
        verdict(
          id,
          desc,
          a.latency.p50Ms,
          limit,
          false,
          `${fmt(a.latency.p50Ms)} ms vs limit ${fmt(limit)} ms (= ${f.asyncOverSync} x ${fmt(s.latency.p50Ms)})`,
        ),
      );
    }
  }

  {
    const id = 'sync-put-scaling-c64';
    const desc = `sync put ops/s @c64 >= ${f.syncScalingC64} x ops/s @c1`;
    const c64 = find(load, 'put-sync', 64);
    const c1 = find(load, 'put-sync', 1);
    if (!c64 || !c1) out.push(skip(id, desc, 'needs sync put phases at concurrency 1 and 64'));
    else {
      const limit = f.syncScalingC64 * c1.opsPerSec;
      out.push(
        verdict(
          id,
          desc,
          c64.opsPerSec,
          limit,
          true,
          `${fmt(c64.opsPerSec)} ops/s vs needed ${fmt(limit)} (= ${f.syncScalingC64} x ${fmt(c1.opsPerSec)}); ratio ${fmt(c64.opsPerSec / c1.opsPerSec)}x`,
        ),
      );
    }
  }

  {
    const id = 'follower-read-scaling-c64';
    const desc = `follower get ops/s @c64 >= ${f.followerOverLinearizableC64} x linearizable get ops/s @c64`;
    const fo = find(load, 'get-follower', 64);
    const li = find(load, 'get-linearizable', 64);
    if (!fo || !li) out.push(skip(id, desc, 'needs follower and linearizable get phases at concurrency 64'));
    else {
      const limit = f.followerOverLinearizableC64 * li.opsPerSec;
      out.push(
        verdict(
          id,
          desc,
          fo.opsPerSec,
          limit,
          true,
          `${fmt(fo.opsPerSec)} ops/s vs needed ${fmt(limit)} (= ${f.followerOverLinearizableC64} x ${fmt(li.opsPerSec)}); ratio ${fmt(fo.opsPerSec / li.opsPerSec)}x`,
        ),
      );
    }
  }

  {
    const id = 'no-leader-change';
    const desc = 'no leader change during the run';
    if (!leader || leader.changed === undefined || !leader.after) out.push(skip(id, desc, 'leader not known at both ends of the run'));
    else {
      const detail = `before ${leader.before.id} term ${leader.before.term}, after ${leader.after.id} term ${leader.after.term}`;
      out.push({ id, description: desc, status: leader.changed ? 'MISS' : 'PASS', detail });
    }
  }

  return out;
}

/**
 * A leader change happened when the term moved or another node leads. A term that moved without a
 * new leader still counts: an election ran, and clients saw an unavailability window.
 */
export function leaderChanged(before: { id: string; term: number }, after: { id: string; term: number }): boolean {
  return before.id !== after.id || before.term !== after.term;
}
