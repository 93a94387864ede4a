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

export interface LeaderWatchOptions {
  /** Ask one node for its view; rejects when it cannot answer by `deadline` (epoch ms). */
  ask(address: string, deadline: number): Promise<LeaderClaim>;
  /** Every address worth asking. */
  known(): string[];
  /** How long one probe waits for answers. */
  probeTimeoutMs: number;
  /** A new round starts at most this often; callers in between share the last one. */
  minRoundGapMs: number;
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

  constructor(private readonly options: LeaderWatchOptions) {}

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

  /**
   * Ask the cluster whether someone other than `waitingOn` leads in a newer term than the one
   * `waitingOn` was last seen leading in (or is named leader in). Resolves once every node but
   * `waitingOn` answered or timed out: the hung node's own Status would only time out, and
   * waiting for it would space the rounds by the probe timeout instead of the gap.
   */
  newerLeaderThan(waitingOn: string, now = Date.now()): Promise<NewerLeader | undefined> {
    const round = this.sharedRound(now);
    const judge = (): NewerLeader | undefined => {
      // The term `waitingOn` leads in: as far as we saw it, or as any node names it leader. A
      // deposed leader that has not heard of its successor yet must not win over the node we wait on.
      let baseline = this.termOf(waitingOn);
      for (const c of round.claims) if ((c.isLeader ? c.from : c.leader) === waitingOn) baseline = Math.max(baseline, c.term);
      let best: NewerLeader | undefined;
      for (const c of round.claims) {
        const address = c.isLeader ? c.from : c.leader;
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
      const check = (): boolean => {
        if (!othersDone()) return false;
        resolve(judge());
        return true;
      };
      if (check()) return;
      round.listeners.push(check);
    });
  }

  private sharedRound(now: number): Round {
    if (this.round && now - this.round.started < this.options.minRoundGapMs) return this.round;
    const round: Round = { started: now, addresses: this.options.known(), claims: [], settled: new Set(), listeners: [] };
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
      this.options.ask(a, deadline).then(
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
}
