// The watch history of one node: the changes its state machine applied, grouped by log index, kept
// in a bounded window (events and bytes) for watchers to read at their own pace and to resume from
// after a failover. Watchers hold no buffer of their own: each is a cursor (the next index it
// wants) that reads from here, so a slow watcher costs no memory, only its place in the window; if
// the window moves past its cursor it gets WatchCompactedError.
//
// The window lives in memory only. It starts at the node's applied index when the node starts, and
// again after a snapshot install (the installed state has no per-key history): a watch resuming
// from an older index gets WatchCompactedError naming the oldest index this node can serve.
import type { KvEvent } from '../api/command.js';
import { ShuttingDownError, WatchCompactedError } from '../api/errors.js';
import { invariant } from '../raft/errors.js';

export interface WatchHistoryLimits {
  /** Events kept for resumption (default 10000). */
  maxEvents: number;
  /** Bytes of keys and values kept (default 16 MiB). */
  maxBytes: number;
}

export const DEFAULT_WATCH_HISTORY: Readonly<WatchHistoryLimits> = Object.freeze({ maxEvents: 10_000, maxBytes: 16 * 1024 * 1024 });

/** The events of one log index (one command can change many keys). */
export interface IndexedEvents {
  index: number;
  events: KvEvent[];
}

export interface WatchRead {
  entries: IndexedEvents[];
  /** The next index to ask for: every index below it has been returned or had no events. */
  next: number;
}

/** What the server's watch streams read from (implemented by WatchHub). */
export interface WatchSource {
  /** Oldest index a watch can start from. */
  oldestIndex(): number;
  /** Index up to which history is complete (the node's applied index). */
  appliedIndex(): number;
  /** Entries from index `from` on, at most about `maxEvents` events. Throws WatchCompactedError. */
  read(from: number, maxEvents: number): WatchRead;
  /** Resolves once index `from` is applied (or at once if it is); rejects ShuttingDownError on stop. */
  waitFor(from: number, signal: AbortSignal): Promise<void>;
}

function eventBytes(e: KvEvent): number {
  return e.key.length + e.value.length + (e.prevValue?.length ?? 0) + 48;
}

export class WatchHub implements WatchSource {
  private readonly limits: WatchHistoryLimits;
  // invariant: entries[head..] are ascending by index, each > firstRetained - 1 and <= applied
  private entries: (IndexedEvents & { bytes: number })[] = [];
  private head = 0;
  private events = 0;
  private bytes = 0;
  /** Every index in [firstRetained, applied] is in the window (or had no events). */
  private firstRetained: number;
  private applied: number;
  private readonly waiters = new Set<{ from: number; wake: () => void }>();
  private closedBy: Error | undefined;

  constructor(
    private readonly nodeId: string,
    applied: number,
    limits: Partial<WatchHistoryLimits> = {},
  ) {
    this.limits = { ...DEFAULT_WATCH_HISTORY, ...limits };
    for (const [k, v] of Object.entries(this.limits)) invariant(Number.isSafeInteger(v) && v > 0, () => `watch history ${k} must be a positive integer`);
    this.applied = applied;
    this.firstRetained = applied + 1;
  }

  oldestIndex(): number {
    return this.firstRetained;
  }

  appliedIndex(): number {
    return this.applied;
  }

  get size(): { events: number; bytes: number; watchersWaiting: number } {
    return { events: this.events, bytes: this.bytes, watchersWaiting: this.waiters.size };
  }

  /** The events of one applied batch (in log order). */
  append(events: readonly KvEvent[]): void {
    for (const e of events) {
      const last = this.entries[this.entries.length - 1];
      invariant(e.index > this.applied, () => `watch event at index ${e.index} is not after applied index ${this.applied}`);
      const b = eventBytes(e);
      if (last && this.entries.length > this.head && last.index === e.index) {
        last.events.push(e);
        last.bytes += b;
      } else {
        invariant(!last || e.index > last.index, 'watch events out of log order');
        this.entries.push({ index: e.index, events: [e], bytes: b });
      }
      this.events++;
      this.bytes += b;
    }
    this.evict();
  }

  /** The node applied up to `index` (called after every batch, with or without events). */
  advance(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    for (const w of [...this.waiters]) if (w.from <= index) w.wake();
  }

  /** A snapshot replaced the state at `index`: history before it is gone. */
  reset(index: number): void {
    this.entries = [];
    this.head = 0;
    this.events = 0;
    this.bytes = 0;
    this.applied = Math.max(this.applied, index);
    this.firstRetained = this.applied + 1;
    for (const w of [...this.waiters]) w.wake(); // they re-read and learn they were compacted
  }

  read(from: number, maxEvents: number): WatchRead {
    if (this.closedBy) throw this.closedBy;
    if (from < this.firstRetained) throw new WatchCompactedError(from, this.firstRetained);
    const out: IndexedEvents[] = [];
    let count = 0;
    let i = this.lowerBound(from);
    for (; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (count > 0 && count + entry.events.length > maxEvents) return { entries: out, next: entry.index };
      out.push({ index: entry.index, events: entry.events });
      count += entry.events.length;
    }
    return { entries: out, next: Math.max(from, this.applied + 1) };
  }

  waitFor(from: number, signal: AbortSignal): Promise<void> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    if (from <= this.applied || from < this.firstRetained || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = {
        from,
        wake: () => {
          this.waiters.delete(w);
          signal.removeEventListener('abort', w.wake);
          resolve();
        },
      };
      this.waiters.add(w);
      signal.addEventListener('abort', w.wake, { once: true });
    });
  }

  /** Stop: every waiting watcher wakes and its next read fails with ShuttingDownError. */
  close(): void {
    this.closedBy = new ShuttingDownError(this.nodeId);
    for (const w of [...this.waiters]) w.wake();
  }

  private lowerBound(index: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.index < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private evict(): void {
    while (this.head < this.entries.length && (this.events > this.limits.maxEvents || this.bytes > this.limits.maxBytes)) {
      const old = this.entries[this.head++]!;
      this.events -= old.events.length;
      this.bytes -= old.bytes;
      this.firstRetained = old.index + 1;
    }
    // Drop the evicted prefix now and then, so the array does not grow without end.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
