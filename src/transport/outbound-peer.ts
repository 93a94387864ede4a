// Everything this node sends to one peer: a bounded queue, one long-lived Stream call fed in
// batches, reconnection with backoff, and InstallSnapshot transfers (one at a time).
import type { TransportObserver } from './observer.js';
import { Client, Metadata, type ChannelCredentials, type ChannelOptions, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { encodeMessages, estimateMessageBytes } from './codec.js';
import type { LogThrottle, TransportLogger } from './log-throttle.js';
import { MessageQueue, type QueueLimits } from './message-queue.js';
import type { MessageBatchPb, RaftServiceDefinition } from './raft-service.js';
import { sendSnapshot, type SnapshotTransfer } from './snapshot-sender.js';
import type { SnapshotFiles } from './transport.js';

/** Per-peer counters, as reported by GrpcTransport.stats(). */
export interface PeerStats {
  address: string;
  /** The current stream was accepted by the peer (it sent its response headers). */
  connected: boolean;
  queuedMessages: number;
  queuedBytes: number;
  sentMessages: number;
  sentBatches: number;
  /** Refused because the queue was full (or encoding failed); Raft retransmits. */
  droppedMessages: number;
  streamFailures: number;
  snapshotsSent: number;
  snapshotsFailed: number;
}

export interface OutboundPeerOptions {
  id: NodeId;
  address: string;
  selfId: NodeId;
  clusterName: string;
  service: RaftServiceDefinition;
  channelOptions: ChannelOptions;
  /** Plaintext or mutual TLS (checking that the node reached holds this peer's certificate). */
  credentials: ChannelCredentials;
  queueLimits: QueueLimits;
  maxBatchBytes: number;
  snapshotChunkBytes: number;
  /** A stream or snapshot call the peer has not accepted by then is abandoned as failed. */
  openTimeoutMs: number;
  backoff: BackoffOptions;
  random: () => number;
  logger: TransportLogger;
  throttle: LogThrottle;
  onUnreachable: () => void;
  onSnapshotStatus: (ok: boolean) => void;
  corruptSnapshotChunk?: (chunkIndex: number) => boolean;
  observer?: TransportObserver;
  snapshotFiles?: () => SnapshotFiles | undefined;
  snapshotPieceDelayMs?: number;
}

// Writes handed to grpc but not yet taken by HTTP/2. Keeping this small makes a slow peer's
// backlog pile up in the bounded queue (where it is counted and dropped) instead of inside grpc.
const MAX_INFLIGHT_WRITES = 2;

interface ActiveStream {
  call: ClientWritableStream<MessageBatchPb>;
  inflight: number;
  /** The peer sent response headers. Until then nothing is written, so that a peer that accepts
   * TCP but never answers (stopped process, black hole) leaves messages in the bounded queue
   * rather than in grpc's unbounded pre-connection buffer. */
  accepted: boolean;
  openTimer: NodeJS.Timeout | null;
  /** The open timer fired: the peer neither accepted nor refused the stream in time. */
  openTimedOut?: boolean;
}

/** What happened to a stream, in words that match it: refused at once is not a timeout. */
function streamFailure(stream: ActiveStream, err: ServiceError | null, openTimeoutMs: number): string {
  const details = err?.details ?? '';
  if (stream.accepted) return details || 'stream ended';
  if (stream.openTimedOut) return `peer neither accepted nor refused the stream within ${openTimeoutMs} ms`;
  if (/ECONNREFUSED/.test(details)) return 'connection refused (peer not running yet, or not listening on this address)';
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(details)) return 'peer host name not found';
  if (/ECONNRESET|EPIPE/.test(details)) return 'connection reset by the peer';
  return `stream not opened: ${details.replace(/\s*Resolution note:.*$/s, '').replace(/^No connection established\.\s*Last error:\s*/, '')}`;
}

