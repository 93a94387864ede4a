// The client side of exactly-once writes: each write takes a seq once and keeps it across its
// retries; firstUnacked tells the nodes which results they may forget.
import { randomUUID } from 'node:crypto';

export class WriteSession {
  private nextSeq = 1;
  /** Seqs of writes still in progress, in ascending order (Set keeps insertion order). */
  private readonly open = new Set<number>();

  constructor(readonly clientId: string = randomUUID()) {}

  /** Reserve the seq for a new write; every retry of that write reuses it. */
  begin(): number {
    const seq = this.nextSeq++;
    this.open.add(seq);
    return seq;
  }

  /** The write finished (acked, or failed and will never be retried with this seq). */
  end(seq: number): void {
    this.open.delete(seq);
  }

  /** Smallest seq that may still be retried; every seq below it is settled. */
  firstUnacked(): number {
    for (const seq of this.open) return seq;
    return this.nextSeq;
  }
}
