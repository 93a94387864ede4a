// Batches linearizable reads into ReadIndex rounds. A read may only join a round issued *after*
// the read began (the round's index is the leader's commit at issue time), so reads that arrive
// while a round is in flight wait for the next one, which then serves all of them at once.

export interface ReadIndexBatcherOptions {
  /** Ask the core for a read index; throws when impossible (e.g. no leader known). */
  issue: (context: string) => void;
  /** Prefix for request contexts, unique per node incarnation. */
  contextPrefix: string;
  /** A round with no answer after this long is re-issued (the leader may have changed or dropped it). */
  retryAfterMs: number;
  now: () => number;
}

interface Waiter {
  resolve: (index: number) => void;
  reject: (err: Error) => void;
}

interface Round {
  context: string;
  waiters: Set<Waiter>;
  issuedAt: number;
}

export class ReadIndexBatcher {
  private inflight: Round | null = null;
  private queued = new Set<Waiter>();
  private seq = 0;

  constructor(private readonly options: ReadIndexBatcherOptions) {}

  /** Number of reads waiting for a read index. */
  get pending(): number {
    return this.queued.size + (this.inflight?.waiters.size ?? 0);
  }

  /**
   * `index` resolves with an index that is safe to read once applied; `cancel` gives the slot
   * back when the read gives up (deadline), so abandoned reads do not count against the limit.
   */
  request(): { index: Promise<number>; cancel: () => void } {
    let waiter!: Waiter;
    const index = new Promise<number>((resolve, reject) => {
      waiter = { resolve, reject };
    });
    this.queued.add(waiter);
    if (!this.inflight) this.issueNext();
    return {
      index,
      cancel: () => {
        this.queued.delete(waiter);
        this.inflight?.waiters.delete(waiter);
      },
    };
  }

  /** The core released a ReadState; returns true when it belonged to this batcher. */
  onReadState(context: string, index: number): boolean {
    const round = this.inflight;
    if (!round || round.context !== context) return false;
    this.inflight = null;
    for (const w of round.waiters) w.resolve(index);
    this.issueNext();
    return true;
  }

  /** Called on every tick: re-issue a round that went unanswered for too long. */
  tick(): void {
    const round = this.inflight;
    if (round && this.options.now() - round.issuedAt >= this.options.retryAfterMs) {
      this.inflight = null;
      for (const w of this.queued) round.waiters.add(w);
      this.queued = round.waiters;
      this.issueNext();
    }
  }

  failAll(err: Error): void {
    const waiters = [...(this.inflight?.waiters ?? []), ...this.queued];
    this.inflight = null;
    this.queued = new Set();
    for (const w of waiters) w.reject(err);
  }

  private issueNext(): void {
    if (this.queued.size === 0) return;
    const waiters = this.queued;
    this.queued = new Set();
    const context = `${this.options.contextPrefix}:${++this.seq}`;
    try {
      this.options.issue(context);
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
      return;
    }
    this.inflight = { context, waiters, issuedAt: this.options.now() };
  }
}
