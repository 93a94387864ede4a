// The simulated network: one SimTransport per node incarnation (the runtime's Transport interface),
// all routed through one SimNetwork under the simulator's control. Every fault is drawn from the
// run's PRNG: loss, duplication, delay (and with it reordering), partitions (symmetric, one-way,
// one link, an isolated leader). Deliveries are scheduler events, handed to whichever incarnation
// of the receiver runs at delivery time (none: the message is lost; frozen: it waits in the
// socket until the process resumes).
import type { Message, NodeId } from '../../src/raft/types.js';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.js';
import type { PeerAddress, SnapshotStatusEvent, Transport } from '../../src/transport/transport.js';
import type { Prng } from './prng.js';
import type { SimProcess, SimScheduler } from './sim-clock.js';
import type { Trace } from './trace.js';

export interface NetworkProfile {
  dropRate: number;
  dupRate: number;
  /** Extra delay: each message takes 1 ms .. (1 + maxDelay) ticks. */
  maxDelay: number;
  /** Off: each link delivers in send order (a stream). On: any order. */
  reorder: boolean;
  /** Round-trip every message through the wire codec (what gRPC carries), not just a frozen copy. */
  wireCodec: boolean;
}

interface Endpoint {
  transport: SimTransport;
  proc: SimProcess;
}

export class SimNetwork {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** Directed links "from>to" that lose everything. */
  blocked = new Set<string>();
  /** Per link: the latest delivery time scheduled (keeps links FIFO when reorder is off). */
  private readonly linkTail = new Map<string, number>();
  messages = 0;
  snapshotsDelivered = 0;
  /** Seen on the wire: a message only a leader sends (leadership observed from outside). */
  onLeaderMessage: ((m: Message) => void) | undefined;

  constructor(
    private readonly sched: SimScheduler,
    private readonly rng: Prng,
    readonly profile: NetworkProfile,
    private readonly trace: Trace,
    private readonly tickMs: number,
    private readonly tickOf: () => number,
  ) {}

