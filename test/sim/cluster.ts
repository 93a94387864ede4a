// A simulated cluster: N RawNodes over MemoryStorage, one logical clock, and a network whose every
// misbehaviour (drop, delay, duplicate, reorder, partition) and every crash is drawn from one seed.
// The cluster observes what the nodes do and feeds the checkers after every step; the first
// violation aborts the run with a SimViolationError.

import { ConfChangeRejectedError, NotLeaderError, ProposalDroppedError } from '../../src/raft/errors.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RawNode } from '../../src/raft/raw-node.js';
import type { ConfChangeType, Entry, Message, NodeId, Ready, Role } from '../../src/raft/types.js';
import {
  SimViolationError,
  checkAckedWritesSurvive,
  checkDurability,
  checkElectionSafety,
  checkLeaderCompleteness,
  checkLinearizableRead,
  checkLiveness,
  checkLogMatching,
  checkStateMachineSafety,
  livenessReached,
  type AckRecord,
  type AppliedRecord,
  type CommittedEntry,
  type LeaderObservation,
  type LogView,
  type ReadObservation,
  type Violation,
} from './checkers.js';
import { Prng } from './prng.js';
import { SimStateMachine, chainNext, digestOf, encodeWrite } from './state-machine.js';
import { Trace } from './trace.js';

/** How hostile the environment is; drawn from the seed unless given. */
export interface FaultProfile {
  dropRate: number;
  dupRate: number;
  /** Each message takes 1..1+maxDelay ticks. */
  maxDelay: number;
  /** Shuffle messages that arrive in the same tick. */
  reorder: boolean;
  /** Per tick, chance a partition starts (when none is active). */
  partitionRate: number;
  partitionMaxTicks: number;
  /** Per tick, chance a node crashes between steps. */
  crashRate: number;
  /** Per Ready, chance the node crashes part-way through processing it. */
  crashInReadyRate: number;
  /** Chance a node crashes right after granting a vote, and comes back within a few ticks (double-vote hunting). */
  voteCrashRate: number;
  /** Per Ready, chance its persistence takes 1-5 ticks (a slow fsync): the node keeps stepping meanwhile. */
  slowDiskRate: number;
  /** Per-node clock rates differ (some nodes skip ticks, some double them). Disables lease reads. */
  skew: boolean;
  snapshotEvery: number;
  /** Entries kept in the log behind a snapshot. */
  snapshotRetain: number;
  writeRate: number;
  readRate: number;
  leaseReadRate: number;
  confRate: number;
  transferRate: number;
}

export interface ClusterOptions {
  seed: number;
  /** Bootstrap voters (3 or 5). Default: drawn from the seed. */
  nodes?: number;
  /** Extra nodes that start outside the cluster and may be added as learners. Default 1. */
  spares?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  profile?: Partial<FaultProfile>;
  trace?: boolean;
  /**
   * Deliberately break the runtime's side of the contract, to prove end to end that the checkers
   * catch real bugs: 'forget-votes' persists hard states without the vote (double voting after a
   * crash); 'early-reads' serves a read as soon as it is released, before applying up to its index.
   */
  sabotage?: Sabotage;
}

export type Sabotage = 'forget-votes' | 'early-reads';

export function drawProfile(rng: Prng): FaultProfile {
  const skew = rng.chance(0.25);
  return {
    dropRate: rng.pick([0, 0.01, 0.05, 0.15, 0.3]),
    dupRate: rng.pick([0, 0.01, 0.05]),
    maxDelay: rng.pick([0, 1, 2, 4, 8]),
    reorder: rng.chance(0.7),
    partitionRate: rng.pick([0, 0.01, 0.03]),
    partitionMaxTicks: rng.pick([20, 60, 150]),
    crashRate: rng.pick([0, 0.003, 0.01]),
    crashInReadyRate: rng.pick([0, 0.0005, 0.002]),
    slowDiskRate: rng.pick([0, 0, 0.05, 0.3]),
    voteCrashRate: rng.pick([0, 0.05, 0.2]),
    skew,
    snapshotEvery: rng.pick([5, 20, 60]),
    snapshotRetain: rng.pick([0, 3, 20]),
    writeRate: rng.pick([0.1, 0.3, 0.8]),
    readRate: rng.pick([0.05, 0.2]),
    leaseReadRate: skew ? 0 : rng.pick([0, 0.1]),
    confRate: rng.pick([0, 0.005, 0.02]),
    transferRate: rng.pick([0, 0.003, 0.01]),
  };
}

interface Proposal {
  key: string;
  value: string;
  digest: string;
  term: number;
  marker: boolean;
}

