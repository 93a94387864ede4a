// Turns the core's tick-counted lease into one judged on a monotonic clock at serve time.
//
// Heartbeats carry the leader's tick count as their stamp. For each tick the runtime feeds the
// core, this records the monotonic time just BEFORE the tick (so no earlier than any heartbeat
// stamped with it was sent). A lease granted by the round stamped `ackedTick` then holds until
// sentAt(ackedTick) + leaseMs: a voter that acknowledged it ignores other candidates for at least
// an election timeout after receiving it, whatever this process's timers did meanwhile.
//
// Ticks are also caught up after a stall (see ticksDue), bounded, so that check-quorum and
// elections see the time that really passed; the lease itself never depends on that.

export interface LeaseClockOptions {
  tickMs: number;
  /** Lease length: the minimum election timeout less a margin for clock-rate drift between nodes. */
  leaseMs: number;
  /** Ticks remembered (heartbeat stamps older than this cannot grant a lease anyway). */
  capacity: number;
  /** At most this many ticks are fed in one catch-up after a stall. */
  maxCatchUpTicks: number;
}

export class LeaseClock {
  private readonly ticks: Float64Array;
  private readonly sentAt: Float64Array;
  /** Monotonic time up to which ticks have been fed. */
  private fedUntil: number | undefined;

  constructor(private readonly options: LeaseClockOptions) {
    this.ticks = new Float64Array(options.capacity).fill(-1);
    this.sentAt = new Float64Array(options.capacity);
  }

  get leaseMs(): number {
    return this.options.leaseMs;
  }

  /** Ticks are counted from here (the tick timer's start). */
  start(monotonicNow: number): void {
    this.fedUntil = monotonicNow;
  }

  /**
   * How many ticks to feed now: as many as the elapsed time is due, so ticks never run ahead of
   * real time (a follower's election timer must not fire early) and a stall's missed ticks are
   * caught up — at most maxCatchUpTicks; time beyond that is dropped, not owed.
   */
  ticksDue(monotonicNow: number): number {
    this.fedUntil ??= monotonicNow;
    const due = Math.floor((monotonicNow - this.fedUntil) / this.options.tickMs);
    if (due <= 0) return 0;
    this.fedUntil = due > this.options.maxCatchUpTicks ? monotonicNow : this.fedUntil + due * this.options.tickMs;
    return Math.min(due, this.options.maxCatchUpTicks);
  }

  /** Call just before feeding the tick that will make the core's tick count `tick`. */
  recordTick(tick: number, monotonicNow: number): void {
    const slot = tick % this.options.capacity;
    this.ticks[slot] = tick;
    this.sentAt[slot] = monotonicNow;
  }

  /** Whether a lease granted by the heartbeat round stamped `ackedTick` still holds at `monotonicNow`. */
  holds(ackedTick: number, monotonicNow: number): boolean {
    if (!Number.isFinite(ackedTick) || ackedTick < 0) return false;
    const slot = ackedTick % this.options.capacity;
    // Unknown stamp (too old, or from before this process started): no lease.
    if (this.ticks[slot] !== ackedTick) return false;
    return monotonicNow - this.sentAt[slot]! < this.options.leaseMs;
  }
}
