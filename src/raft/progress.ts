import { invariant } from './errors.js';
import type { NodeId, ProgressStatus } from './types.js';

/** Bounded window of in-flight AppendEntries, remembered by the last index each one carried. */
export class Inflights {
  private lastIndexes: number[] = [];
  constructor(readonly capacity: number) {}

  add(lastIndex: number): void {
    invariant(!this.full(), 'cannot add to a full inflight window');
    this.lastIndexes.push(lastIndex);
  }

  /** Acknowledged up to `index`: free every message whose entries are all at or below it. */
  freeLE(index: number): void {
    let count = 0;
    while (count < this.lastIndexes.length && this.lastIndexes[count]! <= index) count++;
    if (count > 0) this.lastIndexes = this.lastIndexes.slice(count);
  }

  freeFirstOne(): void {
    this.lastIndexes.shift();
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes = [];
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * The leader's view of one follower. 'probe': one message at a time until we find where the logs
 * match; 'replicate': pipeline optimistically within the inflight window; 'snapshot': waiting for
 * an InstallSnapshot to land.
 */
export class Progress {
  // invariant: match < next
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe: a message is outstanding, wait for its answer or the next heartbeat. */
  probeSent = false;
  /** Leader clock (ticks) of the last answer from this follower; -Infinity before the first one. */
  heardAt = -Infinity;
  /** Its last heartbeat answer said it is rebuilding (it must not be counted on for a quorum of votes). */
  rebuilding = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** A success response acknowledged `index`. Returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the message that carried prevIndex `rejected`; `matchHint` is the highest index
   * that may match. Returns false for a stale rejection (already known to match past it).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /**
   * A rejection says the follower's log ends at `followerLast`, below the index it acknowledged
   * (`match`): it lost entries (its data dir was wiped or replaced). `rejected` is the prevIndex of
   * the rejected message: below `match` it was sent before the follower acknowledged that much, so
   * its hint is stale, not a loss. maybeDecrTo must not see such a rejection: it ignores rejections
   * at or below `match`, which is what left a wiped follower empty for good while the leader
   * reported it fully caught up.
   */
  lostAcknowledgedEntries(rejected: number, followerLast: number): boolean {
    return followerLast < this.match && rejected >= this.match;
  }

  /**
   * Forget everything the follower acknowledged and probe again from where its log now ends: its
   * old acknowledgements no longer hold, so it counts towards commit only for what it acknowledges
   * from now on.
   */
  resetAfterDataLoss(followerLast: number): void {
    this.match = 0;
    this.resetState('probe');
    this.next = followerLast + 1;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  toStatus(): ProgressStatus {
    const status: ProgressStatus = { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, isLearner: this.isLearner };
    if (this.state === 'snapshot') status.pendingSnapshot = this.pendingSnapshot;
    return status;
  }
}

/** Majority of `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The highest value that at least a quorum of voters has reached. */
export function quorumValue(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[quorumSize(values.length) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

export function tallyVotes(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const quorum = quorumSize(voters.length);
  if (granted >= quorum) return 'won';
  if (rejected > voters.length - quorum) return 'lost';
  return 'pending';
}
