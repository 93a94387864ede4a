// Follower-read staleness. The lag of a follower is "now minus the last moment at which this node
// had applied everything the leader had told it was committed". Each message from a leader carries
// its commit index; we remember (commitLowerBound, receivedAt) pairs until the local applied index
// passes them, at which point we know we were fresh as of receivedAt.

interface Mark {
  commit: number;
  at: number;
}

const MAX_MARKS = 4096;

export class LeaderFreshness {
  private marks: Mark[] = [];
  private head = 0;
  /** Highest commit index any leader has reported: a valid lower bound of the cluster's commit. */
  private maxCommit = 0;
  private freshAt: number | undefined;

  constructor(private readonly startedAt: number) {}

  /** A message from the current leader arrived at `at` carrying `commit`. */
  heard(commit: number, at: number, applied: number): void {
    if (commit > this.maxCommit) this.maxCommit = commit;
    const bound = this.maxCommit;
    if (bound <= applied) {
      // Already caught up with everything known: fresh right now; older marks are moot.
      this.freshAt = at;
      this.marks = [];
      this.head = 0;
      return;
    }
    const last = this.marks[this.marks.length - 1];
    if (last && this.marks.length > this.head && last.commit === bound) {
      last.at = at;
    } else {
      this.marks.push({ commit: bound, at });
      if (this.marks.length - this.head > MAX_MARKS) this.head++; // drop the oldest: lag only over-estimates
    }
  }

  /** The local applied index advanced. */
  applied(applied: number): void {
    while (this.head < this.marks.length && this.marks[this.head]!.commit <= applied) {
      this.freshAt = this.marks[this.head]!.at;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.marks.length) {
      this.marks = this.marks.slice(this.head);
      this.head = 0;
    }
  }

  /** Milliseconds this node may be behind the leader (never heard from one: time since start). */
  lagMs(now: number): number {
    return Math.max(0, now - (this.freshAt ?? this.startedAt));
  }
}
