// The in-memory twin of GrpcTransport, for runtime tests without sockets. A MemoryNetwork hub
// connects MemoryTransports by node id. Delivery is asynchronous (setImmediate, FIFO per sender)
// like a real network; every message is round-tripped through the wire codec so that nodes never
// share objects and anything the gRPC transport could not carry fails here too.
import type { Message, NodeId } from '../raft/types.js';
import { decodeMessages, encodeMessages } from './codec.js';
import type { PeerAddress, SnapshotStatusEvent, Transport } from './transport.js';

export interface MemoryNetworkStats {
  delivered: number;
  /** Lost to partitions, stopped/unknown receivers, or receivers without a handler. */
  dropped: number;
}

export interface MemoryTransportOptions {
  /**
   * Peers this node may send to. Omitted: any node on the network (addPeer is then a no-op, but
   * removePeer still blocks that node). Given: only these plus those added with addPeer.
   */
  peers?: NodeId[];
}

export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, MemoryTransport>();
  /** Directed cuts "from->to": messages on that link are lost. */
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<NodeId>();
  private readonly counters: MemoryNetworkStats = { delivered: 0, dropped: 0 };

  /**
   * The transport of node `id`. Calling it again after the previous one was closed models a
   * restart: the new transport takes over the id. Two live transports for one id is a test bug.
   */
  transport(id: NodeId, options: MemoryTransportOptions = {}): MemoryTransport {
    if (typeof id !== 'string' || id.length === 0) throw new Error('MemoryNetwork.transport needs a non-empty node id');
    const current = this.nodes.get(id);
    if (current && !current.isClosed) {
      throw new Error(`node ${id} already has an open transport on this network; close it before creating another`);
    }
    const t = new MemoryTransport(this, id, options);
    this.nodes.set(id, t);
    return t;
  }

  /** Cut both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.cuts.add(link(a, b));
    this.cuts.add(link(b, a));
  }

  /** Cut only from -> to (asymmetric partition). */
  partitionOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(link(from, to));
  }

  /** Cut `id` from every other node, including ones created later. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Remove every partition and isolation. */
  heal(): void {
    this.cuts.clear();
    this.isolated.clear();
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.isolated.has(from) && !this.isolated.has(to) && !this.cuts.has(link(from, to));
  }

  stats(): MemoryNetworkStats {
    return { ...this.counters };
  }

  /** @internal called by MemoryTransport.send with already-encoded messages. */
  route(from: MemoryTransport, batch: { to: NodeId; bytes: Uint8Array; snap: boolean }[]): void {
    setImmediate(() => {
      for (const item of batch) {
        const target = this.nodes.get(item.to);
        const ok = target !== undefined && this.canReach(from.id, item.to) && target.receive(item.bytes);
        if (ok) this.counters.delivered++;
        else this.counters.dropped++;
        if (item.snap) from.snapshotDone(item.to, ok);
        if (!ok) from.unreachable(item.to);
      }
    });
  }
}

export class MemoryTransport implements Transport {
  private started = false;
  private closed = false;
  private readonly explicitPeers: Set<NodeId> | null;
  private readonly removed = new Set<NodeId>();
  private messageHandler: ((m: Message) => void) | null = null;
  private unreachableHandler: ((peer: NodeId) => void) | null = null;
  private snapshotHandler: ((e: SnapshotStatusEvent) => void) | null = null;

  /** Use MemoryNetwork.transport(id). */
  constructor(
    private readonly network: MemoryNetwork,
    readonly id: NodeId,
    options: MemoryTransportOptions,
  ) {
    this.explicitPeers = options.peers ? new Set(options.peers) : null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error(`memory transport of node ${this.id} is closed; create a new one from the network`);
    this.started = true;
  }

  /** Mirrors GrpcTransport.address() so runtime code can log it. */
  address(): string {
    return `memory:${this.id}`;
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    const batch: { to: NodeId; bytes: Uint8Array; snap: boolean }[] = [];
    for (const m of messages) {
      if (m.to === this.id || !this.mayReach(m.to)) {
        if (m.type === 'snap') this.snapshotDone(m.to, false);
        continue;
      }
      // Encoding at send time is the copy a socket would make: later mutation by the sender is not seen.
      batch.push({ to: m.to, bytes: encodeMessages([m]), snap: m.type === 'snap' });
    }
    if (batch.length > 0) this.network.route(this, batch);
  }

  onMessage(handler: (message: Message) => void): void {
    this.messageHandler = handler;
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  onSnapshotStatus(handler: (event: SnapshotStatusEvent) => void): void {
    this.snapshotHandler = handler;
  }

  addPeer(peer: PeerAddress): void {
    this.removed.delete(peer.id);
    this.explicitPeers?.add(peer.id);
  }

  removePeer(id: NodeId): void {
    this.removed.add(id);
    this.explicitPeers?.delete(id);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** @internal true when the message was handed to this node's handler. */
  receive(bytes: Uint8Array): boolean {
    if (!this.started || this.closed || !this.messageHandler) return false;
    let m: Message;
    try {
      m = decodeMessages(bytes)[0]!;
    } catch {
      return false; // unreachable in practice: the bytes came from encodeMessages
    }
    guarded(() => this.messageHandler!(m));
    return true;
  }

  /** @internal */
  snapshotDone(to: NodeId, ok: boolean): void {
    if (this.closed || !this.snapshotHandler) return;
    const handler = this.snapshotHandler;
    queueMicrotask(() => guarded(() => handler({ to, ok })));
  }

  /** @internal */
  unreachable(peer: NodeId): void {
    if (this.closed || !this.unreachableHandler) return;
    const handler = this.unreachableHandler;
    guarded(() => handler(peer));
  }

  private mayReach(to: NodeId): boolean {
    if (this.removed.has(to)) return false;
    return this.explicitPeers === null || this.explicitPeers.has(to);
  }
}

/** Like the gRPC server: a throwing handler must not break delivery to other nodes. */
function guarded(fn: () => void): void {
  try {
    fn();
  } catch {
    // swallowed on purpose; the node's own tests see the effect of its handler
  }
}

function link(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}
