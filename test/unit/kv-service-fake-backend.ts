// A KvBackend over a Map, for testing the client service, the SDK and the CLI without Raft.
// It records every call it receives, dedupes writes by (clientId, seq) like the real state
// machine, and can be told to fail: as a follower (NotLeaderError with a hint), for the next N
// calls with a given error, by hanging until the deadline, or by reporting a lost receipt.
// Membership is a list the add/remove calls edit (self is a voter at clientAddress).
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  AddMemberOptions,
  GetResult,
  KvBackend,
  NodeStatus,
  RangeResult,
  ReadOptions,
  RemoveMemberOptions,
  WaitOutcome,
  WriteAck,
  WriteRequest,
  LeaseStatus,
  WatchSource,
} from '../../src/runtime/kv-backend.js';
import { DeadlineExceededError, InvalidArgumentError, NotLeaderError } from '../../src/api/errors.js';
import { ConfChangeRejectedError } from '../../src/raft/errors.js';
import { startKvServer } from '../../src/server/kv-service.js';
import { SYSTEM_CLOCK } from '../../src/runtime/clock.js';
import { LeaderWaiters } from '../../src/runtime/leader-waiters.js';
import type { KvServer, KvServiceLimits } from '../../src/server/kv-service.js';
import type { CommandResult, KeyValue, Op, OpResult } from '../../src/api/command.js';

export type BackendMethod = 'write' | 'get' | 'scan' | 'waitFor' | 'status' | 'transferLeadership' | 'addMember' | 'removeMember';

export interface FakeMember {
  id: string;
  raftAddress: string;
  clientAddress: string;
  voter: boolean;
}