interface PendingRead {
  ctx: string;
  key: string;
  kind: 'readIndex' | 'lease';
  issueSeq: number;
  readIndex: number | undefined;
}

class SimNode {
  raw: RawNode | undefined;
  incarnation = 0;
  role: Role = 'follower';
  leaderId: NodeId = '';
  term = 0;
  sm = new SimStateMachine();
  proposals = new Map<number, Proposal>();
  reads = new Map<string, PendingRead>();
  persistedCommit = 0;
  highestPersistedCommit = 0;
  logDirty = true;
  logView: LogView = { first: 1, entries: [] };
  restartAt = 0;
  /** A Ready whose persistence is still "on its way to disk" (slow-disk fault). */
  slowReady: { rd: Ready; stage: number; doneAt: number } | undefined;
  /** Clock skew: chance per sim tick to skip a tick / to tick twice. */
  slow = 0;
  fast = 0;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    readonly rng: Prng,
  ) {}

  get up(): boolean {
    return this.raw !== undefined;
  }
}

type InFlight =
  | { kind: 'msg'; msg: Message; senderInc: number; report: boolean }
  | { kind: 'report'; node: NodeId; inc: number; peer: NodeId; what: 'snapOk' | 'snapFail' | 'unreachable' };

class StopRun extends Error {
  constructor(readonly violation: Violation) {
    super(violation.message);
  }
}

/** Thrown by the core where it must not throw: an input it should have ignored, or a broken invariant. */
function coreCrash(node: NodeId, what: string, err: unknown): Violation {
  const e = err as Error;
  return { checker: 'core-crash', message: `${node} threw from ${what}: ${e?.name}: ${e?.message}\n${e?.stack?.split('\n').slice(1, 6).join('\n')}` };
}

function expectedRefusal(err: unknown): boolean {
  return err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof ConfChangeRejectedError;
}

export interface ClusterStats {
  acked: number;
  proposed: number;
  reads: number;
  leaseReads: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  messages: number;
  elections: number;
}

export class SimCluster {
  readonly seed: number;
  readonly profile: FaultProfile;
  readonly nodes: SimNode[] = [];
  readonly byId = new Map<NodeId, SimNode>();
  readonly trace: Trace;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly bootstrap: NodeId[];
  tick = 0;
  /** Logical time: orders acks, reads and commits more finely than ticks. */
  private seq = 0;
  private tickStartSeq = 0;
  private readonly rng: Prng;
  private readonly net = new Map<number, InFlight[]>();
  private blocked = new Set<string>();
  private partitionEndsAt = 0;
  private faultsOn = true;
  private healTick = 0;
  private writeSeq = 0;
  private readSeq = 0;
  private markerAttempt = 0;
  private markerIndex = 0;
  private livenessBound = 0;
  private readonly sabotage: Sabotage | undefined;
  /** First application of each index anywhere: the canonical applied history and the commit record. */
  readonly committed = new Map<number, CommittedEntry & AppliedRecord>();
  readonly leadersByTerm = new Map<number, NodeId>();
  readonly acks: AckRecord[] = [];
  readonly stats: ClusterStats = {
    acked: 0, proposed: 0, reads: 0, leaseReads: 0, crashes: 0, partitions: 0,
    confChanges: 0, transfers: 0, snapshotsSent: 0, messages: 0, elections: 0,
  };

  constructor(opts: ClusterOptions) {
    this.seed = opts.seed;
    this.rng = new Prng(opts.seed);
    const setup = this.rng.fork('setup');
    this.profile = { ...drawProfile(setup.fork('profile')), ...opts.profile };
    const n = opts.nodes ?? setup.pick([3, 5]);
    const spares = opts.spares ?? 1;
    this.electionTicks = opts.electionTicks ?? 10;
    this.heartbeatTicks = opts.heartbeatTicks ?? 1;
    this.trace = new Trace(opts.trace ?? false);
    this.sabotage = opts.sabotage;
    this.bootstrap = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    for (let i = 0; i < n + spares; i++) {
      const id = `n${i + 1}`;
      const storage = new MemoryStorage({ voters: i < n ? [...this.bootstrap] : [], learners: [] });
      const node = new SimNode(id, storage, this.rng.fork(`node-${id}`));
      if (this.profile.skew) {
        const kind = setup.int(3);
        if (kind === 1) node.slow = 0.1;
        if (kind === 2) node.fast = 0.1;
      }
      this.nodes.push(node);
      this.byId.set(id, node);
      this.start(node);
    }
    const p = this.profile;
    this.trace.event(0, `seed=${this.seed} nodes=${n}+${spares} drop=${p.dropRate} dup=${p.dupRate} delay<=${p.maxDelay + 1} ` +
      `partition=${p.partitionRate} crash=${p.crashRate}/${p.crashInReadyRate} skew=${p.skew} snapEvery=${p.snapshotEvery}`);
  }

