// RTO and RPO from a drill's records.
// - A fault that takes the leader away (kill, pause, isolation, outbound cut, switchover): RTO is
//   the write gap, from the fault to the first sync write acknowledged in a newer term.
// - Any other fault: RTO is the longest gap between sync acks from the fault until shortly after
//   it healed (the first gap counted from the fault itself).
// - RPO: async writes reported lost, attributed to the fault they were written just before or during.
import type { FaultKind, FaultRecord, HistoryOp } from './history.js';

/** Writes issued up to this long before a fault count as in flight when it hit. */
const IN_FLIGHT_MS = 1_000;
/** A non-leader fault's window reaches this far past its heal. */
const AFTER_HEAL_MS = 500;

export interface FaultKindSummary {
  kind: FaultKind;
  count: number;
  /** Faults where no write was acked afterwards (no RTO could be measured). */
  unmeasured: number;
  rtoP50Ms?: number;
  rtoMaxMs?: number;
  asyncLost: number;
  /** Leader-loss faults: from the fault to a leader of a newer term (the rest of RTO is the client's). */
  electionP50Ms?: number;
}

export interface RecoverySummary {
  byKind: FaultKindSummary[];
  asyncWrites: number;
  asyncLost: number;
  /** Leader changes (new terms in the acks) that no fault explains. */
  spuriousLeaderChanges: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Fills in each fault's rtoMs and asyncLost, and summarises per kind. */
export function measureRecovery(faults: FaultRecord[], ops: readonly HistoryOp[], syncAcks: readonly { at: number; term: number }[]): RecoverySummary {
  const acks = [...syncAcks].sort((a, b) => a.at - b.at);
  const sortedFaults = [...faults].sort((a, b) => a.start - b.start);
  sortedFaults.forEach((f, i) => {
    const nextStart = sortedFaults[i + 1]?.start ?? Number.POSITIVE_INFINITY;
    if (f.leaderLoss) {
      const first = acks.find((a) => a.at > f.start && a.term > (f.termAtFault ?? 0) && a.at < nextStart);
      if (first) f.rtoMs = first.at - f.start;
      else delete f.rtoMs;
    } else {
      const end = Math.min(nextStart, (f.healed ?? f.start) + AFTER_HEAL_MS);
      let prev = f.start;
      let worst = 0;
      for (const a of acks) {
        if (a.at <= f.start) continue;
        if (a.at > end) break;
        worst = Math.max(worst, a.at - prev);
        prev = a.at;
      }
      if (prev > f.start) f.rtoMs = worst;
      else delete f.rtoMs;
    }
    f.asyncLost = 0;
  });
  let asyncWrites = 0;
  let asyncLost = 0;
  for (const op of ops) {
    if (op.durability !== 'async') continue;
    asyncWrites++;
    if (op.receipt !== 'lost') continue;
    asyncLost++;
    const owner = [...sortedFaults].reverse().find((f) => f.start <= op.start + IN_FLIGHT_MS);
    if (owner) owner.asyncLost = (owner.asyncLost ?? 0) + 1;
  }
  const kinds = [...new Set(sortedFaults.map((f) => f.kind))];
  const byKind = kinds.map((kind): FaultKindSummary => {
    const of = sortedFaults.filter((f) => f.kind === kind);
    const rtos = of
      .map((f) => f.rtoMs)
      .filter((r): r is number => r !== undefined)
      .sort((a, b) => a - b);
    const s: FaultKindSummary = { kind, count: of.length, unmeasured: of.length - rtos.length, asyncLost: of.reduce((n, f) => n + (f.asyncLost ?? 0), 0) };
    const elected = of
      .map((f) => f.electedMs)
      .filter((r): r is number => r !== undefined)
      .sort((a, b) => a - b);
    if (elected.length > 0) s.electionP50Ms = Math.round(percentile(elected, 50));
    if (rtos.length > 0) {
      s.rtoP50Ms = Math.round(percentile(rtos, 50));
      s.rtoMaxMs = Math.round(rtos[rtos.length - 1]!);
    }
    return s;
  });
  // A new term in the acks must follow a fault (leadership can move at any fault, and up to a few
  // seconds after one while the healed node rejoins); one that does not is a spurious election.
  let spurious = 0;
  let term = acks[0]?.term ?? 0;
  for (const a of acks) {
    if (a.term <= term) continue;
    term = a.term;
    const explained = sortedFaults.some((f) => f.start <= a.at && a.at <= (f.healed ?? f.start) + 5_000);
    if (!explained) spurious++;
  }
  return { byKind, asyncWrites, asyncLost, spuriousLeaderChanges: spurious };
}