  /** The transport of `id`'s incarnation running as `proc` (replacing any earlier one). */
  attach(id: NodeId, proc: SimProcess, hooks: TransportHooks): SimTransport {
    const transport = new SimTransport(this, id, proc, hooks);
    this.endpoints.set(id, { transport, proc });
    return transport;
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  /** @internal SimTransport.send, after its own checks. */
  route(from: SimTransport, m: Message): void {
    this.messages++;
    if (LEADER_ONLY.has(m.type)) this.onLeaderMessage?.(m);
    const p = this.profile;
    const wire = p.wireCodec ? encodeMessages([m]) : undefined;
    if (!wire) freeze(m);
    if (this.isBlocked(m.from, m.to) || this.rng.chance(p.dropRate)) {
      this.trace.message(this.tickOf(), m, 'DROP ');
      this.reportLoss(from, m);
      return;
    }
    const copies = this.rng.chance(p.dupRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const link = `${m.from}>${m.to}`;
      let at = this.sched.now + 1 + this.rng.int(Math.max(1, (p.maxDelay + 1) * this.tickMs));
      if (!p.reorder) {
        at = Math.max(at, this.linkTail.get(link) ?? 0);
        this.linkTail.set(link, at);
      }
      const first = c === 0;
      this.sched.at(at, 'sim', undefined, () => this.deliver(from, m, wire, first));
    }
  }

  private deliver(from: SimTransport, m: Message, wire: Uint8Array | undefined, first: boolean): void {
    const target = this.endpoints.get(m.to);
    const tick = this.tickOf();
    if (!target?.proc.alive || this.isBlocked(m.from, m.to)) {
      this.trace.message(tick, m, 'LOST ', target?.proc.alive ? ' (partition)' : ' (target down)');
      if (first) this.reportLoss(from, m);
      return;
    }
    // Handed to the receiving process as I/O: parked while it is frozen.
    this.sched.at(
      this.sched.now,
      'io',
      target.proc,
      () => {
        const received = wire ? decodeMessages(wire)[0]! : m;
        if (!target.transport.receive(received)) {
          this.trace.message(this.tickOf(), m, 'LOST ', ' (not listening)');
          if (first) this.reportLoss(from, m);
          return;
        }
        this.trace.message(this.tickOf(), m);
        if (m.type === 'snap' && first) {
          this.snapshotsDelivered++;
          this.report(from, m.to, 'snapOk');
        }
      },
      `net:${m.from}`,
    );
  }

  /** @internal Runs `fn` on `proc` soon (as I/O: parked while it is frozen). */
  later(proc: SimProcess, fn: () => void): void {
    this.sched.at(this.sched.now, 'io', proc, fn);
  }

  /** The sender's transport notices a loss a little later (a stream error, a failed snapshot). */
  private reportLoss(from: SimTransport, m: Message): void {
    if (m.type === 'snap') this.report(from, m.to, 'snapFail');
    else if (m.type === 'app' && this.rng.chance(0.3)) this.report(from, m.to, 'unreachable');
  }

  private report(from: SimTransport, peer: NodeId, what: 'snapOk' | 'snapFail' | 'unreachable'): void {
    this.sched.at(this.sched.now + this.tickMs, 'io', from.proc, () => {
      this.trace.event(this.tickOf(), `${from.id} report ${what} ${peer}`);
      if (what === 'unreachable') from.unreachable(peer);
      else from.snapshotDone(peer, what === 'snapOk');
    });
  }
}

/** Messages only a leader sends: seeing one on the wire shows who acts as leader of its term. */
const LEADER_ONLY = new Set<Message['type']>(['app', 'heartbeat', 'snap', 'timeoutNow', 'readIndexResp']);

function freeze(m: Message): void {
  Object.freeze(m);
  Object.freeze(m.entries);
}

/** The simulator's say in what a transport does (crash points inside a send). */
export interface TransportHooks {
  /** How many of `messages` go out before the process dies; messages.length = all, no crash. */
  sendPlan(messages: readonly Message[]): number;
  /** The process dies now (called after the planned prefix went out). */
  crashNow(why: string): void;
}

export class SimTransport implements Transport {
  private messageHandler: ((m: Message) => void) | undefined;
  private unreachableHandler: ((peer: NodeId) => void) | undefined;
  private snapshotHandler: ((e: SnapshotStatusEvent) => void) | undefined;
  private readonly peers = new Set<NodeId>();
  private started = false;
  private closed = false;

  constructor(
    private readonly network: SimNetwork,
    readonly id: NodeId,
    readonly proc: SimProcess,
    private readonly hooks: TransportHooks,
  ) {}

  async start(): Promise<void> {
    this.started = true;
  }

  send(messages: Message[]): void {
    if (!this.proc.alive || this.closed) return;
    const count = this.hooks.sendPlan(messages);
    for (let i = 0; i < count && i < messages.length; i++) {
      const m = messages[i]!;
      if (m.to === this.id || !this.peers.has(m.to)) {
        // Not a peer (never added, or removed): what the real transport does, no route.
        if (m.type === 'snap') this.network.later(this.proc, () => this.snapshotDone(m.to, false));
        continue;
      }
      this.network.route(this, m);
    }
    if (count < messages.length) this.hooks.crashNow(`after sending ${count}/${messages.length} messages`);
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
    this.peers.add(peer.id);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** @internal true when the message reached the runtime's handler. */
  receive(m: Message): boolean {
    if (!this.started || this.closed || !this.proc.alive || !this.messageHandler) return false;
    this.messageHandler(m);
    return true;
  }

  /** @internal */
  snapshotDone(to: NodeId, ok: boolean): void {
    if (this.closed || !this.proc.alive || !this.snapshotHandler) return;
    this.snapshotHandler({ to, ok });
  }

  /** @internal */
  unreachable(peer: NodeId): void {
    if (this.closed || !this.proc.alive || !this.unreachableHandler) return;
    this.unreachableHandler(peer);
  }
}
