// Shared setup for the RaftNode unit tests: N nodes wired through a MemoryNetwork, each with an
// in-memory durable log and state machine, short raft timings, and bounded polling helpers.
import type { ExecutionContext } from 'ava';
import { MemoryStorage } from '../../src/raft/memory-storage.ts';
import type { ConfState, Snapshot } from '../../src/raft/types.ts';
import type { Command } from '../../src/storage/command.ts';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.ts';
import type { RaftStorage, StorageUpdate } from '../../src/storage/raft-storage.ts';
import { MemoryNetwork } from '../../src/transport/memory-transport.ts';
import { RaftNode } from '../../src/node/raft-node.ts';

/** RaftStorage over the core's MemoryStorage: "durable" = written here, with an async save like the real one. */
export class TestRaftStorage implements RaftStorage {
  readonly mem: MemoryStorage;
  saves = 0;
  constructor(conf: ConfState) {
    this.mem = new MemoryStorage(conf);
  }
  initialState() {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number) {
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(index: number) {
    return this.mem.term(index);
  }
  firstIndex() {
    return this.mem.firstIndex();
  }
  lastIndex() {
    return this.mem.lastIndex();
  }
  snapshot() {
    return this.mem.snapshot();
  }
  async save(update: StorageUpdate): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    this.saves++;
    if (update.snapshot) this.mem.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.mem.append(update.entries);
    if (update.hardState) this.mem.setHardState(update.hardState);
  }
  async compact(snapshot: Snapshot, retainEntries: number): Promise<void> {
    if (snapshot.meta.index <= this.mem.snapshot().meta.index) return;
    this.mem.createSnapshot(snapshot.meta.index, snapshot.meta.conf, snapshot.data);
    const upto = snapshot.meta.index - retainEntries;
    if (upto > this.mem.firstIndex()) this.mem.compact(upto);
  }
  async close(): Promise<void> {}
}

export interface TestCluster {
  network: MemoryNetwork;
  nodes: Map<string, RaftNode>;
  storages: Map<string, TestRaftStorage>;
  /** Start one more node that is not in the bootstrap configuration (it must be added with addMember). */
  addJoiner(id: string): Promise<RaftNode>;
  node(id: string): RaftNode;
  leader(): Promise<RaftNode>;
  stopAll(): Promise<void>;
}

export const TIMINGS = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2 };

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every 20 ms until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

let seqCounter = 0;
export function putCommand(key: string, value: string, clientId = ''): Command {
  const seq = clientId ? ++seqCounter : 0;
  return {
    clientId,
    seq,
    firstUnacked: seq,
    op: { op: 'put', key: new TextEncoder().encode(key), value: new TextEncoder().encode(value) },
  };
}

export const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
export const bytes = (s: string) => new TextEncoder().encode(s);

export async function startCluster(
  t: ExecutionContext,
  options: { size?: number; snapshotEntries?: number; retainEntries?: number } = {},
): Promise<TestCluster> {
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const network = new MemoryNetwork();
  const members = ids.map((id) => ({ id, raftAddress: `memory:${id}`, clientAddress: `client-${id}:1` }));
  const nodes = new Map<string, RaftNode>();
  const storages = new Map<string, TestRaftStorage>();
  const create = async (id: string, voters: string[]) => {
    const storage = new TestRaftStorage({ voters, learners: [] });
    const node = await RaftNode.create({
      id,
      members,
      raft: { ...TIMINGS, snapshotEntries: options.snapshotEntries ?? 0, retainEntries: options.retainEntries },
      storage,
      stateMachine: new MemoryStateMachine(),
      transport: network.transport(id),
      drainTimeoutMs: 200,
    });
    nodes.set(id, node);
    storages.set(id, storage);
    return node;
  };
  for (const id of ids) await create(id, ids);
  await Promise.all([...nodes.values()].map((n) => n.start()));
  const cluster: TestCluster = {
    network,
    nodes,
    storages,
    addJoiner: async (id) => {
      const node = await create(id, []);
      await node.start();
      return node;
    },
    node: (id) => nodes.get(id)!,
    leader: () =>
      eventually(async () => {
        for (const n of nodes.values()) {
          const s = await n.status().catch(() => undefined);
          if (s?.role === 'leader') return n;
        }
        return undefined;
      }, 5000, 'a leader'),
    stopAll: async () => {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
    },
  };
  t.teardown(() => cluster.stopAll());
  return cluster;
}
