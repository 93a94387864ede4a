// A per-peer outbound queue bounded by count and bytes. When full it refuses the newest message
// (as etcd's raft transport does): the queued prefix stays in order, and Raft repairs the gap by
// retransmitting after the follower rejects or the leader probes.
import { invariant } from '../raft/errors.js';

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
}

export class MessageQueue<T> {
  private items: T[] = [];
  private sizes: number[] = [];
  private head = 0;
  private queuedBytes = 0;

  constructor(private readonly limits: QueueLimits) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /**
   * Append unless a limit would be exceeded. A single item larger than maxBytes is still accepted
   * into an empty queue, otherwise it could never be sent at all.
   */
  push(item: T, bytes: number): boolean {
    if (this.length >= this.limits.maxMessages) return false;
    if (this.length > 0 && this.queuedBytes + bytes > this.limits.maxBytes) return false;
    this.items.push(item);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    return true;
  }

  /** Remove and return items from the front until about maxBytes (always at least one item). */
  take(maxBytes: number): T[] {
    const out: T[] = [];
    let taken = 0;
    while (this.head < this.items.length) {
      const size = this.sizes[this.head]!;
      if (out.length > 0 && taken + size > maxBytes) break;
      out.push(this.items[this.head]!);
      this.items[this.head] = undefined as T; // release the reference for the GC
      taken += size;
      this.head++;
    }
    this.queuedBytes -= taken;
    this.compact();
    return out;
  }

  clear(): void {
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.queuedBytes = 0;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.clear();
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
    // invariant: queuedBytes is the sum of sizes of the live items, so it is 0 exactly when empty
    invariant(this.length > 0 || this.queuedBytes === 0, () => `queue empty but ${this.queuedBytes} bytes accounted`);
  }
}
