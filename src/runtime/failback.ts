// Failback: leadership returns to a preferred node once it is healthy and caught up. The policy
// is pure (status + clock in, decision out) so it can be tested without a cluster; RaftNode feeds it.
import type { NodeId, RaftStatus } from '../raft/types.js';

export interface FailbackOptions {
  preferredLeader: NodeId;
  /** The preferred node must stay caught up and responsive this long before we hand over. */
  holdMs: number;
  /**
   * "Caught up" means within this many entries of the leader's last index. Under steady writes a
   * healthy follower is always a few batches behind, so requiring match >= commit would hold off
   * failback forever; the transfer itself then waits for the last few entries (TimeoutNow is sent
   * only once the target's log is complete).
   */
  maxLagEntries: number;
}

/**
 * Decides when a leader that is not the preferred one should transfer leadership to it. Hands
 * over only after the preferred voter has been continuously replicating and fully caught up for
 * `holdMs`, so a flapping node does not bounce leadership back and forth.
 */
export class FailbackPolicy {
  private healthySince: number | undefined;

  constructor(private readonly options: FailbackOptions) {}

  /** Returns the node to transfer leadership to now, or undefined. */
  decide(status: RaftStatus, now: number): NodeId | undefined {
    const preferred = this.options.preferredLeader;
    const progress = status.progress?.[preferred];
    const eligible =
      status.role === 'leader' &&
      status.id !== preferred &&
      status.leadTransferee === '' &&
      status.conf.voters.includes(preferred) &&
      progress !== undefined &&
      // 'replicate' means its acks keep coming (an unreachable peer drops to 'probe'). Not
      // recentActive: check-quorum clears that every election timeout until the next heartbeat
      // answer, which would restart the hold period forever.
      progress.state === 'replicate' &&
      status.lastIndex - progress.match <= this.options.maxLagEntries;
    if (!eligible) {
      this.healthySince = undefined;
      return undefined;
    }
    this.healthySince ??= now;
    if (now - this.healthySince < this.options.holdMs) return undefined;
    this.healthySince = undefined;
    return preferred;
  }
}
