// A per-peer outbound queue in two lanes, each bounded by count and bytes. When a lane is full it
// refuses the newest message (as etcd's raft transport does): the queued prefix stays in order, and
// Raft repairs the gap by retransmitting after the follower rejects or the leader probes.
//
// The bulk lane carries appends (the entries); the control lane carries everything else (heartbeats
// and their answers, votes, append answers, ReadIndex): a few dozen bytes each, taken first. Raft
// tolerates any reordering between messages; what it must not see is heartbeats stuck behind tens
// of MiB of appends to a slow follower (seen in a 2 GB rebuild: the follower's election timer fired
// again and again, and with the bulk bound reached the heartbeats themselves were dropped). etcd
// keeps the same two classes on separate streams for the same reason.
import { invariant } from '../raft/errors.js';

export interface QueueLimits {
  maxMessages: number;
  /** Bound of the bulk lane. */
  maxBytes: number;
  /** Bound of the control lane (default 1 MiB, at most maxBytes). */
  maxControlBytes?: number;
}

export type QueueLane = 'bulk' | 'control';

const DEFAULT_CONTROL_BYTES = 1 << 20;

/** One lane: a FIFO with a count and a byte bound. */
class Lane<T> {
  private items: T[] = [];
  private sizes: number[] = [];
  private head = 0;
  queuedBytes = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T, bytes: number): boolean {
    if (this.length >= this.maxMessages) return false;
    if (this.length > 0 && this.queuedBytes + bytes > this.maxBytes) return false;
    this.items.push(item);
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    return true;
  }

  /** Moves items from the front into `out` while `budget` allows (at least one when `out` is empty); returns the bytes taken. */
  takeInto(out: T[], budget: number): number {
    let taken = 0;
    while (this.head < this.items.length) {
      const size = this.sizes[this.head]!;
      if (out.length > 0 && taken + size > budget) break;
      out.push(this.items[this.head]!);
      this.items[this.head] = undefined as T; // release the reference for the GC
      taken += size;
      this.head++;
    }
    this.queuedBytes -= taken;
    this.compact();
    return taken;
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
    invariant(this.length > 0 || this.queuedBytes === 0, () => `queue lane empty but ${this.queuedBytes} bytes accounted`);
  }
}

export class MessageQueue<T> {
  private readonly control: Lane<T>;
  private readonly bulk: Lane<T>;

  constructor(limits: QueueLimits) {
    this.bulk = new Lane(limits.maxMessages, limits.maxBytes);
    this.control = new Lane(limits.maxMessages, Math.min(limits.maxControlBytes ?? DEFAULT_CONTROL_BYTES, limits.maxBytes));
  }

  get length(): number {
    return this.control.length + this.bulk.length;
  }

  get bytes(): number {
    return this.control.queuedBytes + this.bulk.queuedBytes;
  }

  /**
   * Append to `lane` unless its limit would be exceeded. A single item larger than the lane's
   * bound is still accepted into an empty lane, otherwise it could never be sent at all.
   */
  push(item: T, bytes: number, lane: QueueLane = 'bulk'): boolean {
    return (lane === 'control' ? this.control : this.bulk).push(item, bytes);
  }

  /** Remove and return items, control lane first, until about maxBytes (always at least one item). */
  take(maxBytes: number): T[] {
    const out: T[] = [];
    const taken = this.control.takeInto(out, maxBytes);
    this.bulk.takeInto(out, maxBytes - taken);
    return out;
  }

  clear(): void {
    this.control.clear();
    this.bulk.clear();
  }
}
