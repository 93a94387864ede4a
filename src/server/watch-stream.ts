// The Watch stream: one server-streaming call per watcher, fed from the node's watch history
// (runtime/watch-hub.ts). The watcher is a cursor into that history, never a queue: the loop reads
// the next events only once gRPC has taken the previous message (write() returned true or 'drain'
// fired), so a watcher that reads slowly is slowed down by HTTP/2 flow control and costs the node
// no buffer. Each message holds whole log indexes and says up to which index everything was sent
// (`progress`), which is where the SDK resumes on another node after a failure.
import type * as grpc from '@grpc/grpc-js';
import type { KvEvent } from '../api/command.js';
import { InvalidArgumentError, OverloadedError } from '../api/errors.js';
import { errorToStatus } from '../api/grpc-status.js';
import type { WireWatchEvent, WireWatchRequest, WireWatchResponse } from '../api/kv-proto.js';
import type { WatchSource } from '../runtime/kv-backend.js';
import { serverStreamFlow } from './server-stream-flow.js';

export interface WatchLimits {
  maxKeyBytes: number;
  /** Watches open at once on this node. */
  maxWatchers: number;
  /** Watches open at once on one client connection. */
  maxWatchersPerConnection: number;
  /** Key and value bytes in one message (a single larger index still goes out whole). */
  maxWatchMessageBytes: number;
}

/** How often an idle watch tells the client how far it got (so a resume never starts too far back). */
const PROGRESS_EVERY_MS = 1_000;
/** Events read from the history per step. */
const READ_EVENTS = 256;

export interface WatchRange {
  start: Uint8Array;
  /** Exclusive; empty = no upper bound. */
  end: Uint8Array;
}

export function inRange(key: Uint8Array, r: WatchRange): boolean {
  return Buffer.compare(key, r.start) >= 0 && (r.end.length === 0 || Buffer.compare(key, r.end) < 0);
}

function toWire(e: KvEvent, withPrev: boolean): WireWatchEvent {
  return {
    type: e.type === 'put' ? 'TYPE_PUT' : 'TYPE_DELETE',
    key: e.key,
    value: e.value,
    index: e.index,
    hasPrev: withPrev && e.prevValue !== undefined,
    prevValue: withPrev && e.prevValue ? e.prevValue : new Uint8Array(0),
    lease: e.lease,
  };
}

/** Open watches per client connection, and in all. */
export class WatchCounter {
  private total = 0;
  private readonly byPeer = new Map<string, number>();

  constructor(private readonly limits: WatchLimits) {}

  /** Takes a slot or throws OverloadedError; the returned function gives it back (once). */
  acquire(peer: string): () => void {
    if (this.total >= this.limits.maxWatchers) throw new OverloadedError('watches open on this node', this.limits.maxWatchers);
    const n = this.byPeer.get(peer) ?? 0;
    if (n >= this.limits.maxWatchersPerConnection) throw new OverloadedError('watches open on this connection', this.limits.maxWatchersPerConnection);
    this.total++;
    this.byPeer.set(peer, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byPeer.get(peer) ?? 1) - 1;
      if (left <= 0) this.byPeer.delete(peer);
      else this.byPeer.set(peer, left);
    };
  }
}

/**
 * Serves one Watch call until the client cancels, the node stops, or the watcher falls out of the
 * history window (WatchCompactedError). `range` and `request` are already validated.
 */
export async function serveWatch(
  call: grpc.ServerWritableStream<Buffer, object>,
  request: WireWatchRequest,
  range: WatchRange,
  source: WatchSource,
  limits: WatchLimits,
): Promise<void> {
  const { signal, send, release } = serverStreamFlow<WireWatchResponse>(call);
  try {
    let next = request.fromIndex > 0 ? request.fromIndex : source.appliedIndex() + 1;
    // At once, so the client knows where it stands even before anything changes.
    await send({ events: [], progress: next - 1 });
    let progressSent = next - 1;
    let lastSentAt = Date.now();
    while (!signal.aborted) {
      const read = source.read(next, READ_EVENTS);
      let events: WireWatchEvent[] = [];
      let bytes = 0;
      for (const entry of read.entries) {
        for (const e of entry.events) {
          if (!inRange(e.key, range)) continue;
          events.push(toWire(e, request.prevValue));
          bytes += e.key.length + e.value.length + (request.prevValue ? (e.prevValue?.length ?? 0) : 0);
        }
        if (bytes >= limits.maxWatchMessageBytes) {
          await send({ events, progress: entry.index });
          progressSent = entry.index;
          lastSentAt = Date.now();
          events = [];
          bytes = 0;
          if (signal.aborted) return;
        }
      }
      next = read.next;
      const now = Date.now();
      if (events.length > 0 || (next - 1 > progressSent && now - lastSentAt >= PROGRESS_EVERY_MS)) {
        await send({ events, progress: next - 1 });
        progressSent = next - 1;
        lastSentAt = now;
      }
      if (read.next > source.appliedIndex()) {
        // Caught up: sleep until the node applies more, waking now and then to report progress.
        const wake = new AbortController();
        const timer = setTimeout(() => wake.abort(), PROGRESS_EVERY_MS);
        const stop = (): void => wake.abort();
        signal.addEventListener('abort', stop, { once: true });
        try {
          await source.waitFor(next, wake.signal);
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', stop);
        }
      }
    }
  } catch (err) {
    if (!signal.aborted) call.emit('error', errorToStatus(err));
    return;
  } finally {
    release();
  }
  call.end();
}

/** Validates a WatchRequest: exactly one of key, prefix, start/end (or none: every key). */
export function watchRange(r: Partial<WireWatchRequest>, limits: WatchLimits, prefixEnd: (p: Uint8Array) => Uint8Array): WatchRange {
  const bytes = (v: unknown, field: string): Uint8Array => {
    if (v === undefined || v === null) return new Uint8Array(0);
    if (!(v instanceof Uint8Array)) throw new InvalidArgumentError(field, 'must be bytes');
    if (v.length > limits.maxKeyBytes) throw new InvalidArgumentError(field, `is ${v.length} bytes, more than the key limit of ${limits.maxKeyBytes}`);
    return v;
  };
  const key = bytes(r.key, 'key');
  const prefix = bytes(r.prefix, 'prefix');
  const start = bytes(r.start, 'start');
  const end = bytes(r.end, 'end');
  const given = [key.length > 0, prefix.length > 0, start.length > 0 || end.length > 0].filter(Boolean).length;
  if (given > 1) throw new InvalidArgumentError('watch', 'give one of key, prefix or start/end');
  if (r.fromIndex !== undefined && (typeof r.fromIndex !== 'number' || !Number.isSafeInteger(r.fromIndex) || r.fromIndex < 0)) {
    throw new InvalidArgumentError('fromIndex', 'must be a non-negative integer');
  }
  if (key.length > 0) {
    const after = new Uint8Array(key.length + 1);
    after.set(key);
    return { start: key, end: after }; // [key, key + 0x00): the key alone
  }
  if (prefix.length > 0) return { start: prefix, end: prefixEnd(prefix) };
  if (end.length > 0 && Buffer.compare(start, end) >= 0) throw new InvalidArgumentError('end', 'must be greater than start (or empty for no upper bound)');
  return { start, end };
}