export interface BackendCall {
  method: BackendMethod;
  write?: WriteRequest;
  key?: Uint8Array;
  range?: { start: Uint8Array; end: Uint8Array; limit: number };
  options?: ReadOptions;
  waitFor?: { term: number; index: number };
  to?: string;
  member?: { id: string; raftAddress?: string; clientAddress?: string; learner?: boolean };
  deadline?: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class FakeKvBackend implements KvBackend {
  readonly calls: BackendCall[] = [];
  readonly data = new Map<string, KeyValue>();
  private readonly sessions = new Map<string, CommandResult>();
  term = 1;
  index = 0;
  clientAddress = '';
  /** When set, leader-only calls fail with NotLeaderError pointing here. */
  follower: { leaderId: string; leaderAddress: string } | undefined;
  /** The next `count` calls (of `methods`, or any) throw `error()`. */
  private failures: { count: number; error: () => Error; methods?: BackendMethod[]; afterApply?: boolean }[] = [];
  /** Calls of these methods wait until their deadline and fail with DeadlineExceededError. */
  hang = new Set<BackendMethod>();
  /** Calls of these methods wait for release() (to hold requests in flight). */
  private gates = new Map<BackendMethod, Promise<void>>();
  private releases: (() => void)[] = [];
  waitOutcome: WaitOutcome = 'committed';
  transferredTo: string | undefined;
  /** Other members (self is always listed first as a voter). */
  readonly members = new Map<string, FakeMember>();
  readonly leaderWaiters = new LeaderWaiters(SYSTEM_CLOCK, 4);

  constructor(readonly id = 'n1') {}

  /** Fail the next `count` calls. afterApply: a write is applied first, then fails (lost response). */
  failNext(count: number, error: () => Error, options: { methods?: BackendMethod[]; afterApply?: boolean } = {}): void {
    this.failures.push({ count, error, ...options });
  }

  gate(method: BackendMethod): void {
    this.gates.set(method, new Promise((resolve) => this.releases.push(resolve)));
  }

  release(): void {
    for (const r of this.releases.splice(0)) r();
    this.gates.clear();
  }

  callsOf(method: BackendMethod): BackendCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  private async enter(call: BackendCall, leaderOnly: boolean): Promise<{ failAfterApply?: Error }> {
    this.calls.push(call);
    const gate = this.gates.get(call.method);
    if (gate) await gate;
    if (this.hang.has(call.method)) {
      await sleep(Math.max(0, (call.deadline ?? Date.now()) - Date.now()));
      throw new DeadlineExceededError(Math.max(0, (call.deadline ?? 0) - Date.now()), call.method);
    }
    const f = this.failures.find((x) => x.count > 0 && (!x.methods || x.methods.includes(call.method)));
    if (f) {
      f.count--;
      if (f.afterApply && call.method === 'write') return { failAfterApply: f.error() };
      throw f.error();
    }
    if (leaderOnly && this.follower) throw new NotLeaderError(this.id, this.follower.leaderId, this.follower.leaderAddress);
    return {};
  }

  async write(request: WriteRequest): Promise<WriteAck> {
    const { failAfterApply } = await this.enter({ method: 'write', write: request, deadline: request.deadline }, true);
    const { command } = request;
    const sessionKey = `${command.clientId}/${command.seq}`;
    const index = ++this.index;
    let result: CommandResult;
    const prior = command.clientId ? this.sessions.get(sessionKey) : undefined;
    if (prior) result = { ...prior, duplicate: true };
    else {
      result = { index, result: this.apply(command.op, index) };
      if (command.clientId) this.sessions.set(sessionKey, result);
    }
    if (failAfterApply) throw failAfterApply;
    return request.durability === 'async' ? { term: this.term, index } : { term: this.term, index, result };
  }

  private apply(op: Op, index: number): OpResult {
    switch (op.op) {
      case 'put': {
        const prev = this.data.get(hex(op.key));
        this.data.set(hex(op.key), {
          key: op.key,
          value: op.value,
          version: (prev?.version ?? 0) + 1,
          createIndex: prev?.createIndex ?? index,
          modIndex: index,
        });
        return { op: 'put', prevExisted: prev !== undefined };
      }
      case 'delete':
        return { op: 'delete', deleted: this.data.delete(hex(op.key)) ? 1 : 0 };
      case 'deleteRange': {
        let deleted = 0;
        for (const kv of this.sorted(op.start, op.end)) deleted += this.data.delete(hex(kv.key)) ? 1 : 0;
        return { op: 'deleteRange', deleted };
      }
      case 'txn': {
        const ok = op.compares.every((c) => {
          const kv = this.data.get(hex(c.key));
          if (c.target === 'value') {
            const eq = kv !== undefined && Buffer.compare(kv.value, c.value ?? new Uint8Array()) === 0;
            return c.result === 'eq' ? eq : !eq;
          }
          const n = c.target === 'version' ? (kv?.version ?? 0) : (kv?.modIndex ?? 0);
          const want = c.number ?? 0;
          return { eq: n === want, neq: n !== want, lt: n < want, gt: n > want }[c.result];
        });
        return { op: 'txn', succeeded: ok, results: (ok ? op.success : op.failure).map((o) => this.apply(o, index)) };
      }
      default:
        return { op: 'error', name: 'InvalidCommandError', message: `the fake backend does not implement ${op.op}` };
    }
  }

  private sorted(start: Uint8Array, end: Uint8Array): KeyValue[] {
    return [...this.data.values()]
      .filter((kv) => Buffer.compare(kv.key, start) >= 0 && (end.length === 0 || Buffer.compare(kv.key, end) < 0))
      .sort((a, b) => Buffer.compare(a.key, b.key));
  }

  async get(key: Uint8Array, options: ReadOptions): Promise<GetResult> {
    await this.enter({ method: 'get', key, options, deadline: options.deadline }, options.consistency !== 'follower');
    const kv = this.data.get(hex(key));
    return kv ? { kv, nodeId: this.id, appliedIndex: this.index } : { nodeId: this.id, appliedIndex: this.index };
  }

  async scan(start: Uint8Array, end: Uint8Array, limit: number, options: ReadOptions): Promise<RangeResult> {
    await this.enter({ method: 'scan', range: { start, end, limit }, options, deadline: options.deadline }, options.consistency !== 'follower');
    const all = this.sorted(start, end);
    const items = all.slice(0, limit);
    const res: RangeResult = { items, nodeId: this.id, appliedIndex: this.index };
    if (all.length > limit) res.continueFrom = all[limit]!.key;
    return res;
  }

  async waitFor(term: number, index: number, deadline: number): Promise<WaitOutcome> {
    await this.enter({ method: 'waitFor', waitFor: { term, index }, deadline }, false);
    return this.waitOutcome;
  }

  async status(): Promise<NodeStatus> {
    await this.enter({ method: 'status' }, false);
    const leader = this.follower ? this.follower.leaderId : this.id;
    return {
      id: this.id,
      clientAddress: this.clientAddress,
      role: this.follower ? 'follower' : 'leader',
      term: this.term,
      leaderId: leader,
      leaderClientAddress: this.follower ? this.follower.leaderAddress : this.clientAddress,
      commitIndex: this.index,
      appliedIndex: this.index,
      lastIndex: this.index,
      members: [
        { id: this.id, clientAddress: this.clientAddress, voter: true, raftAddress: '127.0.0.1:1' },
        ...[...this.members.values()].map((m) => ({ id: m.id, clientAddress: m.clientAddress, voter: m.voter, raftAddress: m.raftAddress })),
      ],
      ...(this.follower ? {} : { followers: [] }),
    };
  }

  async awaitLeaderAbove(term: number, deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.term > term) return;
    await this.leaderWaiters.wait(term, deadline, signal);
  }