export class OutboundPeer {
  readonly id: NodeId;
  readonly address: string;
  private readonly client: Client;
  private readonly queue: MessageQueue<Message>;
  private readonly backoff: Backoff;
  private stream: ActiveStream | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** A flush is queued as a microtask (see scheduleFlush). */
  private flushQueued = false;
  private snapshotInFlight: SnapshotTransfer | null = null;
  private pendingSnapshot: Message | null = null;
  private closed = false;
  private readonly counters = {
    connected: false,
    sentMessages: 0,
    sentBatches: 0,
    droppedMessages: 0,
    streamFailures: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
  };

  constructor(private readonly options: OutboundPeerOptions) {
    this.id = options.id;
    this.address = options.address;
    this.client = new Client(options.address, options.credentials, options.channelOptions);
    this.queue = new MessageQueue(options.queueLimits);
    this.backoff = new Backoff(options.backoff, options.random);
  }

  /** Queue a message (or start a snapshot transfer). Never blocks or throws for network reasons. */
  enqueue(message: Message): void {
    if (this.closed) return;
    if (message.type === 'snap') {
      this.enqueueSnapshot(message);
      return;
    }
    // Appends go in the bulk lane; heartbeats, votes and answers overtake them (message-queue.ts).
    if (!this.queue.push(message, estimateMessageBytes(message), message.type === 'app' ? 'bulk' : 'control')) {
      this.counters.droppedMessages++;
      this.options.throttle.warn(
        `queue-full:${this.id}`,
        { peer: this.id, queuedMessages: this.queue.length, queuedBytes: this.queue.bytes },
        'raft send queue to peer is full; dropping messages (peer slow or unreachable)',
      );
      this.options.onUnreachable();
      return;
    }
    this.scheduleFlush();
  }

  stats(): PeerStats {
    return { address: this.address, queuedMessages: this.queue.length, queuedBytes: this.queue.bytes, ...this.counters };
  }

