// kv.watch(): the changes to a key, a prefix or a range as an async iterator, in log order, each
// exactly once, across node failures. The SDK remembers the index up to which it has delivered
// everything (each message from the node says so) and, when a stream breaks, opens a new one on
// another node from the next index; a node sends whole log indexes only, so nothing is repeated or
// skipped. Flow control is the stream's: a consumer that does not pull stops the node from sending.
import type * as grpc from '@grpc/grpc-js';
import { ClientUsageError, InvalidArgumentError, PermissionDeniedError, UnauthenticatedError, WatchCompactedError } from '../api/errors.js';
import { statusToError, type StatusLike } from '../api/grpc-status.js';
import type { WireWatchEvent, WireWatchRequest, WireWatchResponse } from '../api/kv-proto.js';
import { bytesToText, toBytes, type Bytes } from './bytes.js';

export interface WatchSpec {
  /** One key; or */
  key?: Bytes;
  /** every key with this prefix; or */
  prefix?: Bytes;
  /** keys in [start, end) (end omitted: no upper bound). None of the three: every key. */
  start?: Bytes;
  end?: Bytes;
  /** Deliver every change at this log index and later (default: from when the first node answers). */
  fromIndex?: number;
  /** Include each key's previous value. */
  prevValue?: boolean;
}

/** One change to one key. */
export class WatchEvent {
  constructor(
    readonly type: 'put' | 'delete',
    readonly key: Uint8Array,
    /** Empty for a delete. */
    readonly value: Uint8Array,
    /** The log index of the change. */
    readonly index: number,
    /** With `prevValue: true`: the value before the change (undefined: the key did not exist). */
    readonly prevValue: Uint8Array | undefined,
    /** The lease the key is attached to after a put (0 = none). */
    readonly lease: number,
  ) {}

  keyText(): string {
    return bytesToText(this.key);
  }

  text(): string {
    return bytesToText(this.value);
  }
}

/** What a watch needs from the client: streams to nodes, and which node to try next. */
export interface WatchTransport {
  open(endpoint: string, request: WireWatchRequest): grpc.ClientReadableStream<WireWatchResponse>;
  endpoints(): readonly string[];
  assertOpen(): void;
}

const RETRY_START_MS = 50;
const RETRY_MAX_MS = 1_000;

function eventFromWire(e: WireWatchEvent): WatchEvent {
  return new WatchEvent(e.type === 'TYPE_DELETE' ? 'delete' : 'put', e.key, e.value, e.index, e.hasPrev ? e.prevValue : undefined, e.lease);
}

/** Errors no other node would answer differently. */
function isFinal(err: Error): boolean {
  return err instanceof InvalidArgumentError || err instanceof PermissionDeniedError || err instanceof UnauthenticatedError || err instanceof ClientUsageError;
}

export class Watcher implements AsyncIterable<WatchEvent> {
  /** Every change at an index below this was delivered (0: not known yet). */
  private nextIndex: number;
  private stream: grpc.ClientReadableStream<WireWatchResponse> | undefined;
  private closed = false;
  private started = false;
  private readonly range: Omit<WireWatchRequest, 'fromIndex'>;

  constructor(
    private readonly transport: WatchTransport,
    spec: WatchSpec,
  ) {
    if (!spec || typeof spec !== 'object') throw new ClientUsageError('watch({ key | prefix | start/end, fromIndex?, prevValue? }) is required');
    const given = [spec.key !== undefined, spec.prefix !== undefined, spec.start !== undefined || spec.end !== undefined].filter(Boolean).length;
    if (given > 1) throw new ClientUsageError('watch takes one of key, prefix or start/end');
    if (spec.fromIndex !== undefined && (!Number.isSafeInteger(spec.fromIndex) || spec.fromIndex < 1)) {
      throw new ClientUsageError(`fromIndex must be a positive integer, got ${spec.fromIndex}`);
    }
    const empty = new Uint8Array(0);
    this.range = {
      key: spec.key === undefined ? empty : toBytes(spec.key, 'key'),
      prefix: spec.prefix === undefined ? empty : toBytes(spec.prefix, 'prefix'),
      start: spec.start === undefined ? empty : toBytes(spec.start, 'start'),
      end: spec.end === undefined ? empty : toBytes(spec.end, 'end'),
      prevValue: spec.prevValue === true,
    };
    this.nextIndex = spec.fromIndex ?? 0;
  }

  /** The index the watch would resume from: every change below it was delivered. */
  get resumeIndex(): number {
    return this.nextIndex;
  }

  /** Ends the iteration (a pending next() resolves done). */
  close(): void {
    this.closed = true;
    this.stream?.cancel();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.started) throw new ClientUsageError('a watch can be iterated once; call watch() again');
    this.started = true;
    return this.events();
  }

  private async *events(): AsyncGenerator<WatchEvent> {
    const endpoints = this.transport.endpoints();
    let turn = 0; // the first endpoint first (callers can list a nearby node first), then the others in turn
    let retryMs = RETRY_START_MS;
    /** Nodes that said the resume index is older than their history, since the last delivery. */
    const compacted = new Map<string, WatchCompactedError>();
    try {
      while (!this.closed) {
        this.transport.assertOpen();
        const endpoint = endpoints[turn % endpoints.length]!;
        try {
          const stream = this.transport.open(endpoint, { ...this.range, fromIndex: this.nextIndex });
          this.stream = stream;
          for await (const message of stream as AsyncIterable<WireWatchResponse>) {
            retryMs = RETRY_START_MS;
            for (const e of message.events) {
              // A node sends whole indexes from where we asked: anything older was delivered already.
              if (e.index < this.nextIndex) continue;
              yield eventFromWire(e);
              if (this.closed) return;
            }
            if (message.progress + 1 > this.nextIndex) this.nextIndex = message.progress + 1;
            compacted.clear();
          }
        } catch (e) {
          if (this.closed) return;
          const err = statusToError(e as StatusLike);
          if (isFinal(err)) throw err;
          if (err instanceof WatchCompactedError) {
            // Another node may have been up longer and still keep that history.
            compacted.set(endpoint, err);
            if (compacted.size >= endpoints.length) throw err;
            turn++;
            continue;
          }
        } finally {
          this.stream = undefined;
        }
        if (this.closed) return;
        // The stream broke (node down, stopping, network): resume on the next node.
        turn++;
        await new Promise((resolve) => setTimeout(resolve, retryMs * (0.5 + Math.random() / 2)));
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    } finally {
      this.closed = true;
      this.stream?.cancel();
    }
  }
}