  /** A new term with a known leader (this node, or `follower`'s leader when set). */
  newTerm(term: number): void {
    this.term = term;
    this.leaderWaiters.notify(term);
  }

  async transferLeadership(to: string, deadline: number): Promise<void> {
    await this.enter({ method: 'transferLeadership', to, deadline }, true);
    this.transferredTo = to;
  }

  async addMember(id: string, raftAddress: string, clientAddress: string, options: AddMemberOptions): Promise<void> {
    const learner = options.learner === true;
    await this.enter({ method: 'addMember', member: { id, raftAddress, clientAddress, learner }, deadline: options.deadline }, true);
    const known = this.members.get(id);
    if (raftAddress === '' && clientAddress === '') {
      if (!known || learner) throw new InvalidArgumentError('raftAddress', `is required unless promoting a current learner (${id} is not one)`);
      ({ raftAddress, clientAddress } = known);
    }
    if (known?.voter && learner) throw new ConfChangeRejectedError(`${id} is a voter; remove it before re-adding it as a learner`);
    this.members.set(id, { id, raftAddress, clientAddress, voter: !learner });
  }

  async removeMember(id: string, options: RemoveMemberOptions): Promise<void> {
    await this.enter({ method: 'removeMember', member: { id }, deadline: options.deadline }, true);
    if (id === this.id) throw new ConfChangeRejectedError(`${id} is the last voter`);
    this.members.delete(id);
  }

  async keepAliveLease(): Promise<number> {
    throw new Error('the fake backend has no leases');
  }

  async leases(): Promise<LeaseStatus[]> {
    return [];
  }

  watchSource(): WatchSource {
    throw new Error('the fake backend has no watch history');
  }
}

export interface FakeNode {
  backend: FakeKvBackend;
  server: KvServer;
  address: string;
}

/** A fake backend behind a real KV gRPC server on 127.0.0.1:0. */
export async function startFakeNode(id = 'n1', limits?: Partial<KvServiceLimits>): Promise<FakeNode> {
  const backend = new FakeKvBackend(id);
  const server = await startKvServer({ backend, address: '127.0.0.1:0', ...(limits ? { limits } : {}) });
  backend.clientAddress = server.address();
  return { backend, server, address: server.address() };
}
