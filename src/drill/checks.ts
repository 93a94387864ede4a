// Every property the drill checks on a recorded history:
// - linearizability of sync writes, CAS, committed async writes and linearizable/lease reads
//   (Wing–Gong/Lowe per key, see linearizability.ts);
// - no acknowledged sync write lost, and follower/session reads return the state at the index
//   they were served at (a read at applied index A sees the newest write known to be <= A);
// - async receipts truthful: a write reported lost is never read;
// - follower reads honour minIndex; session reads are monotonic per client.
import type { HistoryOp } from './history.js';
import { checkRegister, DEFAULT_MAX_STATES } from './linearizability.js';
import type { KeyVerdict, RegisterOp } from './linearizability.js';

export type ViolationKind = 'not-linearizable' | 'stale-follower-read' | 'lost-async-read' | 'min-index' | 'session-monotonic' | 'inconclusive';

export interface Violation {
  kind: ViolationKind;
  key?: string;
  /** Ids of the operations involved. */
  ops: number[];
  message: string;
}

export interface CheckReport {
  ok: boolean;
  violations: Violation[];
  /** Violations beyond this many are counted, not listed. */
  omitted: number;
  keys: KeyVerdict[];
  counted: { ops: number; linearizabilityOps: number; followerReads: number; sessionReads: number; asyncLost: number };
}

const MAX_LISTED = 50;

function isWrite(op: HistoryOp): boolean {
  return op.kind !== 'get';
}

/** The op as the register checker sees it, or undefined when it is not part of that check. */
function registerOp(op: HistoryOp): RegisterOp | undefined {
  if (op.kind === 'get') {
    if (op.consistency !== 'linearizable' && op.consistency !== 'lease') return undefined;
    if (op.outcome !== 'ok') return undefined;
    return { id: op.id, kind: 'get', start: op.start, end: op.end ?? Number.POSITIVE_INFINITY, read: op.read ?? null };
  }
  if (op.outcome === 'fail') return undefined; // refused before it could take effect
  if (op.durability === 'async' && op.receipt === 'lost') return undefined; // never took effect (checked below)
  // Sync writes: known once acked. Async puts: known once waitFor confirmed them (end = then).
  const known = op.outcome === 'ok' && (op.durability !== 'async' || op.receipt === 'committed');
  const end = known && op.end !== undefined ? op.end : Number.POSITIVE_INFINITY;
  const base = { id: op.id, start: op.start, end };
  if (op.kind === 'put') return { ...base, kind: 'put', value: op.value ?? '' };
  if (op.kind === 'delete') return { ...base, kind: 'delete' };
  const out: RegisterOp = { ...base, kind: 'cas', value: op.value ?? '', expected: op.expected ?? null };
  if (known && op.succeeded !== undefined) out.succeeded = op.succeeded;
  return out;
}

export interface CheckOptions {
  maxStatesPerKey?: number;
}

