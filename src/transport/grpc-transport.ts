// The production Transport: gRPC (proto/raft.proto) between nodes. Each peer gets one outbound
// long-lived stream fed from a bounded queue (see outbound-peer.ts); inbound traffic is validated
// and handed to the Raft handler (see inbound-service.ts).
import { Server, ServerCredentials, credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import type { InboundAdmission, PeerAddress, SnapshotFiles, SnapshotStatusEvent, Transport } from './transport.js';
import { memberIdOf, type PeerTls } from './peer-identity.js';
import type { BackoffOptions } from './backoff.js';
import { TransportClosedError, TransportConfigError } from './errors.js';
import { formatHostPort, parseHostPort, type HostPort } from './host-port.js';
import { createInboundService, emptyInboundStats, type InboundStats, type InboundStreamHandle } from './inbound-service.js';
import { LogThrottle, silentLogger, type TransportLogger } from './log-throttle.js';
import type { TransportObserver } from './observer.js';
import { OutboundPeer, type PeerStats } from './outbound-peer.js';
import { raftServiceDefinition, type RaftServiceDefinition } from './raft-service.js';

const MiB = 1024 * 1024;

export interface GrpcTransportOptions {
  selfId: NodeId;
  /** Where to listen, e.g. "127.0.0.1:7001"; port 0 picks a free port (see address()). */
  listenAddress: string;
  /** Initial peers; an entry for selfId is ignored, so the whole member list may be passed. */
  peers: PeerAddress[];
  /** Batches from a node of another cluster are refused (guards against mis-wired addresses). */
  clusterName: string;
  /**
   * Per peer id: dial this host:port instead of the peer's raftAddress (e.g. a fault-injecting TCP
   * proxy of `quorumkv drill`). The peer's identity checks are unchanged.
   */
  dialOverrides?: Readonly<Record<NodeId, string>>;
  logger?: TransportLogger;
  /** Per-peer bytes and snapshot transfers, for metrics. */
  observer?: TransportObserver;
  /** Per-peer outbound queue bounds; when either is reached new messages are dropped. */
  maxQueueMessages?: number; // default 4096
  maxQueueBytes?: number; // default 64 MiB
  /** Target size of one MessageBatch (a single larger message still goes alone). */
  maxBatchBytes?: number; // default 4 MiB
  /** Largest gRPC message the server accepts; must exceed any single Raft message. */
  maxReceiveMessageBytes?: number; // default 16 MiB
  /** Messages in one received batch; a batch with more is dropped without being decoded. */
  maxBatchMessages?: number; // default 8192
  snapshotChunkBytes?: number; // default 256 KiB
  /** Largest in-memory (buffered) snapshot accepted from a peer. */
  maxSnapshotBytes?: number; // default 2 GiB
  /** Largest snapshot *file* accepted from a peer (it goes to disk a piece at a time). */
  maxSnapshotFileBytes?: number; // default 1 TiB
  /** Announced bytes of all incoming snapshot transfers together (one per sender at most). */
  maxIncomingSnapshotBytes?: number; // default maxSnapshotBytes
  /** An incoming snapshot transfer that receives nothing for this long is dropped. */
  snapshotIdleTimeoutMs?: number; // default 10 s
  /**
   * Mutual TLS on every peer link: this node's certificate and key, and the cluster CA. Peers are
   * identified by the member id in their certificate (URI quorumkv://member/<id>); without it the
   * transport is plaintext and a peer's id is only what it claims.
   */
  tls?: PeerTls;
  /**
   * Redial delays of a failed peer link (both this transport's stream and grpc's connection).
   * The cap bounds how long a link stays down after its peer is back: a vote or its answer waits
   * for it, so it must stay well under the election timeout (etcd redials every 100 ms).
   */
  reconnectBackoff?: BackoffOptions; // default 20 ms → 100 ms
  /** Minimum gap between two onUnreachable reports for the same peer. */
  unreachableThrottleMs?: number; // default 1000
  /** HTTP/2 keepalive ping period and timeout: how fast a silent (e.g. SIGSTOPped) peer is noticed. */
  keepaliveTimeMs?: number; // default 2000
  keepaliveTimeoutMs?: number; // default 1000
  /** A peer that has not accepted a new stream by then counts as unreachable (stopped process). */
  streamOpenTimeoutMs?: number; // default 3000
  /** How long close() lets in-flight calls finish before cutting them. */
  shutdownGraceMs?: number; // default 200
  /** Source of jitter in [0, 1). */
  random?: () => number;
  /** Fault injection for tests only. */
  testHooks?: {
    /** Return true to corrupt data chunk `chunkIndex` of a snapshot sent to `to` (after its CRC). */
    corruptSnapshotChunk?: (to: NodeId, chunkIndex: number) => boolean;
    /** Pause between the pieces of a snapshot file sent to a peer (a slow link). */
    snapshotPieceDelayMs?: number;
  };
}

export interface TransportStats {
  peers: Record<NodeId, PeerStats>;
  inbound: InboundStats;
  /** Messages addressed to a node that is not a peer (or to this node itself). */
  droppedUnknownPeer: number;
}

interface ResolvedOptions {
  maxQueueMessages: number;
  maxQueueBytes: number;
  maxBatchBytes: number;
  maxReceiveMessageBytes: number;
  maxBatchMessages: number;
  snapshotChunkBytes: number;
  maxSnapshotBytes: number;
  maxSnapshotFileBytes: number;
  maxIncomingSnapshotBytes: number;
  snapshotIdleTimeoutMs: number;
  reconnectBackoff: BackoffOptions;
  unreachableThrottleMs: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  streamOpenTimeoutMs: number;
  shutdownGraceMs: number;
}

export class GrpcTransport implements Transport {
  private readonly selfId: NodeId;
  private readonly clusterName: string;
  private readonly listen: HostPort;
  private readonly logger: TransportLogger;
  private readonly throttle: LogThrottle;
  private readonly o: ResolvedOptions;
  private readonly random: () => number;
  private readonly service: RaftServiceDefinition;
  private readonly channelOptions: ChannelOptions;
  private readonly peers = new Map<NodeId, OutboundPeer>();
  private readonly lastUnreachable = new Map<NodeId, number>();
  private readonly inboundStats = emptyInboundStats();
  private readonly inboundStreams = new Set<InboundStreamHandle>();
  private droppedUnknownPeer = 0;
  private messageHandler: ((m: Message) => void) | null = null;
  private unreachableHandler: ((peer: NodeId) => void) | null = null;
  private snapshotHandler: ((e: SnapshotStatusEvent) => void) | null = null;
  private snapshotFiles: SnapshotFiles | undefined;
  private admission: InboundAdmission | undefined;
  private server: Server | null = null;
  private boundPort: number | null = null;
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: GrpcTransportOptions) {
    this.selfId = nonEmpty(options.selfId, 'selfId');
    this.clusterName = nonEmpty(options.clusterName, 'clusterName');
    this.listen = parseHostPort(options.listenAddress, 'listenAddress', true);
    this.o = {
      maxQueueMessages: positiveInt(options.maxQueueMessages, 'maxQueueMessages', 4096),
      maxQueueBytes: positiveInt(options.maxQueueBytes, 'maxQueueBytes', 64 * MiB),
      maxBatchBytes: positiveInt(options.maxBatchBytes, 'maxBatchBytes', 4 * MiB),
      maxReceiveMessageBytes: positiveInt(options.maxReceiveMessageBytes, 'maxReceiveMessageBytes', 16 * MiB),
      maxBatchMessages: positiveInt(options.maxBatchMessages, 'maxBatchMessages', 8192),
      snapshotChunkBytes: positiveInt(options.snapshotChunkBytes, 'snapshotChunkBytes', 256 * 1024),
      maxSnapshotBytes: positiveInt(options.maxSnapshotBytes, 'maxSnapshotBytes', 2 * 1024 * MiB),
      maxSnapshotFileBytes: positiveInt(options.maxSnapshotFileBytes, 'maxSnapshotFileBytes', 1024 * 1024 * MiB),
      maxIncomingSnapshotBytes: positiveInt(options.maxIncomingSnapshotBytes, 'maxIncomingSnapshotBytes', options.maxSnapshotBytes ?? 2 * 1024 * MiB),
      snapshotIdleTimeoutMs: positiveInt(options.snapshotIdleTimeoutMs, 'snapshotIdleTimeoutMs', 10_000),
      reconnectBackoff: {
        initialMs: positiveInt(options.reconnectBackoff?.initialMs, 'reconnectBackoff.initialMs', 20),
        maxMs: positiveInt(options.reconnectBackoff?.maxMs, 'reconnectBackoff.maxMs', 100),
      },
      unreachableThrottleMs: nonNegativeInt(options.unreachableThrottleMs, 'unreachableThrottleMs', 1000),
      keepaliveTimeMs: positiveInt(options.keepaliveTimeMs, 'keepaliveTimeMs', 2000),
      keepaliveTimeoutMs: positiveInt(options.keepaliveTimeoutMs, 'keepaliveTimeoutMs', 1000),
      streamOpenTimeoutMs: positiveInt(options.streamOpenTimeoutMs, 'streamOpenTimeoutMs', 3000),
      shutdownGraceMs: nonNegativeInt(options.shutdownGraceMs, 'shutdownGraceMs', 200),
    };
    if (this.o.maxBatchBytes >= this.o.maxReceiveMessageBytes) {
      throw new TransportConfigError('maxBatchBytes', options.maxBatchBytes, 'must be smaller than maxReceiveMessageBytes (peers would refuse the batches)');
    }
    if (this.o.snapshotChunkBytes >= this.o.maxReceiveMessageBytes) {
      throw new TransportConfigError('snapshotChunkBytes', options.snapshotChunkBytes, 'must be smaller than maxReceiveMessageBytes');
    }
    if (!Array.isArray(options.peers)) throw new TransportConfigError('peers', options.peers, 'expected an array of {id, raftAddress}');
    const seen = new Set<NodeId>();
    for (const [id, address] of Object.entries(options.dialOverrides ?? {})) parseHostPort(address, `dialOverrides.${id}`, false);
    options.peers.forEach((p, i) => {
      validatePeer(p, `peers[${i}]`);
      if (seen.has(p.id)) throw new TransportConfigError(`peers[${i}].id`, p.id, 'duplicate peer id');
      seen.add(p.id);
    });
    this.logger = options.logger ?? silentLogger;
    this.throttle = new LogThrottle(this.logger, 30_000);
    this.random = options.random ?? Math.random;
    this.service = raftServiceDefinition();
    this.channelOptions = {
      'grpc.keepalive_time_ms': this.o.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.o.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': this.o.reconnectBackoff.initialMs,
      'grpc.max_reconnect_backoff_ms': this.o.reconnectBackoff.maxMs,
      // Each transport owns its connections: a restarted peer or a closed transport in the same
      // process (tests, embedded clusters) must not share a subchannel with another transport.
      'grpc.use_local_subchannel_pool': 1,
      // Raft retransmits by itself; grpc's retry layer would only buffer stream messages.
      'grpc.enable_retries': 0,
      'grpc.max_send_message_length': -1,
    };
    for (const p of options.peers) if (p.id !== this.selfId) this.createPeer(p);
  }

  start(): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError(this.selfId));
    this.starting ??= this.bind();
    return this.starting;
  }

  /** The bound "host:port" (with the real port when listenAddress used port 0). Valid after start(). */
  address(): string {
    if (this.boundPort === null) {
      throw new Error(`transport of node ${this.selfId} is not listening yet; await start() before address()`);
    }
    return formatHostPort({ host: this.listen.host, port: this.boundPort });
  }

  send(messages: Message[]): void {
    if (this.closing) return;
    for (const m of messages) {
      try {
        const peer = m.to === this.selfId ? undefined : this.peers.get(m.to);
        if (!peer) {
          this.droppedUnknownPeer++;
          this.throttle.warn(`unknown-peer:${m.to}`, { to: m.to, type: m.type }, 'dropping raft message to a node that is not a known peer');
          continue;
        }
        peer.enqueue(m);
      } catch (err) {
        // send() must never throw into the Ready loop; a bug here costs a message, not the node.
        this.logger.error({ to: m?.to, err: (err as Error).message }, 'unexpected error while queueing a raft message');
      }
    }
  }

  onMessage(handler: (message: Message) => void): void {
    this.messageHandler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  /** Where snapshot files live (set by the runtime once the data dir is open). */
  setSnapshotFiles(files: SnapshotFiles): void {
    this.snapshotFiles = files;
  }

  onSnapshotStatus(handler: (event: SnapshotStatusEvent) => void): void {
    this.snapshotHandler = handler;
  }

  setAdmission(admission: InboundAdmission): void {
    this.admission = admission;
  }

  addPeer(peer: PeerAddress): void {
    validatePeer(peer, 'peer');
    if (peer.id === this.selfId || this.closing) return;
    const existing = this.peers.get(peer.id);
    if (existing?.address === this.dialAddress(peer)) return;
    if (existing) {
      this.logger.info({ peer: peer.id, from: existing.address, to: this.dialAddress(peer) }, 'raft peer address changed');
      existing.close();
    } else {
      this.logger.info({ peer: peer.id, address: peer.raftAddress }, 'raft peer added');
    }
    this.createPeer(peer);
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.close();
    this.peers.delete(id);
    this.lastUnreachable.delete(id);
    this.logger.info({ peer: id }, 'raft peer removed');
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, p] of this.peers) peers[id] = p.stats();
    return { peers, inbound: { ...this.inboundStats }, droppedUnknownPeer: this.droppedUnknownPeer };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private dialAddress(p: PeerAddress): string {
    return this.options.dialOverrides?.[p.id] ?? p.raftAddress;
  }

  private createPeer(p: PeerAddress): void {
    const id = p.id;
    const hook = this.options.testHooks?.corruptSnapshotChunk;
    this.peers.set(
      id,
      new OutboundPeer({
        id,
        address: this.dialAddress(p),
        selfId: this.selfId,
        clusterName: this.clusterName,
        service: this.service,
        channelOptions: this.channelOptions,
        credentials: this.peerCredentials(id),
        queueLimits: { maxMessages: this.o.maxQueueMessages, maxBytes: this.o.maxQueueBytes },
        maxBatchBytes: this.o.maxBatchBytes,
        snapshotChunkBytes: this.o.snapshotChunkBytes,
        openTimeoutMs: this.o.streamOpenTimeoutMs,
        ...(this.options.observer ? { observer: this.options.observer } : {}),
        backoff: this.o.reconnectBackoff,
        random: this.random,
        logger: this.logger,
        throttle: this.throttle,
        onUnreachable: () => this.reportUnreachable(id),
        onSnapshotStatus: (ok) => this.emit('snapshot status', () => this.snapshotHandler?.({ to: id, ok })),
        corruptSnapshotChunk: hook ? (chunkIndex) => hook(id, chunkIndex) : undefined,
        snapshotFiles: () => this.snapshotFiles,
        snapshotPieceDelayMs: this.options.testHooks?.snapshotPieceDelayMs,
      }),
    );
  }

  /**
   * Plaintext, or mutual TLS where the node reached must hold `peer`'s certificate: its member id,
   * not its host name, is what is verified (peer addresses are often bare IPs).
   */
  private peerCredentials(peer: NodeId): ChannelCredentials {
    const tls = this.options.tls;
    if (!tls) return credentials.createInsecure();
    return credentials.createSsl(tls.ca, tls.key, tls.cert, {
      checkServerIdentity: (_host, cert) => {
        const id = memberIdOf(cert);
        return id === peer ? undefined : new Error(`the node at this address holds ${id ? `member ${id}'s` : 'a non-member'} certificate, not ${peer}'s`);
      },
    });
  }

  private reportUnreachable(peer: NodeId): void {
    const now = Date.now();
    const last = this.lastUnreachable.get(peer);
    if (last !== undefined && now - last < this.o.unreachableThrottleMs) return;
    this.lastUnreachable.set(peer, now);
    this.emit('unreachable', () => this.unreachableHandler?.(peer));
  }

  /**
   * Run a handler outside the caller's stack (send() may be called from inside the Ready loop, and
   * the handler calls back into Raft) and make sure its exceptions cannot take the node down.
   */
  private emit(what: string, fn: () => void): void {
    queueMicrotask(() => {
      if (this.closing) return;
      try {
        fn();
      } catch (err) {
        this.logger.error({ err: (err as Error).message, handler: what }, 'raft transport handler threw');
      }
    });
  }

  private deliver(message: Message): void {
    if (this.closing || !this.messageHandler) return;
    try {
      this.messageHandler(message);
    } catch (err) {
      this.throttle.warn('handler-threw', { from: message.from, type: message.type, err: (err as Error).message }, 'raft message handler threw');
    }
  }

  private async bind(): Promise<void> {
    const server = new Server({
      'grpc.keepalive_time_ms': this.o.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.o.keepaliveTimeoutMs,
      'grpc.max_receive_message_length': this.o.maxReceiveMessageBytes,
    });
    server.addService(
      this.service,
      createInboundService(
        {
          selfId: this.selfId,
          clusterName: this.clusterName,
          maxSnapshotBytes: this.o.maxSnapshotBytes,
          maxSnapshotFileBytes: this.o.maxSnapshotFileBytes,
          maxIncomingSnapshotBytes: this.o.maxIncomingSnapshotBytes,
          snapshotIdleTimeoutMs: this.o.snapshotIdleTimeoutMs,
          maxBatchMessages: this.o.maxBatchMessages,
          mutualTls: this.options.tls !== undefined,
          admission: () => this.admission,
          logger: this.logger,
          throttle: this.throttle,
          stats: this.inboundStats,
          ...(this.options.observer ? { observer: this.options.observer } : {}),
          deliver: (m) => this.deliver(m),
          snapshotFiles: () => this.snapshotFiles,
        },
        this.inboundStreams,
      ),
    );
    const port = await new Promise<number>((resolve, reject) => {
      const tls = this.options.tls;
      // Mutual TLS: a peer without a certificate of the cluster CA cannot even connect.
      const serverCredentials = tls
        ? ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true)
        : ServerCredentials.createInsecure();
      server.bindAsync(formatHostPort(this.listen), serverCredentials, (err, boundPort) => {
        if (err) reject(new Error(`node ${this.selfId} cannot listen on ${this.options.listenAddress}: ${err.message}`));
        else resolve(boundPort);
      });
    });
    this.server = server;
    this.boundPort = port;
    if (this.closing) {
      server.forceShutdown();
      throw new TransportClosedError(this.selfId);
    }
    this.logger.info({ address: this.address() }, 'raft transport listening');
  }

  private async shutdown(): Promise<void> {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    try {
      await this.starting;
    } catch {
      // a failed start leaves nothing to shut down
    }
    const server = this.server;
    this.server = null;
    if (!server) return;
    // Long-lived inbound streams would otherwise hold tryShutdown for the whole grace period.
    for (const s of [...this.inboundStreams]) s.end(`node ${this.selfId} is shutting down`);
    await new Promise<void>((resolve) => {
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        server.forceShutdown();
        settle();
      }, this.o.shutdownGraceMs);
      server.tryShutdown(settle);
    });
  }
}

function nonEmpty(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TransportConfigError(field, value, 'expected a non-empty string');
  return value;
}

function positiveInt(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new TransportConfigError(field, value, 'expected a positive integer');
  return value;
}

function nonNegativeInt(value: number | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new TransportConfigError(field, value, 'expected a non-negative integer');
  return value;
}

function validatePeer(p: unknown, field: string): asserts p is PeerAddress {
  if (typeof p !== 'object' || p === null) throw new TransportConfigError(field, p, 'expected {id, raftAddress}');
  const { id, raftAddress } = p as Partial<PeerAddress>;
  nonEmpty(id, `${field}.id`);
  parseHostPort(raftAddress, `${field}.raftAddress`, false);
}
