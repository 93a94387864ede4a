// Hung-leader detection. A SIGSTOPped or partitioned leader neither answers nor refuses: its
// connection stays up and requests just wait. Once an attempt has waited about one election
// timeout, the client asks the other nodes for their view; if one of them leads (or follows a
// leader) in a newer term than the node we are waiting on, the request moves there at once. The
// `(clientId, seq)` of a write makes the abandoned attempt's possible late success harmless.
//
// One probe round is shared by every request waiting at the same time (a saturated leader makes
// many requests slow at once; they must not multiply the Status calls), and rounds are spaced.

/** What one node said about leadership. */
export interface LeaderClaim {
  /** Client address of the node that answered. */
  from: string;
  term: number;
  /** Client address of the leader it names ('' = none known). */
  leader: string;
  /** The answering node is the leader itself. */
  isLeader: boolean;
}

/** The client address of the leader a claim names ('' = none). */
export function claimedLeader(c: LeaderClaim): string {
  return c.isLeader ? c.from : c.leader;
}

/** A long poll: the node answers once it knows a leader in a term above `leaderTermAbove`. */
export interface LeaderClaimWait {
  leaderTermAbove: number;
  waitMs: number;
}

export interface LeaderWatchOptions {
  /**
   * Ask one node for its view (with `wait`: once it knows a newer leader, or after waitMs); rejects
   * when it cannot answer by `deadline` (epoch ms).
   */
  ask(address: string, deadline: number, wait?: LeaderClaimWait): Promise<LeaderClaim>;
  /** Every address worth asking. */
  known(): string[];
  /** How long one probe waits for answers. */
  probeTimeoutMs: number;
  /** A new round starts at most this often; callers in between share the last one. */
  minRoundGapMs: number;
  /**
   * How long a node may hold a round's question until it knows a leader newer than the one we
   * wait on (0: answer at once). Must stay below probeTimeoutMs. A node that does not long-poll
   * answers at once, and rounds are then spaced by minRoundGapMs.
   */
  longPollMs: number;
}

/** The leader a round found, with the term it leads in. */
export interface NewerLeader {
  address: string;
  term: number;
}

export class LeaderWatch {
  /** Highest term in which each address was seen leading (from Status answers and write acks). */
  private readonly leaderTerms = new Map<string, number>();
  private round: Round | undefined;
  /** Bound on remembered addresses (members come and go; the map must not grow without limit). */
  private static readonly MAX_ADDRESSES = 1024;

  constructor(private readonly options: LeaderWatchOptions) {
    if (options.longPollMs < 0 || options.longPollMs >= options.probeTimeoutMs) {
      throw new RangeError(`longPollMs (${options.longPollMs}) must be in 0..probeTimeoutMs (${options.probeTimeoutMs})`);
    }
  }

  /** `address` answered as leader in `term` (a write ack carries its term). */
  sawLeader(address: string, term: number): void {
    if (!address || !Number.isFinite(term)) return;
    if ((this.leaderTerms.get(address) ?? -1) >= term) return;
    if (!this.leaderTerms.has(address) && this.leaderTerms.size >= LeaderWatch.MAX_ADDRESSES) this.leaderTerms.clear();
    this.leaderTerms.set(address, term);
  }

  termOf(address: string): number {
    return this.leaderTerms.get(address) ?? 0;
  }

  /** The newest term in which any node was seen leading (0: none seen yet). */
  newestLeaderTerm(): number {
    let newest = 0;
    for (const term of this.leaderTerms.values()) if (term > newest) newest = term;
    return newest;
  }

  /**
   * Ask the cluster whether someone other than `waitingOn` leads in a newer term than the one
   * `waitingOn` was last seen leading in (or is named leader in). Resolves once every node but
   * `waitingOn` answered or timed out: the hung node's own Status would only time out, and
   * waiting for it would space the rounds by the probe timeout instead of the gap.
   */
  newerLeaderThan(waitingOn: string, now = Date.now()): Promise<NewerLeader | undefined> {
    const round = this.sharedRound(now, waitingOn);
    const judge = (): NewerLeader | undefined => {
      // The term `waitingOn` leads in: as far as we saw it, or as any node names it leader. A
      // deposed leader that has not heard of its successor yet must not win over the node we wait on.
      let baseline = this.termOf(waitingOn);
      for (const c of round.claims) if (claimedLeader(c) === waitingOn) baseline = Math.max(baseline, c.term);
      let best: NewerLeader | undefined;
      for (const c of round.claims) {
        const address = claimedLeader(c);
        if (!address || address === waitingOn) continue;
        // A follower's view counts as well as a leader's own: both name the leader of term c.term.
        if (c.term > baseline && (!best || c.term > best.term)) best = { address, term: c.term };
      }
      // The node we wait on answering as leader of the newest term means it is slow, not hung.
      const own = round.claims.find((c) => c.from === waitingOn && c.isLeader);
      return best && own && own.term >= best.term ? undefined : best;
    };
    const othersDone = () => round.addresses.every((a) => a === waitingOn || round.settled.has(a));
    return new Promise((resolve) => {
      // Judged once every other node answered (they answer in a round trip; only the hung node
      // is slow): an early answer from a deposed leader must not outvote the ones naming `waitingOn`.
      // A long-polled node answers early only when it knows a newer leader, so such an answer
      // need not wait for the rest (a slow node would otherwise hold the move for the whole poll).
      const check = (): boolean => {
        const done = othersDone();
        if (!done && !round.longPoll) return false;
        const found = judge();
        if (!done && found === undefined) return false;
        resolve(found);
        return true;
      };
      if (check()) return;
      round.listeners.push(check);
    });
  }

  private sharedRound(now: number, waitingOn: string): Round {
    if (this.round && now - this.round.started < this.options.minRoundGapMs) return this.round;
    const baseline = this.termOf(waitingOn);
    const wait = baseline > 0 && this.options.longPollMs > 0 ? { leaderTermAbove: baseline, waitMs: this.options.longPollMs } : undefined;
    const round: Round = {
      started: now,
      addresses: this.options.known(),
      claims: [],
      settled: new Set(),
      listeners: [],
      longPoll: wait !== undefined,
    };
    this.round = round;
    const deadline = now + this.options.probeTimeoutMs;
    const settle = (address: string, c: LeaderClaim | undefined): void => {
      round.settled.add(address);
      if (c) {
        if (c.isLeader) this.sawLeader(c.from, c.term);
        round.claims.push(c);
      }
      round.listeners = round.listeners.filter((l) => !l());
    };
    for (const a of round.addresses) {
      // The node we wait on is asked without a poll: if it answers at all, it answers as it is.
      this.options.ask(a, deadline, a === waitingOn ? undefined : wait).then(
        (c) => settle(a, c),
        () => settle(a, undefined),
      );
    }
    return round;
  }
}

interface Round {
  started: number;
  addresses: string[];
  claims: LeaderClaim[];
  /** Addresses that answered or failed. invariant: settled ⊆ addresses. */
  settled: Set<string>;
  /** Each returns true once it is done (then it is dropped). */
  listeners: (() => boolean)[];
  /** The other nodes were asked to hold their answer until they know a newer leader. */
  longPoll: boolean;
}