  // ---- node lifecycle ------------------------------------------------------------------------

  private start(node: SimNode): void {
    node.incarnation++;
    node.role = 'follower';
    node.leaderId = '';
    const snap = node.storage.snapshot();
    if (node.sm.applied < snap.meta.index) {
      // The state machine is behind the durable snapshot (volatile state machine, or a crash
      // between persisting a received snapshot and restoring it): restore from it, as a runtime would.
      const claimed = SimStateMachine.chainOf(snap.data);
      this.check(checkStateMachineSafety(this.committed, { kind: 'restore', node: node.id, prevApplied: 0, index: snap.meta.index, chain: claimed.chain }));
      node.sm.restore(snap.data);
    }
    const hs = node.storage.initialState().hardState;
    node.term = hs.term;
    node.persistedCommit = hs.commit;
    try {
      node.raw = new RawNode(
        { id: node.id, electionTicks: this.electionTicks, heartbeatTicks: this.heartbeatTicks, applied: node.sm.applied, random: (k) => node.rng.int(k) },
        node.storage,
      );
    } catch (err) {
      throw new StopRun(coreCrash(node.id, 'new RawNode()', err));
    }
    node.logDirty = true;
    if (node.incarnation > 1) this.trace.event(this.tick, `${node.id} restart applied=${node.sm.applied} term=${hs.term} commit=${hs.commit} log=[${node.storage.firstIndex()},${node.storage.lastIndex()}]`);
  }

  private crash(node: SimNode, why: string, quickRestart = false): void {
    if (!node.raw) return;
    node.raw = undefined;
    node.slowReady = undefined; // an unfinished write is lost with the process
    node.proposals.clear(); // their clients see a broken connection: outcome unknown
    node.reads.clear();
    node.role = 'follower';
    this.stats.crashes++;
    // Half the time the state machine is volatile and restarts from the last durable snapshot.
    const volatile = this.rng.chance(0.5);
    if (volatile) node.sm = new SimStateMachine();
    node.restartAt = this.tick + (quickRestart ? this.rng.range(1, 4) : this.rng.range(3, 60));
    this.trace.event(this.tick, `${node.id} CRASH (${why}${volatile ? ', state machine lost' : ''}) restart at t=${node.restartAt}`);
  }

  // ---- the step --------------------------------------------------------------------------------

  /** Advance the simulation by one tick, checking every invariant. Throws StopRun on a violation. */
  private step(): void {
    this.tick++;
    this.tickStartSeq = this.seq;
    if (this.faultsOn) this.injectFaults();
    this.deliver();
    for (const node of this.nodes) {
      if (!node.raw) continue;
      let ticks = 1;
      if (node.slow && node.rng.chance(node.slow)) ticks = 0;
      if (node.fast && node.rng.chance(node.fast)) ticks = 2;
      for (let i = 0; i < ticks; i++) this.guard(node, 'tick()', (raw) => raw.tick());
    }
    this.workload();
    for (const node of this.nodes) {
      if (!node.raw || !node.slowReady) continue;
      // While its disk is busy a leader keeps sending (heartbeats, appends) — what the runtime does.
      let early: Message[] = [];
      this.guard(node, 'takeLeaderMessages()', (raw) => (early = raw.takeLeaderMessages()));
      for (const m of early) this.send(node, m);
      if (node.slowReady.doneAt <= this.tick) {
        const { rd, stage } = node.slowReady;
        node.slowReady = undefined;
        this.finishReady(node, rd, stage);
      }
    }
    this.processReadies();
    this.checkStep();
  }

  private guard(node: SimNode, what: string, fn: (raw: RawNode) => void): void {
    if (!node.raw) return;
    try {
      fn(node.raw);
    } catch (err) {
      throw new StopRun(coreCrash(node.id, what, err));
    }
  }

  private check(v: Violation | null): void {
    if (v) throw new StopRun(v);
  }

  // ---- network ---------------------------------------------------------------------------------

