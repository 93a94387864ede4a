// The drill's history: one record per client operation, with its invocation and completion time on
// one monotonic clock (ms since the drill started). An operation whose outcome the client could not
// learn (a timeout, a lost connection) is `unknown`: the checkers let it have happened or not,
// never assume either.
import type { ReadConsistency } from '../client/types.js';

export type OpKind = 'put' | 'delete' | 'cas' | 'get';
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  id: number;
  /** Which workload client (each has its own SDK client, write session and session watermark). */
  client: number;
  key: string;
  kind: OpKind;
  /** put: the value written (unique per drill); cas: the new value. */
  value?: string;
  /** cas: the value expected (null = the key must be absent). */
  expected?: string | null;
  durability?: 'sync' | 'async';
  consistency?: ReadConsistency;
  /** Follower/session reads: the minIndex the client asked for (session: its watermark). */
  minIndex?: number;
  start: number;
  /** Completion time; absent while unknown (a sync op) — an async put's end is its waitFor's. */
  end?: number;
  outcome: Outcome;
  /** get: the value read (null = absent). */
  read?: string | null;
  /** cas: whether it swapped. */
  succeeded?: boolean;
  /** Writes: the log index at which the command took effect, and its term, once known. */
  index?: number;
  term?: number;
  /** Reads: which node served, at which applied index. */
  servedBy?: string;
  appliedIndex?: number;
  /** Async puts: what waitFor said of the receipt. */
  receipt?: 'committed' | 'lost' | 'unknown';
  error?: string;
}

/** A fault the nemesis injected, with its timing and what it measured. */
export interface FaultRecord {
  kind: FaultKind;
  /** The node(s) it hit. */
  target: string;
  start: number;
  /** When the fault was healed (process restarted, link restored, ...). */
  healed?: number;
  /** Whether the fault hit the leader (then RTO is the gap to the first ack of a newer term). */
  leaderLoss: boolean;
  /** The leader's term when the fault began (leader-loss faults). */
  termAtFault?: number;
  /** Client-visible recovery time, ms (see rto.ts); absent when no write was acked afterwards. */
  rtoMs?: number;
  /** Leader-loss faults: when a leader of a newer term was first seen (ms after the fault). */
  electedMs?: number;
  /** Async writes in flight when it hit that were later reported lost. */
  asyncLost?: number;
  note?: string;
}

export const FAULT_KINDS = [
  'kill-leader',
  'kill-follower',
  'pause-leader',
  'isolate-leader',
  'cut-leader-outbound',
  'bridge',
  'restart-follower',
  'switchover',
  'wipe-follower',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What `drill --check FILE` reads: the whole run, so that it can be re-checked offline. */
export interface SavedHistory {
  format: 'quorumkv-drill-history/1';
  seed: number;
  ops: HistoryOp[];
  faults: FaultRecord[];
}

export class HistoryFormatError extends Error {
  override name = 'HistoryFormatError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: not a drill history (${detail}); pass a file that a failing drill saved`);
  }
}

/** Parse a saved history, checking its shape (not its content: that is the checkers' job). */
export function parseSavedHistory(text: string, file: string): SavedHistory {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new HistoryFormatError(file, `invalid JSON: ${(e as Error).message}`);
  }
  const h = doc as Partial<SavedHistory>;
  if (!h || typeof h !== 'object' || h.format !== 'quorumkv-drill-history/1') throw new HistoryFormatError(file, 'missing format "quorumkv-drill-history/1"');
  if (!Array.isArray(h.ops) || !Array.isArray(h.faults)) throw new HistoryFormatError(file, 'ops and faults must be lists');
  h.ops.forEach((op, i) => {
    if (typeof op?.key !== 'string' || typeof op.start !== 'number' || !['put', 'delete', 'cas', 'get'].includes(op.kind)) {
      throw new HistoryFormatError(file, `ops[${i}] needs key, kind and start`);
    }
  });
  return { format: h.format, seed: typeof h.seed === 'number' ? h.seed : 0, ops: h.ops, faults: h.faults };
}
