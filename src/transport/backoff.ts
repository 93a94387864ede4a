// Reconnect delays: exponential growth with "equal jitter" (half fixed, half random), so that
// peers that lost the same node do not all redial it in the same millisecond.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt; grows with every call until reset(). */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** A connection worked: the next failure starts from the initial delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
