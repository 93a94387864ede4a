// The simulated network: one SimTransport per node incarnation (the runtime's Transport interface),
// all routed through one SimNetwork under the simulator's control. Every fault is drawn from the
// run's PRNG: loss, duplication, delay (and with it reordering), partitions (symmetric, one-way,
// one link, an isolated leader). Deliveries are scheduler events, handed to whichever incarnation
// of the receiver runs at delivery time (none: the message is lost; frozen: it waits in the
// socket until the process resumes).
import type { Message, NodeId } from '../../src/raft/types.js';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.js';
import { crc32 } from 'node:zlib';
import type { PeerAddress, SnapshotFiles, SnapshotStatusEvent, Transport } from '../../src/transport/transport.js';
import type { Prng } from './prng.js';
import type { SimProcess, SimScheduler } from './sim-clock.js';
import type { Trace } from './trace.js';

/** Pieces of a snapshot file on a simulated link. */
const SIM_PIECE_BYTES = 4096;

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
  ) {
    // Its own stream (fork does not advance the parent): damaging snapshot pieces does not shift
    // the drops, delays and duplicates every other message draws.
    this.pieceRng = rng.fork('snapshot-pieces');
  }

  private readonly pieceRng: Prng;

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
        const files = from.snapshotFiles;
        if (received.type === 'snap' && received.snapshot && files?.describe(received.snapshot.data)) {
          this.copySnapshotFile(from, target.transport, received, first);
          return;
        }
        this.handOver(from, target.transport, m, received, first);
      },
      `net:${m.from}`,
    );
  }

  /**
   * A snapshot file crosses the link the way InstallSnapshot carries it: read from the sender's
   * file in pieces, each checked against its CRC-32 on arrival and appended to a new file of the
   * receiver, which is checked whole (size, CRC-32) and committed before the message is delivered
   * with the receiver's own reference. A piece damaged on the way (drawn from the run's PRNG) makes
   * the receiver drop its partial file and the sender hear of a failed transfer.
   */
  private copySnapshotFile(from: SimTransport, to: SimTransport, m: Message, first: boolean): void {
    const source = from.snapshotFiles!;
    const sink = to.snapshotFiles;
    const file = source.describe(m.snapshot!.data)!;
    const damageAt = this.pieceRng.chance(this.profile.dropRate) ? this.pieceRng.int(Math.max(1, Math.ceil(file.bytes / SIM_PIECE_BYTES))) : -1;
    const fail = (why: string) => {
      this.trace.message(this.tickOf(), m, 'LOST ', ` (snapshot file: ${why})`);
      if (first) this.reportLoss(from, m);
    };
    if (!sink) {
      fail('the receiver keeps no snapshot files');
      return;
    }
    void (async () => {
      // The sender may have dropped this file for a newer snapshot since: a failed transfer, as
      // the gRPC sender reports it (the core then sends the newer one).
      const reader = await source.openReader(m.snapshot!.data).catch((err: Error) => fail(`the sender cannot read it: ${err.message}`));
      if (!reader) return;
      const writer = await sink.createWriter({ bytes: file.bytes, crc32: file.crc32 });
      try {
        for (let offset = 0, piece = 0; offset < file.bytes; piece++) {
          let data = await reader.read(offset, SIM_PIECE_BYTES);
          const sum = crc32(data);
          if (piece === damageAt) {
            data = Uint8Array.from(data);
            data[0] = data[0]! ^ 0xff;
          }
          if (crc32(data) !== sum) {
            await writer.abort();
            return fail(`piece ${piece} fails its CRC-32, partial file dropped`);
          }
          await writer.append(data);
          offset += data.length;
        }
        if (writer.bytes !== file.bytes || writer.checksum !== file.crc32) {
          await writer.abort();
          return fail('whole-file size or CRC-32 mismatch');
        }
        const data = await writer.commit(m.snapshot!.meta.index, m.snapshot!.meta.term);
        this.handOver(from, to, m, { ...m, snapshot: { meta: m.snapshot!.meta, data } }, first);
      } catch (err) {
        // An injected disk error on the receiver: the transfer fails, nothing is installed.
        await writer.abort();
        fail(`the receiver cannot write it: ${(err as Error).message}`);
      } finally {
        await reader.close();
      }
    })();
  }

  private handOver(from: SimTransport, target: SimTransport, m: Message, received: Message, first: boolean): void {
    if (!target.receive(received)) {
      this.trace.message(this.tickOf(), m, 'LOST ', ' (not listening)');
      if (first) this.reportLoss(from, m);
      return;
    }
    this.trace.message(this.tickOf(), m);
    if (m.type === 'snap' && first) {
      this.snapshotsDelivered++;
      this.report(from, m.to, 'snapOk');
    }
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
  /** Set by the runtime when this node keeps snapshot files (file-backed profiles). */
  snapshotFiles: SnapshotFiles | undefined;
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

  setSnapshotFiles(files: SnapshotFiles): void {
    this.snapshotFiles = files;
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