  private enqueue(at: number, item: InFlight): void {
    let bucket = this.net.get(at);
    if (!bucket) this.net.set(at, (bucket = []));
    bucket.push(item);
  }

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  private send(sender: SimNode, msg: Message): void {
    this.stats.messages++;
    Object.freeze(msg);
    Object.freeze(msg.entries);
    const p = this.profile;
    if (this.isBlocked(msg.from, msg.to) || this.rng.chance(p.dropRate) || !this.byId.has(msg.to)) {
      this.trace.message(this.tick, msg, 'DROP ');
      this.reportLoss(sender, msg);
      return;
    }
    const copies = this.rng.chance(p.dupRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      this.enqueue(this.tick + 1 + this.rng.int(p.maxDelay + 1), { kind: 'msg', msg, senderInc: sender.incarnation, report: c === 0 });
    }
  }

  /** The sender's transport notices the loss a little later (a stream error, a failed snapshot). */
  private reportLoss(sender: SimNode, msg: Message): void {
    if (msg.type === 'snap') {
      this.enqueue(this.tick + 1, { kind: 'report', node: sender.id, inc: sender.incarnation, peer: msg.to, what: 'snapFail' });
    } else if (msg.type === 'app' && this.rng.chance(0.3)) {
      this.enqueue(this.tick + 1, { kind: 'report', node: sender.id, inc: sender.incarnation, peer: msg.to, what: 'unreachable' });
    }
  }

  private deliver(): void {
    const bucket = this.net.get(this.tick);
    if (!bucket) return;
    this.net.delete(this.tick);
    if (this.profile.reorder) this.rng.shuffle(bucket);
    for (const item of bucket) {
      if (item.kind === 'report') {
        const node = this.byId.get(item.node)!;
        if (!node.raw || node.incarnation !== item.inc) continue;
        this.trace.event(this.tick, `${node.id} report ${item.what} ${item.peer}`);
        if (item.what === 'unreachable') this.guard(node, 'reportUnreachable()', (raw) => raw.reportUnreachable(item.peer));
        else this.guard(node, 'reportSnapshot()', (raw) => raw.reportSnapshot(item.peer, item.what === 'snapOk'));
        continue;
      }
      const { msg } = item;
      const target = this.byId.get(msg.to)!;
      const sender = this.byId.get(msg.from)!;
      if (!target.raw || this.isBlocked(msg.from, msg.to)) {
        this.trace.message(this.tick, msg, 'LOST ', target.raw ? ' (partition)' : ' (target down)');
        if (item.report && sender.incarnation === item.senderInc) this.reportLoss(sender, msg);
        continue;
      }
      this.trace.message(this.tick, msg);
      this.guard(target, `step(${msg.type} from ${msg.from})`, (raw) => raw.step(msg));
      if (msg.type === 'snap' && item.report) {
        this.stats.snapshotsSent++;
        this.enqueue(this.tick + 1, { kind: 'report', node: sender.id, inc: item.senderInc, peer: msg.to, what: 'snapOk' });
      }
    }
  }

  // ---- faults ----------------------------------------------------------------------------------

