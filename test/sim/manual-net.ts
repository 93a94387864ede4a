// A tiny deterministic harness for focused core tests: no randomness, no clock, messages are routed
// only when the test says so. Every node's randomized election timeout is exactly electionTicks.

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RawNode } from '../../src/raft/raw-node.js';
import type { Entry, Message, NodeId, RaftConfig, ReadState } from '../../src/raft/types.js';

export interface ManualNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Entries handed out for apply, in order. */
  applied: Entry[];
  readStates: ReadState[];
}

export interface ManualNetOptions {
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

export class ManualNet {
  readonly nodes = new Map<NodeId, ManualNode>();
  /** Sent and not yet delivered (or dropped). */
  outbox: Message[] = [];
  /** Every message delivered so far, in order. */
  readonly delivered: Message[] = [];
  private readonly cuts = new Set<string>();
  readonly electionTicks: number;
  readonly heartbeatTicks: number;

  constructor(
    voters: NodeId[],
    private readonly opts: ManualNetOptions = {},
  ) {
    this.electionTicks = opts.electionTicks ?? 10;
    this.heartbeatTicks = opts.heartbeatTicks ?? 1;
    for (const id of voters) this.add(id, new MemoryStorage({ voters: [...voters], learners: [] }));
  }

  /** Start a node over `storage` (default: a fresh joiner with no membership). */
  add(id: NodeId, storage = new MemoryStorage(), applied = 0): ManualNode {
    const config: RaftConfig = {
      id,
      electionTicks: this.electionTicks,
      heartbeatTicks: this.heartbeatTicks,
      random: () => 0,
      applied,
    };
    if (this.opts.preVote !== undefined) config.preVote = this.opts.preVote;
    if (this.opts.checkQuorum !== undefined) config.checkQuorum = this.opts.checkQuorum;
    const node: ManualNode = { id, raw: new RawNode(config, storage), storage, applied: [], readStates: [] };
    this.nodes.set(id, node);
    return node;
  }

  /** Restart `id` from its storage, losing its volatile state (and whatever it had not sent). */
  restart(id: NodeId): ManualNode {
    const old = this.get(id);
    this.outbox = this.outbox.filter((m) => m.to !== id);
    const node = this.add(id, old.storage, old.applied.length ? old.applied[old.applied.length - 1]!.index : 0);
    node.applied = old.applied;
    return node;
  }

  get(id: NodeId): ManualNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  heal(): void {
    this.cuts.clear();
  }

  /** Drain every pending Ready of `id` (or of all nodes): persist, queue messages, apply, advance. */
  flush(id?: NodeId): void {
    const ids = id ? [id] : [...this.nodes.keys()];
    for (const nid of ids) {
      const node = this.get(nid);
      while (node.raw.hasReady()) {
        const rd = node.raw.ready();
        if (rd.snapshot) node.storage.applySnapshot(rd.snapshot);
        node.storage.append(rd.entries);
        if (rd.hardState) node.storage.setHardState(rd.hardState);
        this.outbox.push(...rd.messages);
        node.applied.push(...rd.committedEntries);
        node.readStates.push(...rd.readStates);
        node.raw.advance(rd);
      }
    }
  }

  /**
   * Deliver the messages queued so far (not the ones they provoke) that `filter` accepts; messages
   * over a cut link are dropped, rejected ones stay queued. Returns how many were delivered.
   */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const batch = this.outbox;
    this.outbox = [];
    let count = 0;
    for (const m of batch) {
      if (!filter(m)) {
        this.outbox.push(m);
        continue;
      }
      if (this.cuts.has(`${m.from}>${m.to}`) || !this.nodes.has(m.to)) continue;
      this.delivered.push(m);
      this.get(m.to).raw.step(m);
      if (m.type === 'snap') this.nodes.get(m.from)?.raw.reportSnapshot(m.to, true);
      count++;
    }
    return count;
  }

  /** Drop queued messages that `filter` selects (all by default). */
  drop(filter: (m: Message) => boolean = () => true): Message[] {
    const dropped = this.outbox.filter(filter);
    this.outbox = this.outbox.filter((m) => !filter(m));
    return dropped;
  }

  /** Flush and deliver until no message is left (bounded). */
  stabilize(maxRounds = 100): void {
    for (let i = 0; i < maxRounds; i++) {
      this.flush();
      if (this.outbox.length === 0) return;
      this.deliver();
    }
    throw new Error(`network did not settle in ${maxRounds} rounds`);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).raw.tick();
    this.flush(id);
  }

  /** Tick every node once (heartbeats, timeouts) and flush. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const node of this.nodes.values()) node.raw.tick();
    this.flush();
  }

  /** Let `id` time out and run its election to completion. */
  elect(id: NodeId): void {
    this.tick(id, this.electionTicks);
    this.stabilize();
  }

  propose(id: NodeId, value: string): { term: number; index: number } {
    const receipt = this.get(id).raw.propose(encoder.encode(value));
    this.flush(id);
    return receipt;
  }

  /** The durable log of `id` as 'term:payload' strings from firstIndex. */
  log(id: NodeId): string[] {
    const s = this.get(id).storage;
    if (s.lastIndex() < s.firstIndex()) return [];
    return s.entries(s.firstIndex(), s.lastIndex() + 1).map((e) => `${e.term}:${e.type === 'conf' ? 'conf' : text(e.data)}`);
  }

  appliedValues(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === 'normal' && e.data.length > 0)
      .map((e) => text(e.data));
  }

  role(id: NodeId): string {
    return this.get(id).raw.status().role;
  }

  term(id: NodeId): number {
    return this.get(id).raw.status().term;
  }
}
