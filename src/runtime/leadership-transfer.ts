// Waiters for a planned leadership transfer (switchover): each resolves once the named node is
// seen as leader, or is removed when its deadline passes.

interface TransferWaiter {
  to: string;
  resolve: () => void;
}

export class TransferWaiters {
  private waiters = new Set<TransferWaiter>();

  /** Resolves once `leaderSeen(to)` is called; `cancel` forgets it. */
  wait(to: string): { done: Promise<void>; cancel: () => void } {
    let waiter!: TransferWaiter;
    const done = new Promise<void>((resolve) => {
      waiter = { to, resolve };
    });
    this.waiters.add(waiter);
    return { done, cancel: () => this.waiters.delete(waiter) };
  }

  /** A new leader is known: release the waiters that asked for it. */
  leaderSeen(leaderId: string): void {
    for (const w of this.waiters) {
      if (w.to !== leaderId) continue;
      this.waiters.delete(w);
      w.resolve();
    }
  }

  /** Shutdown: release everyone (shutdown wins; callers re-check nothing). */
  releaseAll(): void {
    const all = this.waiters;
    this.waiters = new Set();
    for (const w of all) w.resolve();
  }
}