  /** Stop for good: cancel calls and timers, drop the queue. Pending snapshots are not reported. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const stream = this.stream;
    this.stream = null;
    if (stream?.openTimer) clearTimeout(stream.openTimer);
    stream?.call.cancel();
    this.snapshotInFlight?.cancel();
    this.snapshotInFlight = null;
    this.pendingSnapshot = null;
    this.queue.clear();
    this.client.close();
  }

  private scheduleFlush(): void {
    // Coalesce every send() of the current callback into one batch, written before the event loop
    // runs anything else (a setImmediate would let a whole poll phase, fsync completions included,
    // go first: on the path of every commit, that is a turn of latency per hop).
    if (this.flushQueued || this.closed) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.closed || this.queue.length === 0) return;
    if (!this.stream) {
      if (this.reconnectTimer) return; // backing off: messages wait (bounded) in the queue
      this.openStream();
    }
    const stream = this.stream!;
    if (!stream.accepted) return; // flushed again once the peer accepts the stream
    while (this.queue.length > 0 && stream.inflight < MAX_INFLIGHT_WRITES) {
      const batch = this.queue.take(this.options.maxBatchBytes);
      let payload: Uint8Array;
      try {
        payload = encodeMessages(batch);
      } catch (err) {
        // Only a bug in a message's shape gets here; losing it is safer than stalling the link.
        this.counters.droppedMessages += batch.length;
        this.options.logger.error({ peer: this.id, err: (err as Error).message }, 'cannot encode raft messages; dropped');
        continue;
      }
      stream.inflight++;
      const ok = stream.call.write({ payload, sender_id: this.options.selfId, cluster_name: this.options.clusterName } satisfies MessageBatchPb, () => {
        stream.inflight--;
        if (this.stream === stream) this.scheduleFlush();
      });
      this.counters.sentBatches++;
      this.options.observer?.sent?.(this.id, payload.byteLength);
      this.counters.sentMessages += batch.length;
      if (!ok) break;
    }
  }

  private openStream(): void {
    const method = this.options.service.Stream;
    const stream: ActiveStream = {
      inflight: 0,
      accepted: false,
      openTimer: null,
      call: this.client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new Metadata(), {}, (err) =>
        this.onStreamEnd(stream, err),
      ),
    };
    stream.call.on('error', () => {}); // reported through the callback; never let it crash the node
    stream.call.on('metadata', () => {
      // The peer accepted the stream: the link works, so start the next outage's backoff afresh.
      if (this.stream !== stream) return;
      stream.accepted = true;
      if (stream.openTimer) clearTimeout(stream.openTimer);
      stream.openTimer = null;
      this.scheduleFlush();
      this.backoff.reset();
      this.counters.connected = true;
      this.options.throttle.reset(`stream:${this.id}`);
    });
    stream.call.on('drain', () => {
      if (this.stream === stream) this.scheduleFlush();
    });
    stream.openTimer = setTimeout(() => {
      stream.openTimer = null;
      // Ends through onStreamEnd as a failure: unreachable report, backoff, retry.
      if (this.stream === stream && !stream.accepted) {
        stream.openTimedOut = true;
        stream.call.cancel();
      }
    }, this.options.openTimeoutMs);
    stream.openTimer.unref();
    this.stream = stream;
  }

  private onStreamEnd(stream: ActiveStream, err: ServiceError | null): void {
    if (stream.openTimer) clearTimeout(stream.openTimer);
    if (this.stream !== stream || this.closed) return; // we ended it on purpose
    this.stream = null;
    this.counters.connected = false;
    this.counters.streamFailures++;
    const delayMs = this.backoff.next();
    this.options.throttle.warn(
      `stream:${this.id}`,
      {
        peer: this.id,
        address: this.address,
        code: err?.code,
        details: streamFailure(stream, err, this.options.openTimeoutMs),
        retryInMs: delayMs,
      },
      'raft stream to peer failed; reconnecting with backoff',
    );
    this.options.onUnreachable();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      // Stay idle when there is nothing to say; the next send reconnects at once.
      this.flush();
    }, delayMs);
    this.reconnectTimer.unref();
  }

  private enqueueSnapshot(message: Message): void {
    if (this.snapshotInFlight) {
      // Raft sends one snapshot per follower until it hears how it went; a newer one supersedes.
      if (this.pendingSnapshot) this.finishSnapshot(false);
      this.pendingSnapshot = message;
      return;
    }
    this.startSnapshot(message);
  }

  private startSnapshot(message: Message): void {
    const snapshot = message.snapshot!;
    const started = Date.now();
    const transfer = sendSnapshot({
      client: this.client,
      service: this.options.service,
      senderId: this.options.selfId,
      clusterName: this.options.clusterName,
      message,
      chunkBytes: this.options.snapshotChunkBytes,
      openTimeoutMs: this.options.openTimeoutMs,
      corruptChunk: this.options.corruptSnapshotChunk,
      files: this.options.snapshotFiles?.(),
      pieceDelayMs: this.options.snapshotPieceDelayMs,
      logger: this.options.logger,
    });
    this.snapshotInFlight = transfer;
    this.options.logger.info(
      { peer: this.id, index: snapshot.meta.index, term: snapshot.meta.term, bytes: snapshot.data.byteLength },
      'sending snapshot to peer',
    );
    void transfer.done.then((result) => {
      if (this.snapshotInFlight !== transfer || this.closed) return;
      this.snapshotInFlight = null;
      const fields = { peer: this.id, index: snapshot.meta.index, bytes: snapshot.data.byteLength, ms: Date.now() - started };
      this.options.observer?.snapshotSent?.(this.id, result.ok, fields.ms / 1000, fields.bytes);
      if (result.ok) this.options.logger.info(fields, 'snapshot sent to peer');
      else this.options.logger.warn({ ...fields, error: result.error }, 'snapshot transfer to peer failed');
      this.finishSnapshot(result.ok);
      const next = this.pendingSnapshot;
      this.pendingSnapshot = null;
      if (next) this.startSnapshot(next);
    });
  }

  private finishSnapshot(ok: boolean): void {
    if (ok) this.counters.snapshotsSent++;
    else this.counters.snapshotsFailed++;
    this.options.onSnapshotStatus(ok);
  }
}