export function checkHistory(ops: readonly HistoryOp[], options: CheckOptions = {}): CheckReport {
  const violations: Violation[] = [];
  let omitted = 0;
  const flag = (v: Violation) => {
    if (violations.length < MAX_LISTED) violations.push(v);
    else omitted++;
  };
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of ops) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);

  // 1. Linearizability per key.
  const keys: KeyVerdict[] = [];
  let linearizabilityOps = 0;
  for (const [key, keyOps] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    const reg = keyOps.map(registerOp).filter((o): o is RegisterOp => o !== undefined);
    linearizabilityOps += reg.length;
    const verdict = checkRegister(key, reg, null, options.maxStatesPerKey ?? DEFAULT_MAX_STATES);
    keys.push(verdict);
    if (verdict.inconclusive) {
      flag({
        kind: 'inconclusive',
        key,
        ops: [],
        message: `key ${key}: the search gave up after ${verdict.states} states; run a shorter drill or fewer clients`,
      });
    } else if (!verdict.ok) {
      const s = verdict.stuckAt!;
      const what = s.kind === 'get' ? `a ${s.kind} that returned ${JSON.stringify(s.read ?? null)}` : `a ${s.kind}`;
      flag({
        kind: 'not-linearizable',
        key,
        ops: [s.id],
        message: `key ${key}: no linearization places op ${s.id} (${what}, at ${s.start.toFixed(1)}-${s.end.toFixed(1)} ms); the register held ${JSON.stringify(verdict.stateThen ?? null)} in the furthest order found (a stale read, a lost write, or a CAS on an old value)`,
      });
    }
  }

  // 2. Follower/session reads. A node reports the applied index it had when the read finished
  //    (an upper bound: entries may apply while the value is read), and it applied at least
  //    minIndex before reading. So the value must be one the key held at some index in
  //    [minIndex, appliedIndex]: the newest write known to be at or below minIndex, or any known
  //    write in between; a value only a write of unknown index could have produced is accepted.
  const writerOf = new Map<string, HistoryOp>();
  for (const op of ops) if (isWrite(op) && op.value !== undefined) writerOf.set(op.value, op);
  let followerReads = 0;
  let sessionReads = 0;
  for (const [key, keyOps] of byKey) {
    const indexed = keyOps
      .filter((o) => isWrite(o) && o.outcome === 'ok' && o.index !== undefined && (o.kind !== 'cas' || o.succeeded === true))
      .filter((o) => o.durability !== 'async' || o.receipt === 'committed')
      .sort((a, b) => a.index! - b.index!);
    const unknownDeleteBefore = (t: number) => keyOps.some((o) => o.kind === 'delete' && o.index === undefined && o.start < t);
    for (const r of keyOps) {
      if (r.kind !== 'get' || r.outcome !== 'ok' || (r.consistency !== 'follower' && r.consistency !== 'session')) continue;
      if (r.appliedIndex === undefined) continue;
      followerReads++;
      if (r.consistency === 'session') sessionReads++;
      const low = Math.min(r.minIndex ?? 0, r.appliedIndex);
      let atLow: HistoryOp | undefined;
      const possible = new Set<string | null>();
      for (const w of indexed) {
        if (w.index! <= low) atLow = w;
        else if (w.index! <= r.appliedIndex) possible.add(w.kind === 'delete' ? null : (w.value ?? null));
        else break;
      }
      possible.add(atLow === undefined || atLow.kind === 'delete' ? null : (atLow.value ?? null));
      const got = r.read ?? null;
      if (possible.has(got)) continue;
      const end = r.end ?? Number.POSITIVE_INFINITY;
      const writer = got === null ? undefined : writerOf.get(got);
      if (writer !== undefined && writer.index === undefined && writer.start < end) continue;
      if (got === null && unknownDeleteBefore(end)) continue;
      flag({
        kind: 'stale-follower-read',
        key,
        ops: [r.id, ...(atLow ? [atLow.id] : [])],
        message: `key ${key}: ${r.consistency} read op ${r.id} on ${r.servedBy} (minIndex ${r.minIndex ?? 0}, served at applied index ${r.appliedIndex}) returned ${JSON.stringify(got)}, a value the key did not hold at any index in that range${atLow ? ` (op ${atLow.id} wrote ${JSON.stringify(atLow.kind === 'delete' ? null : atLow.value)} at index ${atLow.index})` : ''}`,
      });
    }
  }

  // 3. Async receipts: a write reported lost must never be seen.
  let asyncLost = 0;
  const lostValues = new Map<string, HistoryOp>();
  for (const op of ops) {
    if (op.durability === 'async' && op.receipt === 'lost') {
      asyncLost++;
      if (op.value !== undefined) lostValues.set(op.value, op);
    }
  }
  for (const r of ops) {
    if (r.kind !== 'get' || r.outcome !== 'ok' || r.read == null) continue;
    const lost = lostValues.get(r.read);
    if (lost) {
      flag({
        kind: 'lost-async-read',
        key: r.key,
        ops: [r.id, lost.id],
        message: `key ${r.key}: op ${r.id} read ${JSON.stringify(r.read)}, written by async put op ${lost.id} whose receipt waitFor reported lost`,
      });
    }
  }

  // 4. minIndex honoured; session reads monotonic per client (in the client's own order).
  const lastSession = new Map<number, HistoryOp>();
  for (const r of [...ops].filter((o) => o.kind === 'get' && o.outcome === 'ok').sort((a, b) => a.start - b.start)) {
    if (r.appliedIndex === undefined) continue;
    if (r.minIndex !== undefined && r.appliedIndex < r.minIndex) {
      flag({
        kind: 'min-index',
        key: r.key,
        ops: [r.id],
        message: `op ${r.id} asked ${r.servedBy} for minIndex ${r.minIndex} and was served at applied index ${r.appliedIndex}`,
      });
    }
    if (r.consistency !== 'session') continue;
    const prev = lastSession.get(r.client);
    if (prev && prev.end !== undefined && prev.end <= r.start && r.appliedIndex < prev.appliedIndex!) {
      flag({
        kind: 'session-monotonic',
        key: r.key,
        ops: [prev.id, r.id],
        message: `client ${r.client}: session read op ${r.id} on ${r.servedBy} was served at index ${r.appliedIndex}, below the index ${prev.appliedIndex} its earlier read op ${prev.id} saw on ${prev.servedBy}`,
      });
    }
    if (!prev || r.appliedIndex >= prev.appliedIndex!) lastSession.set(r.client, r);
  }

  return {
    ok: violations.length === 0 && omitted === 0,
    violations,
    omitted,
    keys,
    counted: { ops: ops.length, linearizabilityOps, followerReads, sessionReads, asyncLost },
  };
}
