// Shared setup for the RaftNode unit tests: N nodes wired through a MemoryNetwork, each with an
// in-memory durable log and state machine, short raft timings, and bounded polling helpers.
import type { ExecutionContext } from 'ava';
import type { Command } from '../../src/api/command.js';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import { MemoryRaftStorage } from '../../src/storage/memory-raft-storage.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import type { Clock } from '../../src/runtime/clock.js';
import type { NodeMetrics } from '../../src/runtime/metrics.js';
import { RaftNode } from '../../src/runtime/raft-node.js';

/** A counter the tests can read back. */
export class TestCounter {
  private value = 0;
  inc(by = 1): void {
    this.value += by;
  }
  get(): number {
    return this.value;
  }
}

/** NodeMetrics whose counters count (histograms are dropped), so tests can see what the runtime reported. */
export type CountingMetrics = { [K in keyof NodeMetrics]: TestCounter & { observe(v: number): void } };

function countingMetrics(): CountingMetrics {
  const c = () => Object.assign(new TestCounter(), { observe: () => {} });
  return {
    fsyncSeconds: c(),
    proposals: c(),
    proposalsFailed: c(),
    readIndexRounds: c(),
    readIndexFailures: c(),
    snapshots: c(),
    snapshotSaveSeconds: c(),
    snapshotSaveBytes: c(),
    snapshotsInstalled: c(),
    snapshotInstallSeconds: c(),
    snapshotInstallBytes: c(),
    leaderChanges: c(),
    appliedEntries: c(),
    applySeconds: c(),
  };
}

/** The counting metrics a harness node reports to. */
export function metricsOf(node: RaftNode): CountingMetrics {
  return node.metrics as CountingMetrics;
}

export interface TestCluster {
  network: MemoryNetwork;
  nodes: Map<string, RaftNode>;
  storages: Map<string, MemoryRaftStorage>;
  /** Start one more node that is not in the bootstrap configuration (it must be added with addMember). */
  addJoiner(id: string): Promise<RaftNode>;
  node(id: string): RaftNode;
  leader(): Promise<RaftNode>;
  stopAll(): Promise<void>;
}

// Generous: three nodes share one event loop with other test files on two cores, and a late timer
// must not look like a dead leader.
export const TIMINGS = { tickMs: 10, electionTicks: 50, heartbeatTicks: 5 };

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
  options: {
    size?: number;
    snapshotEntries?: number;
    snapshotBytes?: number;
    retainEntries?: number;
    preferredLeader?: string;
    failbackHoldMs?: number;
    /** The runtime clock of each node (default: the system clock). */
    clock?: (id: string) => Clock;
  } = {},
): Promise<TestCluster> {
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const network = new MemoryNetwork();
  const members = ids.map((id) => ({ id, raftAddress: `memory:${id}`, clientAddress: `client-${id}:1` }));
  const nodes = new Map<string, RaftNode>();
  const storages = new Map<string, MemoryRaftStorage>();
  const create = async (id: string, voters: string[]) => {
    const storage = new MemoryRaftStorage({ bootstrap: { voters, learners: [] } });
    const node = await RaftNode.create({
      id,
      members,
      raft: { ...TIMINGS, snapshotEntries: options.snapshotEntries ?? 0, snapshotBytes: options.snapshotBytes ?? 0, retainEntries: options.retainEntries },
      storage,
      stateMachine: new MemoryStateMachine(),
      transport: network.transport(id),
      drainTimeoutMs: 200,
      metrics: countingMetrics(),
      preferredLeader: options.preferredLeader,
      failbackHoldMs: options.failbackHoldMs,
      clock: options.clock?.(id),
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
      eventually(
        async () => {
          for (const n of nodes.values()) {
            const s = await n.status().catch(() => undefined);
            if (s?.role === 'leader') return n;
          }
          return undefined;
        },
        5000,
        'a leader',
      ),
    stopAll: async () => {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
    },
  };
  t.teardown(() => cluster.stopAll());
  return cluster;
}
