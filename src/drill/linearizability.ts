// A linearizability checker for one register per key: the Wing–Gong search with Lowe's memoisation
// of (set of linearised operations, register state). Operations on different keys commute, so the
// history is checked per key. An operation with an unknown outcome may take effect at any moment
// after its invocation, or never; every operation with a known outcome must be placed between its
// invocation and its completion, in an order that a single register explains.

/** One register operation as the checker sees it. Values are unique strings; null = absent. */
export interface RegisterOp {
  id: number;
  kind: 'put' | 'delete' | 'cas' | 'get';
  start: number;
  /** Infinity: unknown outcome (may have happened at any time after start, or never). */
  end: number;
  value?: string;
  expected?: string | null;
  /** get: the value it returned. */
  read?: string | null;
  /** cas: the outcome, undefined when unknown. */
  succeeded?: boolean;
}

export interface KeyVerdict {
  key: string;
  ok: boolean;
  /** The search hit its state bound before deciding: neither proven nor refuted. */
  inconclusive: boolean;
  /** When not ok: the first operation that no order could place, and the register value then. */
  stuckAt?: RegisterOp;
  stateThen?: string | null;
  /** Operations with a known outcome in the history, and the states the search visited. */
  checkedOps: number;
  states: number;
}

export const DEFAULT_MAX_STATES = 400_000;

/** The register after `op` from `state`, or NOT_ALLOWED when op cannot happen in that state. */
const NOT_ALLOWED = Symbol('not allowed');
function apply(state: string | null, op: RegisterOp): string | null | typeof NOT_ALLOWED {
  switch (op.kind) {
    case 'put':
      return op.value ?? null;
    case 'delete':
      return null;
    case 'get':
      return state === (op.read ?? null) ? state : NOT_ALLOWED;
    case 'cas': {
      const matches = state === (op.expected ?? null);
      if (op.succeeded === true) return matches ? (op.value ?? null) : NOT_ALLOWED;
      if (op.succeeded === false) return matches ? NOT_ALLOWED : state;
      return matches ? (op.value ?? null) : state;
    }
  }
}

interface Frame {
  state: string | null;
  /** invariant: every known-outcome op before lo is linearised; op lo is not (or lo = n). */
  lo: number;
  /** Candidates: >= 0 a known op's index, < 0 an unknown op's -(i + 1). */
  candidates: number[];
  next: number;
  applied: number | undefined;
}

/** Check one key's operations; `initial` is the register before the first one. */
export function checkRegister(key: string, ops: readonly RegisterOp[], initial: string | null = null, maxStates = DEFAULT_MAX_STATES): KeyVerdict {
  // Reads with an unknown outcome constrain nothing.
  const relevant = ops.filter((o) => !(o.kind === 'get' && o.end === Number.POSITIVE_INFINITY));
  // First try without unknown writes that nobody observed (their "never happened" branch); that
  // rarely fails, and keeps the search small. If it fails, search with all of them.
  const observed = new Set<string>();
  for (const o of relevant) {
    if (o.kind === 'get' && o.read != null) observed.add(o.read);
    if (o.kind === 'cas' && o.expected != null) observed.add(o.expected);
  }
  const pruned = relevant.filter((o) => o.end !== Number.POSITIVE_INFINITY || o.kind === 'delete' || (o.value !== undefined && observed.has(o.value)));
  if (pruned.length !== relevant.length) {
    const quick = search(key, pruned, initial, maxStates);
    if (quick.ok) return quick;
  }
  return search(key, relevant, initial, maxStates);
}

function search(key: string, ops: readonly RegisterOp[], initial: string | null, maxStates: number): KeyVerdict {
  const byStart = (a: RegisterOp, b: RegisterOp) => a.start - b.start || a.id - b.id;
  const known = ops.filter((o) => o.end !== Number.POSITIVE_INFINITY).sort(byStart);
  const unknown = ops.filter((o) => o.end === Number.POSITIVE_INFINITY).sort(byStart);
  const n = known.length;
  for (const o of known) if (!(o.end >= o.start)) throw new Error(`drill checker: op ${o.id} on ${key} ends (${o.end}) before it starts (${o.start})`);
  const done = new Uint8Array(n);
  const usedUnknown = new Uint8Array(unknown.length);
  const memo = new Set<string>();
  let best = { count: -1, lo: 0, state: initial as string | null };
  let count = 0;

  const candidatesAt = (lo: number): number[] => {
    let minEnd = Number.POSITIVE_INFINITY;
    const out: number[] = [];
    for (let i = lo; i < n; i++) {
      if (done[i]) continue;
      const o = known[i]!;
      if (o.start >= minEnd) break; // every later op ends at or after its start >= minEnd
      out.push(i);
      if (o.end < minEnd) minEnd = o.end;
    }
    const placeable = out.filter((i) => known[i]!.start < minEnd);
    // Unknown ops last: trying "it has not happened (yet)" first keeps the search short.
    for (let j = 0; j < unknown.length && unknown[j]!.start < minEnd; j++) if (!usedUnknown[j]) placeable.push(-(j + 1));
    return placeable;
  };
  const memoKey = (state: string | null, lo: number): string => {
    const parts: (string | number)[] = [state === null ? '\u0000' : `v${state}`, lo];
    if (lo < n) {
      const horizon = known[lo]!.end;
      for (let i = lo + 1; i < n && known[i]!.start < horizon; i++) if (done[i]) parts.push(i);
    }
    parts.push('u');
    for (let j = 0; j < unknown.length; j++) if (usedUnknown[j]) parts.push(j);
    return parts.join(',');
  };

  if (n === 0) return { key, ok: true, inconclusive: false, checkedOps: 0, states: 0 };
  const stack: Frame[] = [{ state: initial, lo: 0, candidates: candidatesAt(0), next: 0, applied: undefined }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.applied !== undefined) {
      if (f.applied >= 0) {
        done[f.applied] = 0;
        count--;
      } else usedUnknown[-f.applied - 1] = 0;
      f.applied = undefined;
    }
    if (f.next >= f.candidates.length) {
      stack.pop();
      continue;
    }
    const c = f.candidates[f.next++]!;
    const op = c >= 0 ? known[c]! : unknown[-c - 1]!;
    const after = apply(f.state, op);
    if (after === NOT_ALLOWED) continue;
    if (c >= 0) {
      done[c] = 1;
      count++;
    } else usedUnknown[-c - 1] = 1;
    let lo = f.lo;
    while (lo < n && done[lo]) lo++;
    if (lo === n) return { key, ok: true, inconclusive: false, checkedOps: n, states: memo.size };
    const k = memoKey(after, lo);
    const undo = () => {
      if (c >= 0) {
        done[c] = 0;
        count--;
      } else usedUnknown[-c - 1] = 0;
    };
    if (memo.has(k)) {
      undo();
      continue;
    }
    if (memo.size >= maxStates) return { key, ok: false, inconclusive: true, checkedOps: n, states: memo.size };
    memo.add(k);
    if (count > best.count) best = { count, lo, state: after };
    f.applied = c;
    stack.push({ state: after, lo, candidates: candidatesAt(lo), next: 0, applied: undefined });
  }
  // No order explains the history: report where the furthest attempt got stuck.
  const stuck = best.count < 0 ? known[0]! : known[best.lo]!;
  return { key, ok: false, inconclusive: false, stuckAt: stuck, stateThen: best.count < 0 ? initial : best.state, checkedOps: n, states: memo.size };
}
