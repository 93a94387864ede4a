// Safety and liveness invariants of the simulation, each a pure function over observed state, so
// that a hand-made violating input proves the checker can fail (test/sim/checkers.test.ts).
// The harness (cluster.ts) gathers the observations and keeps the histories they are checked against.

import type { NodeId } from '../../src/raft/types.js';

export type CheckerName =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'durability'
  | 'linearizable-reads'
  | 'exactly-once'
  | 'client-outcomes'
  | 'liveness'
  | 'core-crash';

export interface Violation {
  checker: CheckerName;
  message: string;
}

/** One log entry as the checkers see it: `digest` identifies the payload (e.g. 'w|k1|v17', 'noop'). */
export interface LogEntryView {
  index: number;
  term: number;
  digest: string;
}

/** A node's durable log: entries [first, first + entries.length). Everything below `first` is compacted. */
export interface LogView {
  first: number;
  entries: readonly LogEntryView[];
}

export function lastIndexOf(log: LogView): number {
  return log.first + log.entries.length - 1;
}

function entryAt(log: LogView, index: number): LogEntryView | undefined {
  return index >= log.first ? log.entries[index - log.first] : undefined;
}

function describe(e: LogEntryView | undefined): string {
  return e ? `{term ${e.term}, ${e.digest}}` : 'nothing';
}

// ---------------------------------------------------------------------------------------------
// Election safety: at most one leader per term, ever.

export interface LeaderObservation {
  node: NodeId;
  term: number;
}

