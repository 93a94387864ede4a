// Status calls parked until this node knows a leader in a term newer than the one the caller
// names: a client waiting on a hung leader learns of its successor the moment this node does,
// instead of polling for it. A wait never fails: at its deadline, on cancel or at shutdown it just
// ends, and the caller answers with the node's view as it is. The number of parked calls is
// bounded; past the bound a call ends at once, which is what a node without this feature does.
import type { DeadlineTimers } from './with-deadline.js';

interface LeaderWaiter {
  readonly termAbove: number;
  readonly done: () => void;
}

export class LeaderWaiters {
  private readonly waiters = new Set<LeaderWaiter>();

  constructor(
    private readonly clock: DeadlineTimers,
    private readonly maxWaiters: number,
  ) {
    if (!Number.isInteger(maxWaiters) || maxWaiters < 0) throw new RangeError(`maxWaiters must be an integer >= 0, got ${maxWaiters}`);
  }

  get size(): number {
    return this.waiters.size;
  }

  /**
   * Resolves once notify() reports a known leader in a term > termAbove, at `deadline` (epoch ms),
   * when `signal` aborts, or at once when the bound is reached.
   */
  wait(termAbove: number, deadline: number, signal?: AbortSignal): Promise<void> {
    const waitMs = deadline - this.clock.now();
    if (waitMs <= 0 || signal?.aborted || this.waiters.size >= this.maxWaiters) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => finish(), waitMs);
      const onAbort = () => finish();
      const waiter: LeaderWaiter = { termAbove, done: () => finish() };
      const finish = (): void => {
        if (!this.waiters.delete(waiter)) return;
        this.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** This node now knows a leader (itself or another) in `term`. */
  notify(term: number): void {
    for (const w of [...this.waiters]) if (term > w.termAbove) w.done();
  }

  /** Shutdown: every parked call answers now. */
  releaseAll(): void {
    for (const w of [...this.waiters]) w.done();
  }
}