  private upNodes(): SimNode[] {
    return this.nodes.filter((n) => n.raw);
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) if (n.raw && n.role === 'leader' && (!best || n.term > best.term)) best = n;
    return best;
  }

  private injectFaults(): void {
    const p = this.profile;
    const t = this.tick;
    if (this.blocked.size > 0 && t >= this.partitionEndsAt) {
      this.blocked = new Set();
      this.trace.event(t, 'HEAL partition');
    } else if (this.blocked.size === 0 && this.rng.chance(p.partitionRate)) {
      this.startPartition();
    }
    for (const node of this.nodes) if (!node.raw && t >= node.restartAt) this.start(node);
    if (this.rng.chance(p.crashRate)) {
      const up = this.upNodes();
      const maxDown = Math.floor(this.bootstrap.length / 2) + (this.rng.chance(0.2) ? 1 : 0);
      if (this.nodes.length - up.length < maxDown && up.length > 0) {
        const leader = this.leader();
        const victim = leader && this.rng.chance(0.4) ? leader : this.rng.pick(up);
        this.crash(victim, 'between steps');
      }
    }
    if (this.rng.chance(p.transferRate)) this.transfer();
    if (this.rng.chance(p.confRate)) this.changeMembership();
  }

  private startPartition(): void {
    const ids = this.nodes.map((n) => n.id);
    const block = (a: NodeId, b: NodeId) => this.blocked.add(`${a}>${b}`);
    const kind = this.rng.int(4);
    let what: string;
    if (kind === 0) {
      const shuffled = this.rng.shuffle([...ids]);
      const cut = this.rng.range(1, ids.length - 1);
      const left = shuffled.slice(0, cut);
      const right = shuffled.slice(cut);
      for (const a of left) for (const b of right) (block(a, b), block(b, a));
      what = `split [${left.join(',')}] | [${right.join(',')}]`;
    } else if (kind === 1) {
      const a = this.rng.pick(ids);
      const inbound = this.rng.chance(0.5);
      for (const b of ids) if (b !== a) (inbound ? block(b, a) : block(a, b));
      what = inbound ? `one-way: nothing reaches ${a}` : `one-way: nothing leaves ${a}`;
    } else if (kind === 2) {
      const a = this.rng.pick(ids);
      const b = this.rng.pick(ids.filter((x) => x !== a));
      block(a, b);
      what = `one-way link ${a} -x-> ${b}`;
    } else {
      const leader = this.leader();
      const a = leader ? leader.id : this.rng.pick(ids);
      for (const b of ids) if (b !== a) (block(a, b), block(b, a));
      what = `isolate ${leader ? 'leader ' : ''}${a}`;
    }
    this.partitionEndsAt = this.tick + this.rng.range(5, this.profile.partitionMaxTicks);
    this.stats.partitions++;
    this.trace.event(this.tick, `PARTITION ${what} until t=${this.partitionEndsAt}`);
  }

  private transfer(): void {
    const leader = this.leader();
    if (!leader?.raw) return;
    const voters = leader.raw.status().conf.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.trace.event(this.tick, `${leader.id} TRANSFER leadership to ${to}`);
    try {
      leader.raw.transferLeadership(to);
      this.stats.transfers++;
    } catch (err) {
      if (!expectedRefusal(err)) throw new StopRun(coreCrash(leader.id, 'transferLeadership()', err));
      this.trace.event(this.tick, `${leader.id} transfer refused: ${(err as Error).message}`);
    }
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (!leader?.raw) return;
    const conf = leader.raw.status().conf;
    const options: { type: ConfChangeType; nodeId: NodeId }[] = [];
    for (const n of this.nodes) {
      if (!conf.voters.includes(n.id) && !conf.learners.includes(n.id)) options.push({ type: 'addLearner', nodeId: n.id });
    }
    for (const l of conf.learners) options.push({ type: 'addVoter', nodeId: l }, { type: 'removeNode', nodeId: l });
    if (conf.voters.length > 3) for (const v of conf.voters) options.push({ type: 'removeNode', nodeId: v });
    if (options.length === 0) return;
    const cc = this.rng.pick(options);
    try {
      const r = leader.raw.proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace.event(this.tick, `${leader.id} CONF ${cc.type} ${cc.nodeId} -> idx=${r.index} term=${r.term}`);
    } catch (err) {
      if (!expectedRefusal(err)) throw new StopRun(coreCrash(leader.id, 'proposeConfChange()', err));
      this.trace.event(this.tick, `${leader.id} CONF ${cc.type} ${cc.nodeId} refused: ${(err as Error).message}`);
    }
  }

  /** Faults stop: the network heals and becomes reliable, every node comes back. */
  private stopFaults(): void {
    this.faultsOn = false;
    this.healTick = this.tick;
    this.blocked = new Set();
    this.profile.dropRate = 0;
    this.profile.dupRate = 0;
    this.profile.crashInReadyRate = 0;
    this.profile.voteCrashRate = 0;
    this.trace.event(this.tick, 'FAULTS STOP: network healed, all nodes restarting');
    for (const node of this.nodes) if (!node.raw) this.start(node);
  }

  // ---- client workload -------------------------------------------------------------------------

  private propose(node: SimNode, key: string, marker: boolean): void {
    if (!node.raw) return;
    const value = marker ? `final-${++this.markerAttempt}` : `v${++this.writeSeq}`;
    const data = encodeWrite(key, value);
    try {
      const r = node.raw.propose(data);
      this.stats.proposed++;
      node.proposals.set(r.index, { key, value, digest: `w|${key}|${value}`, term: r.term, marker });
      this.trace.event(this.tick, `${node.id} propose ${key}=${value} -> idx=${r.index} term=${r.term}`);
    } catch (err) {
      if (!expectedRefusal(err)) throw new StopRun(coreCrash(node.id, 'propose()', err));
    }
  }

  private workload(): void {
    const p = this.profile;
    const up = this.upNodes();
    if (up.length === 0) return;
    if (!this.faultsOn) {
      // Liveness phase: only the marker write, re-proposed whenever its last attempt was lost.
      const leader = this.leader();
      if (this.markerIndex === 0 && leader && ![...leader.proposals.values()].some((x) => x.marker)) this.propose(leader, 'marker', true);
      return;
    }
    if (this.rng.chance(p.writeRate)) {
      // Clients mostly find the leader; sometimes they hit a stale or random node.
      const target = this.rng.chance(0.9) ? (this.leader() ?? this.rng.pick(up)) : this.rng.pick(up);
      this.propose(target, `k${this.rng.int(4)}`, false);
    }
    if (this.rng.chance(p.readRate)) {
      const node = this.rng.pick(up);
      const ctx = `r${++this.readSeq}`;
      const read: PendingRead = { ctx, key: `k${this.rng.int(4)}`, kind: 'readIndex', issueSeq: this.seq++, readIndex: undefined };
      try {
        node.raw!.readIndex(ctx);
        node.reads.set(ctx, read);
        this.trace.event(this.tick, `${node.id} readIndex ${ctx} key=${read.key}`);
      } catch (err) {
        if (!expectedRefusal(err)) throw new StopRun(coreCrash(node.id, 'readIndex()', err));
      }
    }
    if (p.leaseReadRate > 0 && this.rng.chance(p.leaseReadRate)) {
      const leader = this.leader();
      if (leader?.raw) {
        const issueSeq = this.seq++;
        let index: number | null = null;
        try {
          index = leader.raw.leaseReadIndex();
        } catch (err) {
          throw new StopRun(coreCrash(leader.id, 'leaseReadIndex()', err));
        }
        if (index !== null) {
          const ctx = `l${++this.readSeq}`;
          const read: PendingRead = { ctx, key: `k${this.rng.int(4)}`, kind: 'lease', issueSeq, readIndex: index };
          this.trace.event(this.tick, `${leader.id} lease read ${ctx} key=${read.key} idx=${index}`);
          this.stats.leaseReads++;
          leader.reads.set(ctx, read);
          this.serveReads(leader);
        }
      }
    }
  }

  private serveReads(node: SimNode): void {
    for (const [ctx, read] of node.reads) {
      if (read.readIndex === undefined) continue;
      if (node.sm.applied < read.readIndex && this.sabotage !== 'early-reads') continue;
      node.reads.delete(ctx);
      const observed = node.sm.kv.get(read.key);
      const obs: ReadObservation = { ctx, node: node.id, key: read.key, kind: read.kind, issueSeq: read.issueSeq, readIndex: read.readIndex, observed };
      this.stats.reads++;
      this.trace.event(this.tick, `${node.id} read ${ctx} ${read.key}=${observed ? `${observed.value}@${observed.index}` : '-'} (readIndex ${read.readIndex}, applied ${node.sm.applied})`);
      this.check(checkLinearizableRead(obs, this.acks));
    }
  }

  // ---- the Ready loop ---------------------------------------------------------------------------

  private processReadies(): void {
    for (const node of this.nodes) {
      for (let i = 0; i < 16 && node.raw && !node.slowReady; i++) {
        let has = false;
        this.guard(node, 'hasReady()', (raw) => (has = raw.hasReady()));
        if (!has) break;
        this.handleReady(node);
      }
    }
  }

  private handleReady(node: SimNode): void {
    let rd!: Ready;
    this.guard(node, 'ready()', (raw) => (rd = raw.ready()));
    const stage = this.profile.crashInReadyRate > 0 && this.rng.chance(this.profile.crashInReadyRate) ? this.rng.int(4) : -1;
    // A leader's messages may go out before its own persistence (parallel fsync): a crash can then
    // land after some were sent and before anything of this Ready is durable.
    const early = rd.sendBeforePersist;
    if (early) {
      const count = stage === 0 ? this.rng.int(rd.messages.length + 1) : rd.messages.length;
      for (let i = 0; i < count; i++) this.send(node, rd.messages[i]!);
      if (stage === 0) return this.crash(node, `after sending ${count}/${rd.messages.length} messages early, before persisting`);
    }
    if (stage === 0) return this.crash(node, 'before persisting a Ready');
    if (this.faultsOn && this.profile.slowDiskRate > 0 && this.rng.chance(this.profile.slowDiskRate)) {
      node.slowReady = { rd, stage, doneAt: this.tick + this.rng.range(1, 5) };
      return;
    }
    this.finishReady(node, rd, stage);
  }

  /** Persist, send (unless sent early), apply and advance one Ready. */
  private finishReady(node: SimNode, rd: Ready, stage: number): void {
    const early = rd.sendBeforePersist;
    // 1. Persist (one atomic write, like the durable log's group commit).
    if (rd.snapshot) node.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) node.storage.append(rd.entries);
    if (rd.snapshot || rd.entries.length > 0) node.logDirty = true;
    if (rd.hardState) {
      node.storage.setHardState(this.sabotage === 'forget-votes' ? { ...rd.hardState, vote: '' } : rd.hardState);
      node.persistedCommit = rd.hardState.commit;
      node.term = rd.hardState.term;
      node.logDirty = true;
    }
    if (rd.softState) this.observeRole(node, rd.softState.role, rd.softState.leaderId);
    if (stage === 1) return this.crash(node, 'after persisting, before sending');

    // 2. Send (unless already sent before persisting).
    const count = early ? 0 : stage === 2 ? this.rng.int(rd.messages.length + 1) : rd.messages.length;
    for (let i = 0; i < count; i++) this.send(node, rd.messages[i]!);
    if (stage === 2) return this.crash(node, `after sending ${early ? 'early' : `${count}/${rd.messages.length} messages`}, before applying`);
    if (this.faultsOn && this.profile.voteCrashRate > 0 && rd.messages.some((m) => m.type === 'voteResp' && !m.reject) && this.rng.chance(this.profile.voteCrashRate)) {
      return this.crash(node, 'right after granting a vote', true);
    }

    // 3. Apply: snapshot first, then committed entries, then release reads.
    if (rd.snapshot) this.restoreSnapshot(node, rd);
    if (rd.committedEntries.length > 0) {
      const first = rd.committedEntries[0]!.index;
      const last = rd.committedEntries[rd.committedEntries.length - 1]!.index;
      this.trace.event(this.tick, `${node.id} apply [${first},${last}] commit=${node.persistedCommit}`);
    }
    for (const entry of rd.committedEntries) this.applyEntry(node, entry);
    for (const rs of rd.readStates) {
      const read = node.reads.get(rs.context);
      this.trace.event(this.tick, `${node.id} readState ${rs.context} idx=${rs.index}${read ? '' : ' (unknown)'}`);
      if (read && read.readIndex === undefined) read.readIndex = rs.index;
    }
    this.serveReads(node);
    if (stage === 3) return this.crash(node, 'after applying, before advance');

    this.guard(node, 'advance()', (raw) => raw.advance(rd));
    this.maybeSnapshot(node);
  }

  private observeRole(node: SimNode, role: Role, leaderId: NodeId): void {
    const was = node.role;
    node.role = role;
    node.leaderId = leaderId;
    if (role === 'leader' && was !== 'leader') {
      // The Ready that carried this role may have been on a slow disk while the node moved on:
      // its term is the one persisted with it (node.term), not the core's current one.
      const status = node.raw!.status();
      this.stats.elections++;
      this.trace.event(this.tick, `${node.id} LEADER term=${node.term} log=[${status.firstIndex},${status.lastIndex}] commit=${status.commit}`);
      this.check(checkElectionSafety([{ node: node.id, term: node.term }], this.leadersByTerm));
      this.leadersByTerm.set(node.term, node.id);
      // Entries first observed committed before this tick began were committed before this
      // election, hence in an earlier term: the new leader must hold them all.
      this.check(checkLeaderCompleteness({ node: node.id, term: node.term, sinceSeq: this.tickStartSeq, log: this.logOf(node) }, this.committed));
    } else if (was === 'leader' && role !== 'leader') {
      this.trace.event(this.tick, `${node.id} steps down (${role}, leader=${leaderId || '?'})`);
    }
  }

  private restoreSnapshot(node: SimNode, rd: Ready): void {
    const snap = rd.snapshot!;
    const claimed = SimStateMachine.chainOf(snap.data);
    this.trace.event(this.tick, `${node.id} restore snapshot idx=${snap.meta.index} term=${snap.meta.term}`);
    this.check(checkStateMachineSafety(this.committed, { kind: 'restore', node: node.id, prevApplied: node.sm.applied, index: snap.meta.index, chain: claimed.chain }));
    node.sm.restore(snap.data);
    // Proposals the snapshot covers can no longer be matched to their entries: outcome unknown.
    for (const idx of [...node.proposals.keys()]) if (idx <= snap.meta.index) node.proposals.delete(idx);
  }

  private applyEntry(node: SimNode, entry: Entry): void {
    const digest = digestOf(entry);
    const chain = chainNext(node.sm.chain, entry.index, entry.term, digest);
    const record: AppliedRecord = { index: entry.index, term: entry.term, digest, chain };
    this.check(checkStateMachineSafety(this.committed, { kind: 'apply', node: node.id, prevApplied: node.sm.applied, entry: record }));
    node.sm.apply(entry, digest, chain);
    if (!this.committed.has(entry.index)) {
      this.committed.set(entry.index, { ...record, seq: this.seq++ });
      if (!this.faultsOn && this.markerIndex === 0 && digest.startsWith('w|marker|')) this.markerIndex = entry.index;
    }
    const proposal = node.proposals.get(entry.index);
    if (proposal) {
      node.proposals.delete(entry.index);
      if (proposal.term === entry.term && proposal.digest === digest) {
        if (!proposal.marker) {
          this.acks.push({ key: proposal.key, value: proposal.value, index: entry.index, seq: this.seq++ });
          this.stats.acked++;
        }
        this.trace.event(this.tick, `${node.id} ACK ${proposal.key}=${proposal.value} idx=${entry.index}`);
      } else {
        this.trace.event(this.tick, `${node.id} proposal ${proposal.key}=${proposal.value} lost (idx ${entry.index} holds ${digest}@${entry.term})`);
      }
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const storage = node.storage;
    const snapIndex = storage.snapshot().meta.index;
    const applied = node.sm.applied;
    if (!node.raw || applied - snapIndex < this.profile.snapshotEvery || applied > storage.lastIndex()) return;
    storage.createSnapshot(applied, node.raw.status().conf, node.sm.encode());
    const compactTo = applied - this.profile.snapshotRetain;
    if (compactTo >= storage.firstIndex()) storage.compact(compactTo);
    node.logDirty = true;
    this.trace.event(this.tick, `${node.id} snapshot idx=${applied} log=[${storage.firstIndex()},${storage.lastIndex()}]`);
  }

  // ---- checks ------------------------------------------------------------------------------------

  private logOf(node: SimNode): LogView {
    if (!node.logDirty) return node.logView;
    const s = node.storage;
    const first = s.firstIndex();
    const last = s.lastIndex();
    const entries = last >= first ? s.entries(first, last + 1).map((e) => ({ index: e.index, term: e.term, digest: digestOf(e) })) : [];
    node.logView = { first, entries };
    node.logDirty = false;
    return node.logView;
  }

  private checkStep(): void {
    const dirty = this.nodes.filter((n) => n.logDirty);
    const leaders: LeaderObservation[] = [];
    for (const n of this.nodes) if (n.raw && n.role === 'leader') leaders.push({ node: n.id, term: n.term });
    this.check(checkElectionSafety(leaders, this.leadersByTerm));
    if (dirty.length > 0) {
      const logs = new Map<NodeId, LogView>();
      for (const n of this.nodes) logs.set(n.id, this.logOf(n));
      this.check(checkLogMatching(logs));
      for (const n of dirty) {
        this.check(checkDurability({ node: n.id, persistedCommit: n.persistedCommit, highestPersistedCommit: n.highestPersistedCommit, log: n.logView }, this.committed));
        n.highestPersistedCommit = Math.max(n.highestPersistedCommit, n.persistedCommit);
      }
    }
  }

  private liveness(): { done: boolean } {
    const leader = this.leader();
    const voters = leader?.raw ? leader.raw.status().conf.voters : [];
    const applied = this.markerIndex > 0 ? voters.filter((v) => this.byId.get(v)!.sm.applied >= this.markerIndex) : [];
    const state = {
      ticksSinceHeal: this.tick - this.healTick,
      boundTicks: this.livenessBound,
      leader: leader?.id ?? '',
      voters,
      appliedMarker: applied,
    };
    this.check(checkLiveness(state));
    return { done: livenessReached(state) };
  }

  // ---- running -------------------------------------------------------------------------------------

  /**
   * Run `faultTicks` ticks of faults and workload, then stop the faults and require progress within
   * `livenessElections` election timeouts. Returns the violation that stopped the run, if any.
   */
  run(faultTicks: number, livenessElections: number): Violation | null {
    this.livenessBound = livenessElections * this.electionTicks;
    try {
      while (this.tick < faultTicks) this.step();
      this.stopFaults();
      for (;;) {
        this.step();
        if (this.liveness().done) break;
      }
      this.trace.event(this.tick, `LIVE: marker committed at idx=${this.markerIndex} on all voters ${this.tick - this.healTick} ticks after faults stopped`);
      for (const node of this.nodes) {
        const acks = this.acks.filter((a) => a.index <= node.sm.applied);
        this.check(checkAckedWritesSurvive(node.id, acks, node.sm.kv));
      }
      return null;
    } catch (err) {
      if (err instanceof StopRun) return err.violation;
      return coreCrash('sim', 'the simulator itself', err);
    }
  }

  violationError(v: Violation): SimViolationError {
    return new SimViolationError(v.checker, this.seed, this.tick, v.message, this.trace.tail());
  }
}