/** `current`: nodes that believe they lead right now; `leadersByTerm`: the first leader seen for each term so far. */
export function checkElectionSafety(current: readonly LeaderObservation[], leadersByTerm: ReadonlyMap<number, NodeId>): Violation | null {
  const seen = new Map<number, NodeId>();
  for (const { node, term } of current) {
    const earlier = leadersByTerm.get(term) ?? seen.get(term);
    if (earlier !== undefined && earlier !== node) {
      return { checker: 'election-safety', message: `two leaders in term ${term}: ${earlier} and ${node}` };
    }
    seen.set(term, node);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Log matching: if two logs hold an entry with the same index and term, they are identical up to it.

export function checkLogMatching(logs: ReadonlyMap<NodeId, LogView>): Violation | null {
  const nodes = [...logs.keys()];
  for (let a = 0; a < nodes.length; a++) {
    for (let b = a + 1; b < nodes.length; b++) {
      const la = logs.get(nodes[a]!)!;
      const lb = logs.get(nodes[b]!)!;
      const lo = Math.max(la.first, lb.first);
      const hi = Math.min(lastIndexOf(la), lastIndexOf(lb));
      // Walk down: once an (index, term) pair matches, every entry below must be identical.
      let anchor = -1;
      for (let i = hi; i >= lo; i--) {
        const ea = entryAt(la, i)!;
        const eb = entryAt(lb, i)!;
        if (anchor < 0 && ea.term === eb.term) anchor = i;
        if (anchor >= 0 && (ea.term !== eb.term || ea.digest !== eb.digest)) {
          return {
            checker: 'log-matching',
            message:
              `${nodes[a]} and ${nodes[b]} agree on index ${anchor} (term ${entryAt(la, anchor)!.term}) ` +
              `but differ at index ${i}: ${nodes[a]} has ${describe(ea)}, ${nodes[b]} has ${describe(eb)}`,
          };
        }
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Leader completeness: an entry committed before a leader was elected is in that leader's log.

/** An entry first observed committed (applied by some node) at logical time `seq`. */
export interface CommittedEntry extends LogEntryView {
  seq: number;
}

export interface LeaderLog {
  node: NodeId;
  term: number;
  /** Logical time at which the node was observed becoming leader of `term`. */
  sinceSeq: number;
  log: LogView;
}

export function checkLeaderCompleteness(leader: LeaderLog, committed: ReadonlyMap<number, CommittedEntry>): Violation | null {
  const last = lastIndexOf(leader.log);
  for (const [index, c] of committed) {
    // Committed after this leader took office: committed by this leader or a later one, no claim here.
    if (c.seq >= leader.sinceSeq) continue;
    if (index < leader.log.first) continue; // covered by the leader's snapshot
    if (index > last) {
      return {
        checker: 'leader-completeness',
        message: `${leader.node} became leader of term ${leader.term} with last index ${last}, missing committed entry ${index} ${describe(c)}`,
      };
    }
    const mine = entryAt(leader.log, index)!;
    if (mine.term !== c.term || mine.digest !== c.digest) {
      return {
        checker: 'leader-completeness',
        message: `${leader.node} leads term ${leader.term} with ${describe(mine)} at index ${index}, but ${describe(c)} was committed there`,
      };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// State machine safety: the applied sequences of all nodes are prefixes of one another.
// Each node applies a contiguous sequence; the first application of an index fixes it (the
// canonical history, with a hash chain over the applied prefix so snapshot restores can be checked).

export interface AppliedRecord extends LogEntryView {
  /** Hash of the whole applied prefix [1, index]. */
  chain: number;
}

export type ApplyEvent =
  | { kind: 'apply'; node: NodeId; prevApplied: number; entry: AppliedRecord }
  | { kind: 'restore'; node: NodeId; prevApplied: number; index: number; chain: number };

export function checkStateMachineSafety(canonical: ReadonlyMap<number, AppliedRecord>, event: ApplyEvent): Violation | null {
  if (event.kind === 'apply') {
    const e = event.entry;
    if (e.index !== event.prevApplied + 1) {
      return {
        checker: 'state-machine-safety',
        message: `${event.node} applied index ${e.index} right after ${event.prevApplied} (applied sequences must be contiguous)`,
      };
    }
    const c = canonical.get(e.index);
    if (c && (c.term !== e.term || c.digest !== e.digest || c.chain !== e.chain)) {
      return {
        checker: 'state-machine-safety',
        message: `${event.node} applied ${describe(e)} at index ${e.index}, but ${describe(c)} was applied there before (chain ${c.chain} vs ${e.chain})`,
      };
    }
    return null;
  }
  if (event.index < event.prevApplied) {
    return {
      checker: 'state-machine-safety',
      message: `${event.node} restored a snapshot at ${event.index}, behind its applied index ${event.prevApplied}`,
    };
  }
  const c = canonical.get(event.index);
  if (c && c.chain !== event.chain) {
    return {
      checker: 'state-machine-safety',
      message: `${event.node} restored a snapshot at ${event.index} whose applied history (chain ${event.chain}) differs from the one applied elsewhere (chain ${c.chain})`,
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Durability: a committed entry is never lost or changed in anyone's durable state.

export interface DurableView {
  node: NodeId;
  /** hardState.commit persisted now, and the highest value it ever had on this node. */
  persistedCommit: number;
  highestPersistedCommit: number;
  log: LogView;
}

/**
 * The stored commit index itself may go back after a crash: a hard state whose only change is the
 * commit index is written without an fsync (Ready.mustSync, as in etcd). What must hold is that
 * every entry this node ever stored as committed is still in its durable log (or below its
 * snapshot), unchanged: entries are synced before the commit index covering them is written.
 */
export function checkDurability(view: DurableView, committed: ReadonlyMap<number, CommittedEntry>): Violation | null {
  const last = lastIndexOf(view.log);
  if (last < view.highestPersistedCommit) {
    return {
      checker: 'durability',
      message: `${view.node}'s durable log ends at ${last}, but it had stored ${view.highestPersistedCommit} as committed`,
    };
  }
  const hi = Math.min(view.highestPersistedCommit, last);
  for (let i = view.log.first; i <= hi; i++) {
    const c = committed.get(i);
    const mine = entryAt(view.log, i)!;
    if (c && (c.term !== mine.term || c.digest !== mine.digest)) {
      return {
        checker: 'durability',
        message: `${view.node} durably holds ${describe(mine)} at committed index ${i}, but ${describe(c)} was committed there`,
      };
    }
  }
  return null;
}

/** A write the client saw acknowledged (its proposer applied it at `index`). */
export interface AckRecord {
  key: string;
  value: string;
  index: number;
  /** Logical time of the acknowledgement. */
  seq: number;
}

export interface KvValue {
  value: string;
  /** Log index of the write that set the value. */
  index: number;
}

/** At the end of a run: every node's state machine still reflects every acknowledged write (or a later one). */
export function checkAckedWritesSurvive(node: NodeId, acks: readonly AckRecord[], kv: ReadonlyMap<string, KvValue>): Violation | null {
  for (const ack of acks) {
    const got = kv.get(ack.key);
    if (!got || got.index < ack.index || (got.index === ack.index && got.value !== ack.value)) {
      return {
        checker: 'durability',
        message: `acknowledged write ${ack.key}=${ack.value} (index ${ack.index}) is lost on ${node}: it has ${got ? `${got.value} from index ${got.index}` : 'no value'}`,
      };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Linearizable reads: a read observes every write acknowledged before the read was issued.

export interface ReadObservation {
  ctx: string;
  node: NodeId;
  key: string;
  /** readIndex/lease: linearizable; follower: checked against the acks at or below its minIndex only. */
  kind: 'readIndex' | 'lease' | 'follower';
  issueSeq: number;
  /** Index the read was released at (ReadState.index or the lease read index). */
  readIndex: number;
  /** What the node's state machine held for `key` once applied >= readIndex. */
  observed: KvValue | undefined;
}

export function checkLinearizableRead(read: ReadObservation, acks: readonly AckRecord[]): Violation | null {
  for (const ack of acks) {
    if (ack.seq >= read.issueSeq) continue; // concurrent or later: either outcome is linearizable
    if (read.readIndex < ack.index) {
      return {
        checker: 'linearizable-reads',
        message: `${read.kind} read ${read.ctx} on ${read.node} released at index ${read.readIndex}, below the acknowledged write ${ack.key}=${ack.value} at index ${ack.index}`,
      };
    }
    if (ack.key === read.key && (!read.observed || read.observed.index < ack.index)) {
      return {
        checker: 'linearizable-reads',
        message:
          `${read.kind} read ${read.ctx} of ${read.key} on ${read.node} returned ` +
          `${read.observed ? `${read.observed.value} (index ${read.observed.index})` : 'nothing'}, ` +
          `but ${ack.key}=${ack.value} (index ${ack.index}) was acknowledged before the read began`,
      };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Exactly-once sessions: a client command (clientId, seq) takes effect at one log index only, and a
// retry answered from the session table names that index.

export interface SessionApply {
  node: NodeId;
  /** 'clientId#seq' */
  session: string;
  /** Index of the entry being applied. */
  index: number;
  /** True when the state machine answered it from the session table instead of applying it. */
  duplicate: boolean;
  /** The index the result names (the original application's, for a duplicate). */
  resultIndex: number;
}

/** `firstApplied`: for each session command, the index at which it was first applied (not as a duplicate). */
export function checkExactlyOnce(firstApplied: ReadonlyMap<string, number>, event: SessionApply): Violation | null {
  const first = firstApplied.get(event.session);
  if (first === undefined) return null;
  if (!event.duplicate && event.index !== first) {
    return {
      checker: 'exactly-once',
      message: `${event.node} applied client command ${event.session} at index ${event.index}, but it was already applied at index ${first}`,
    };
  }
  if (event.duplicate && event.resultIndex !== first) {
    return {
      checker: 'exactly-once',
      message: `${event.node} answered the retry of ${event.session} (index ${event.index}) with the result of index ${event.resultIndex}, but it was applied at index ${first}`,
    };
  }
  return null;
}

/** What waitFor(term, index) told a client about its async write, against the entry committed there. */
export interface WaitObservation {
  node: NodeId;
  term: number;
  index: number;
  /** The digest of the client's command. */
  digest: string;
  outcome: 'committed' | 'lost';
}

export function checkWaitOutcome(obs: WaitObservation, committed: ReadonlyMap<number, LogEntryView>): Violation | null {
  const c = committed.get(obs.index);
  if (!c) {
    return obs.outcome === 'committed'
      ? { checker: 'client-outcomes', message: `${obs.node} said ${obs.term}/${obs.index} committed, but nothing was ever applied at index ${obs.index}` }
      : null;
  }
  const ours = c.term === obs.term && c.digest === obs.digest;
  if (obs.outcome === 'committed' && !ours) {
    return {
      checker: 'client-outcomes',
      message: `${obs.node} said ${obs.term}/${obs.index} (${obs.digest}) committed, but ${describe(c)} was committed there`,
    };
  }
  if (obs.outcome === 'lost' && ours) {
    return { checker: 'client-outcomes', message: `${obs.node} said ${obs.term}/${obs.index} (${obs.digest}) was lost, but it was committed` };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Liveness: once faults stop, a leader exists and a new proposal commits on every live voter in time.

export interface LivenessState {
  ticksSinceHeal: number;
  boundTicks: number;
  leader: NodeId | '';
  voters: readonly NodeId[];
  /** Voters whose state machine applied the post-heal marker write. */
  appliedMarker: readonly NodeId[];
  /** Nodes (members or not) that are not running again yet: every node must come back once faults stop. */
  down?: readonly NodeId[];
}

export function livenessReached(s: LivenessState): boolean {
  return s.leader !== '' && s.voters.length > 0 && s.voters.every((v) => s.appliedMarker.includes(v)) && (s.down ?? []).length === 0;
}

export function checkLiveness(s: LivenessState): Violation | null {
  if (s.ticksSinceHeal <= s.boundTicks || livenessReached(s)) return null;
  const missing = s.voters.filter((v) => !s.appliedMarker.includes(v));
  return {
    checker: 'liveness',
    message:
      `no progress ${s.ticksSinceHeal} ticks after all faults stopped (bound ${s.boundTicks}): ` +
      (s.leader === '' ? 'no leader; ' : `leader ${s.leader}; `) +
      `voters [${s.voters.join(',')}], marker write not applied on [${missing.join(',')}]` +
      ((s.down ?? []).length > 0 ? `; not running: [${s.down!.join(',')}]` : ''),
  };
}

// ---------------------------------------------------------------------------------------------

export class SimViolationError extends Error {
  override name = 'SimViolationError';
  constructor(
    readonly checker: CheckerName,
    readonly seed: number,
    readonly tick: number,
    readonly detail: string,
    readonly traceTail: readonly string[],
    /** Options the run used beyond the seed (e.g. " --sabotage early-reads"), for the replay line. */
    replayArgs = '',
  ) {
    super(
      `[${checker}] seed ${seed} tick ${tick}: ${detail}\n` +
        `replay: npm run sim -- --seed ${seed} --trace${replayArgs}\n` +
        `last ${traceTail.length} trace lines:\n  ${traceTail.join('\n  ')}`,
    );
  }
}
