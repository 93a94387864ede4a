// The node runtime: drives one RawNode (the pure Raft core) with a tick timer, persists and
// applies its Ready batches, and implements KvBackend on top (writes, the three read
// consistencies, waitFor receipts, status, leadership transfer, membership).
//
// The Ready loop runs one batch at a time and is never re-entered: storage.save (one group-commit
// fsync) → restore a received snapshot → send messages → apply committed entries in one batch →
// release read states → advance. Inputs (ticks, peer messages, proposals) only step the core and
// schedule the loop with setImmediate, so everything that arrives during an fsync lands in the
// next Ready and shares the next fsync.
import type { Logger } from 'pino';
import {
  ConfChangeRejectedError as CoreConfChangeRejectedError,
  NotLeaderError as CoreNotLeaderError,
  ProposalDroppedError as CoreProposalDroppedError,
  UncommittedLimitError,
} from '../raft/errors.js';
import { RawNode } from '../raft/raw-node.js';
import type {
  Entry,
  Message,
  NodeId,
  RaftConfig,
  RaftLogger,
  RaftStatus,
  RandomInt,
  Ready,
  Role,
  Snapshot,
  SoftState,
} from '../raft/types.js';
import { encodeCommand } from '../storage/codec.js';
import type { CommandResult } from '../api/command.js';
import type { RaftStorage } from '../storage/raft-storage.js';
import type { StateMachine } from '../storage/state-machine.js';
import type { Transport } from '../transport/transport.js';
import { AppliedTerms } from './applied-terms.js';
import {
  ConfChangeRejectedError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  ReceiptTooOldError,
  ShuttingDownError,
  StaleReadError,
  StaleSequenceError,
} from '../api/errors.js';
import { IndexWaiters } from './index-waiters.js';
import type {
  GetResult,
  KvBackend,
  NodeStatus,
  RangeResult,
  ReadOptions,
  WaitOutcome,
  WriteAck,
  WriteRequest,
} from './kv-backend.js';
import { FailbackPolicy } from './failback.js';
import { LeaderFreshness } from './leader-freshness.js';
import { decodeConfEntry, encodeConfContext, type MemberAddress, MemberTable } from './membership.js';
import { NodeMetrics } from './metrics.js';
import { ReadIndexBatcher } from './read-index-batcher.js';
import { unwrapSnapshotData, wrapSnapshotData } from './snapshot-envelope.js';

export interface RaftTimings {
  /** Milliseconds per logical tick. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a snapshot and compact the log every this many applied entries (0 = never). */
  snapshotEntries?: number;
  /** ...or once this many bytes of entries were applied since the last one (0 = never; default 64 MiB). */
  snapshotBytes?: number;
  /** Entries kept before a snapshot for slow followers (default min(snapshotEntries, 1000)). */
  retainEntries?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  /** Leader refuses proposals (OverloadedError) beyond this many uncommitted entries. */
  maxUncommittedEntries?: number;
}

export interface RaftNodeOptions {
  id: NodeId;
  /** Known member addresses (from the cluster config), including this node's own. */
  members: MemberAddress[];
  raft: RaftTimings;
  storage: RaftStorage;
  stateMachine: StateMachine;
  transport: Transport;
  logger?: Logger;
  /** Sync writes waiting for their entry to apply (default 10000); beyond it → OverloadedError. */
  maxPendingProposals?: number;
  /** Linearizable reads waiting for a read index (default 10000). */
  maxPendingReads?: number;
  /** A save slower than this is logged (default 100 ms). */
  slowFsyncMs?: number;
  /**
   * Time each storage.save into metrics.fsyncSeconds and log slow ones (default true). Off when
   * the storage reports its own fsync timings (FileRaftStorage onFsync), to avoid double counting.
   */
  measureSaves?: boolean;
  /** How long stop() waits for in-flight requests (default 2000 ms). */
  drainTimeoutMs?: number;
  random?: RandomInt;
  now?: () => number;
  /** The caller already started the transport (e.g. to learn its bound port); start() won't. */
  transportStarted?: boolean;
  /** Failback: leadership returns to this voter once it has been caught up for `failbackHoldMs`. */
  preferredLeader?: NodeId;
  /** Default 3000 ms. */
  failbackHoldMs?: number;
  /** The node hit an unrecoverable error (e.g. the disk failed) and stopped serving. */
  onFatal?: (err: Error) => void;
}

interface PendingProposal {
  term: number;
  resolve: (result: CommandResult | null) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface TransferWaiter {
  to: NodeId;
  resolve: () => void;
}

/** How often a membership change re-asks the core after a refusal that clears by itself. */
const CONF_RETRY_MS = 20;

const defaultRandom: RandomInt = (n) => Math.floor(Math.random() * n);

export class RaftNode implements KvBackend {
  readonly id: NodeId;
  readonly metrics = new NodeMetrics();

  private readonly raw: RawNode;
  private readonly storage: RaftStorage;
  private readonly sm: StateMachine;
  private readonly transport: Transport;
  private readonly log: Logger | undefined;
  private readonly members: MemberTable;
  private readonly now: () => number;
  private readonly timings: Required<Pick<RaftTimings, 'tickMs' | 'electionTicks' | 'heartbeatTicks'>> & {
    snapshotEntries: number;
    snapshotBytes: number;
    retainEntries: number;
  };
  private readonly maxPendingProposals: number;
  private readonly maxPendingReads: number;
  private readonly slowFsyncMs: number;
  private readonly drainTimeoutMs: number;
  private readonly onFatal: ((err: Error) => void) | undefined;
  private readonly transportStarted: boolean;
  private readonly measureSaves: boolean;

  // Runtime view of core state, updated from each Ready (cheaper than status() per request).
  private role: Role = 'follower';
  private leaderId: NodeId = '';
  private term = 0;
  // invariant: applied === stateMachine.appliedIndex() between Ready batches
  private applied: number;
  private lastSnapshotIndex: number;
  /** Index of the last applied conf entry: a snapshot's ConfState must match its index. */
  private lastConfIndex = 0;

  private readonly pending = new Map<number, PendingProposal>();
  private readonly appliedWaiters = new IndexWaiters();
  private readonly appliedTerms = new AppliedTerms();
  private readonly freshness: LeaderFreshness;
  private readonly reads: ReadIndexBatcher;
  private transferWaiters: TransferWaiter[] = [];
  private readonly failback: FailbackPolicy | undefined;
  private ticksSinceFailbackCheck = 0;

  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private looping: Promise<void> | undefined;
  private snapshotting = false;
  /** Bytes of entry data applied since the last snapshot started (the byte-based trigger). */
  private appliedBytesSinceSnapshot = 0;
  private pendingCompaction: Snapshot | undefined;
  private started = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private failed: Error | undefined;
  private inflight = 0;
  private drained: (() => void) | undefined;

  constructor(options: RaftNodeOptions) {
    this.id = options.id;
    this.storage = options.storage;
    this.sm = options.stateMachine;
    this.transport = options.transport;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    const t = options.raft;
    for (const field of ['tickMs', 'electionTicks', 'heartbeatTicks'] as const) {
      if (!Number.isInteger(t[field]) || t[field] <= 0) throw new InvalidArgumentError(`raft.${field}`, `must be a positive integer, got ${t[field]}`);
    }
    const snapshotEntries = t.snapshotEntries ?? 100000;
    this.timings = {
      tickMs: t.tickMs,
      electionTicks: t.electionTicks,
      heartbeatTicks: t.heartbeatTicks,
      snapshotEntries,
      snapshotBytes: t.snapshotBytes ?? 64 * 1024 * 1024,
      retainEntries: t.retainEntries ?? Math.min(snapshotEntries || 1000, 1000),
    };
    this.maxPendingProposals = options.maxPendingProposals ?? 10000;
    this.maxPendingReads = options.maxPendingReads ?? 10000;
    this.slowFsyncMs = options.slowFsyncMs ?? 100;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 2000;
    this.onFatal = options.onFatal;
    this.transportStarted = options.transportStarted ?? false;
    this.measureSaves = options.measureSaves ?? true;
    this.members = new MemberTable(options.members);
    this.failback = options.preferredLeader
      ? new FailbackPolicy({ preferredLeader: options.preferredLeader, holdMs: options.failbackHoldMs ?? 3000 })
      : undefined;
    this.freshness = new LeaderFreshness(this.now());

    this.applied = this.sm.appliedIndex();
    this.lastSnapshotIndex = this.storage.snapshot().meta.index;

    const config: RaftConfig = {
      id: this.id,
      electionTicks: t.electionTicks,
      heartbeatTicks: t.heartbeatTicks,
      applied: this.applied,
      preVote: t.preVote,
      checkQuorum: t.checkQuorum,
      maxInflightMsgs: t.maxInflightMsgs,
      maxSizePerMsg: t.maxSizePerMsg,
      maxUncommittedEntries: t.maxUncommittedEntries,
      random: options.random ?? defaultRandom,
      logger: this.log ? coreLogger(this.log) : undefined,
    };
    // The core must not be created before the state machine caught up with the stored snapshot
    // (see start()), but the config's `applied` is only read at construction, so a lagging state
    // machine is restored first by RaftNode.open-style callers; here we refuse the inconsistency.
    if (this.applied < this.lastSnapshotIndex) {
      throw new InvalidArgumentError(
        'stateMachine',
        `applied index ${this.applied} is behind the stored snapshot ${this.lastSnapshotIndex}; call RaftNode.create() which restores it first`,
      );
    }
    this.raw = new RawNode(config, this.storage);
    this.rebuildMembers();

    this.reads = new ReadIndexBatcher({
      issue: (context) => {
        try {
          this.raw.readIndex(context);
        } catch (err) {
          throw this.mapCoreError(err);
        }
        this.metrics.readIndexRounds.inc();
        this.schedule();
      },
      contextPrefix: `${this.id}-${this.now().toString(36)}`,
      retryAfterMs: t.electionTicks * t.tickMs,
      now: this.now,
    });
  }

  /**
   * Creates a node, first restoring the state machine from the stored snapshot if a crash left it
   * behind (the snapshot was saved but the restore did not finish).
   */
  static async create(options: RaftNodeOptions): Promise<RaftNode> {
    const snap = options.storage.snapshot();
    if (snap.meta.index > options.stateMachine.appliedIndex()) {
      const { state } = unwrapSnapshotData(snap.data);
      await options.stateMachine.restore({ meta: snap.meta, data: state });
      options.logger?.info({ event: 'snapshot_restored_at_start', index: snap.meta.index }, 'state machine restored from stored snapshot');
    }
    return new RaftNode(options);
  }

  /** Starts the transport, the tick timer and the Ready loop. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.transport.onMessage((m) => this.onPeerMessage(m));
    this.transport.onUnreachable((peer) => {
      if (this.stopping) return;
      this.raw.reportUnreachable(peer);
      this.schedule();
    });
    this.transport.onSnapshotStatus((e) => {
      if (this.stopping) return;
      this.raw.reportSnapshot(e.to, e.ok);
      this.schedule();
    });
    for (const m of this.members.list()) {
      if (m.id !== this.id) this.transport.addPeer({ id: m.id, raftAddress: m.raftAddress });
    }
    if (!this.transportStarted) await this.transport.start();
    this.timer = setInterval(() => this.onTick(), this.timings.tickMs);
    this.log?.info(
      { event: 'node_started', id: this.id, applied: this.applied, term: this.raw.status().term, snapshotIndex: this.lastSnapshotIndex },
      'raft node started',
    );
    this.schedule();
  }

  /** Updates (or adds) a member's addresses, e.g. once ephemeral ports are known. */
  setMemberAddress(member: MemberAddress): void {
    this.members.set(member);
    if (member.id !== this.id && this.started) this.transport.addPeer({ id: member.id, raftAddress: member.raftAddress });
  }

  /** Starts an election now (tests and operators). */
  campaign(): void {
    this.raw.campaign();
    this.schedule();
  }

  // ---------------------------------------------------------------------------------------------
  // KvBackend

  async write(request: WriteRequest): Promise<WriteAck> {
    const started = this.enter();
    try {
      this.checkDeadline(request.deadline, started, 'write');
      if (request.durability !== 'sync' && request.durability !== 'async') {
        throw new InvalidArgumentError('durability', `must be 'sync' or 'async', got ${String(request.durability)}`);
      }
      if (this.role !== 'leader') throw this.notLeader();
      if (request.durability === 'sync' && this.pending.size >= this.maxPendingProposals) {
        this.metrics.proposalsFailed.inc();
        throw new OverloadedError('pending proposals', this.maxPendingProposals);
      }
      let data: Uint8Array;
      try {
        data = encodeCommand(request.command);
      } catch (err) {
        throw new InvalidArgumentError('command', (err as Error).message);
      }
      let receipt;
      try {
        receipt = this.raw.propose(data);
      } catch (err) {
        this.metrics.proposalsFailed.inc();
        throw this.mapCoreError(err);
      }
      this.metrics.proposals.inc();
      this.schedule();
      if (request.durability === 'async') return { term: receipt.term, index: receipt.index };
      const result = await this.track(receipt.term, receipt.index, request.deadline, started, 'write');
      // null: the entry was committed but reached this node inside a snapshot, so its result is
      // unknown here; a retry with the same (clientId, seq) returns it.
      if (!result) return { term: receipt.term, index: receipt.index };
      if (result.result.op === 'error') {
        if (result.result.name === 'StaleSequenceError') throw new StaleSequenceError(request.command.clientId, request.command.seq);
        throw new InvalidArgumentError('command', result.result.message);
      }
      return { term: receipt.term, index: receipt.index, result };
    } finally {
      this.leave();
    }
  }

  async get(key: Uint8Array, options: ReadOptions): Promise<GetResult> {
    const started = this.enter();
    try {
      if (!(key instanceof Uint8Array) || key.length === 0) throw new InvalidArgumentError('key', 'must be a non-empty byte string');
      await this.readBarrier(options, started);
      const kv = await this.sm.get(key);
      return { nodeId: this.id, appliedIndex: this.sm.appliedIndex(), kv };
    } finally {
      this.leave();
    }
  }

  async scan(start: Uint8Array, end: Uint8Array, limit: number, options: ReadOptions): Promise<RangeResult> {
    const began = this.enter();
    try {
      if (!(start instanceof Uint8Array) || !(end instanceof Uint8Array)) throw new InvalidArgumentError('range', 'start and end must be byte strings');
      if (!Number.isInteger(limit) || limit <= 0) throw new InvalidArgumentError('limit', `must be a positive integer, got ${limit}`);
      await this.readBarrier(options, began);
      const res = await this.sm.scan({ start, end, limit });
      return { nodeId: this.id, appliedIndex: this.sm.appliedIndex(), ...res };
    } finally {
      this.leave();
    }
  }

  async waitFor(term: number, index: number, deadline: number): Promise<WaitOutcome> {
    const started = this.enter();
    try {
      if (!Number.isInteger(term) || term <= 0) throw new InvalidArgumentError('term', `must be a positive integer, got ${term}`);
      if (!Number.isInteger(index) || index <= 0) throw new InvalidArgumentError('index', `must be a positive integer, got ${index}`);
      this.checkDeadline(deadline, started, 'waitFor');
      await this.waitApplied(index, deadline, started, 'waitFor');
      return this.outcomeOf(term, index);
    } finally {
      this.leave();
    }
  }

  async status(): Promise<NodeStatus> {
    const s = this.raw.status();
    const members = [
      ...s.conf.voters.map((id) => ({ id, clientAddress: this.members.clientAddress(id), voter: true })),
      ...s.conf.learners.map((id) => ({ id, clientAddress: this.members.clientAddress(id), voter: false })),
    ];
    const status: NodeStatus = {
      id: this.id,
      clientAddress: this.members.clientAddress(this.id),
      role: s.role,
      term: s.term,
      leaderId: s.leaderId,
      leaderClientAddress: this.members.clientAddress(s.leaderId),
      commitIndex: s.commit,
      appliedIndex: this.sm.appliedIndex(),
      lastIndex: s.lastIndex,
      members,
    };
    if (s.role === 'leader' && s.progress) {
      status.followers = Object.entries(s.progress)
        .filter(([id]) => id !== this.id)
        .map(([id, p]) => ({ id, match: p.match, lag: Math.max(0, s.lastIndex - p.match) }));
    }
    return status;
  }

  async transferLeadership(to: NodeId, deadline: number): Promise<void> {
    const started = this.enter();
    try {
      const conf = this.raw.status().conf;
      if (!conf.voters.includes(to)) throw new InvalidArgumentError('to', `${JSON.stringify(to)} is not a voter of this cluster (voters: ${conf.voters.join(', ')})`);
      if (this.leaderId === to) return;
      if (this.role !== 'leader') throw this.notLeader();
      this.checkDeadline(deadline, started, 'transferLeadership');
      await new Promise<void>((resolve, reject) => {
        const waiter: TransferWaiter = { to, resolve: () => (clearTimeout(timer), resolve()) };
        const timer = setTimeout(() => {
          this.transferWaiters = this.transferWaiters.filter((w) => w !== waiter);
          reject(new DeadlineExceededError(deadline - started, `leadership transfer to ${to}`));
        }, Math.max(0, deadline - this.now()));
        this.transferWaiters.push(waiter);
        try {
          this.raw.transferLeadership(to);
        } catch (err) {
          clearTimeout(timer);
          this.transferWaiters = this.transferWaiters.filter((w) => w !== waiter);
          reject(this.mapCoreError(err));
          return;
        }
        this.log?.info({ event: 'leadership_transfer_requested', from: this.id, to }, 'leadership transfer requested');
        this.schedule();
      });
    } finally {
      this.leave();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Membership (leader only). Resolve once the change is applied on this node.

  async addMember(
    id: NodeId,
    raftAddress: string,
    clientAddress: string,
    options: { learner?: boolean; deadline?: number } = {},
  ): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('id', 'must be a non-empty string');
    const learner = options.learner === true;
    const known = this.members.get(id);
    if (raftAddress === '' && clientAddress === '') {
      // Promotion by id alone: the learner's addresses are already in the member table. Only the
      // leader's configuration can tell whether id is a learner (a follower's may lag).
      if (this.role !== 'leader') throw this.notLeader();
      const conf = this.raw.status().conf;
      if (learner || !known || !(conf.learners.includes(id) || conf.voters.includes(id))) {
        throw new InvalidArgumentError('raftAddress', `is required unless promoting a current learner (${id} is not one)`);
      }
      raftAddress = known.raftAddress;
      clientAddress = known.clientAddress;
    }
    // Only shape-checked here: the transport validates the address it can actually dial.
    if (typeof raftAddress !== 'string' || !/^\S+$/.test(raftAddress)) throw new InvalidArgumentError('raftAddress', `must be a host:port, got ${JSON.stringify(raftAddress)}`);
    if (typeof clientAddress !== 'string' || !/^\S+$/.test(clientAddress)) throw new InvalidArgumentError('clientAddress', `must be a host:port, got ${JSON.stringify(clientAddress)}`);
    // Already so (e.g. a client retrying a change whose reply it lost): nothing to propose.
    const satisfied = () => {
      const conf = this.raw.status().conf;
      const current = this.members.get(id);
      return (
        (learner ? conf.learners : conf.voters).includes(id) &&
        current?.raftAddress === raftAddress &&
        current.clientAddress === clientAddress
      );
    };
    await this.changeMembership(
      { type: learner ? 'addLearner' : 'addVoter', nodeId: id, context: encodeConfContext({ raftAddress, clientAddress }) },
      options.deadline ?? this.now() + 10_000,
      satisfied,
    );
  }

  async removeMember(id: NodeId, options: { deadline?: number } = {}): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('id', 'must be a non-empty string');
    const satisfied = () => {
      const conf = this.raw.status().conf;
      return !conf.voters.includes(id) && !conf.learners.includes(id);
    };
    await this.changeMembership({ type: 'removeNode', nodeId: id }, options.deadline ?? this.now() + 10_000, satisfied);
  }

  private async changeMembership(cc: Parameters<RawNode['proposeConfChange']>[0], deadline: number, satisfied: () => boolean): Promise<void> {
    const started = this.enter();
    try {
      this.checkDeadline(deadline, started, 'membership change');
      if (this.role !== 'leader') throw this.notLeader();
      // Judged on the leader's applied configuration, after the leadership check: a follower's may lag.
      if (satisfied()) return;
      let receipt;
      for (;;) {
        try {
          receipt = this.raw.proposeConfChange(cc);
          break;
        } catch (err) {
          // Refusals that resolve by themselves within a few ticks (the previous change is being
          // applied; a fresh leader's first entry is committing) are waited out, not returned.
          if (!(err instanceof CoreConfChangeRejectedError) || !err.transient || this.now() + CONF_RETRY_MS >= deadline) {
            throw this.mapCoreError(err);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, CONF_RETRY_MS));
        if (this.stopping) throw new ShuttingDownError(this.id);
        if (this.role !== 'leader') throw this.notLeader();
        if (satisfied()) return;
      }
      this.schedule();
      await this.track(receipt.term, receipt.index, deadline, started, 'membership change');
    } finally {
      this.leave();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Introspection for the process (readyz, metrics)

  raftStatus(): RaftStatus {
    return this.raw.status();
  }

  /** Knows a leader and has applied everything it knows to be committed. */
  isCaughtUp(): boolean {
    const s = this.raw.status();
    return s.leaderId !== '' && this.sm.appliedIndex() >= s.commit && !this.failed && !this.stopping;
  }

  /** Milliseconds this node may be behind the leader (0 on the leader). */
  followerLagMs(): number {
    return this.role === 'leader' ? 0 : this.freshness.lagMs(this.now());
  }

  get pendingProposals(): number {
    return this.pending.size;
  }

  // ---------------------------------------------------------------------------------------------
  // Shutdown

  /** Stop accepting requests, drain in-flight ones (bounded), then close transport and storage. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.drainTimeoutMs);
        this.drained = () => (clearTimeout(timer), resolve());
      });
    }
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const err = new ShuttingDownError(this.id);
    this.failEverything(err);
    while (this.looping) await this.looping;
    const closes: [string, () => Promise<void>][] = [
      ['transport', () => this.transport.close()],
      ['storage', () => this.storage.close()],
      ['stateMachine', () => this.sm.close()],
    ];
    for (const [what, close] of closes) {
      try {
        await close();
      } catch (e) {
        this.log?.warn({ event: 'close_failed', what, err: (e as Error).message }, `closing ${what} failed`);
      }
    }
    this.log?.info({ event: 'node_stopped', id: this.id, applied: this.applied }, 'raft node stopped');
  }

  private failEverything(err: Error): void {
    for (const [index, p] of this.pending) {
      this.pending.delete(index);
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.reads.failAll(err);
    this.appliedWaiters.releaseAll();
    const transfers = this.transferWaiters;
    this.transferWaiters = [];
    for (const w of transfers) w.resolve(); // the caller re-checks nothing: shutdown wins
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  private onTick(): void {
    if (this.failed) return;
    this.raw.tick();
    // A leader's heartbeats must not wait behind a slow fsync or apply in the Ready loop: when the
    // core says they are independent of the outstanding write, send them now.
    if (this.role === 'leader') {
      const early = this.raw.takeLeaderMessages();
      if (early.length > 0) this.transport.send(early);
    }
    this.reads.tick();
    this.maybeFailBack();
    this.schedule();
  }

  /** On the leader, about every heartbeat: hand leadership back to the preferred node when it is ready. */
  private maybeFailBack(): void {
    if (!this.failback || this.role !== 'leader' || this.stopping) return;
    if (++this.ticksSinceFailbackCheck < this.timings.heartbeatTicks) return;
    this.ticksSinceFailbackCheck = 0;
    const target = this.failback.decide(this.raw.status(), this.now());
    if (!target) return;
    this.log?.info({ event: 'failback', from: this.id, to: target }, `failback: handing leadership back to preferred node ${target}`);
    this.raw.transferLeadership(target);
  }

  private onPeerMessage(m: Message): void {
    if (this.failed || !this.timer) return;
    if ((m.type === 'app' || m.type === 'heartbeat') && m.term >= this.term) {
      // A heartbeat's `commit` is capped at our match; its leaderCommit is the leader's real one.
      this.freshness.heard(m.type === 'heartbeat' ? (m.leaderCommit ?? m.commit) : m.commit, this.now(), this.applied);
    }
    try {
      this.raw.step(m);
    } catch (err) {
      // The core promises never to throw on peer input; if it does, drop the message, keep serving.
      this.log?.warn({ event: 'step_failed', from: m.from, type: m.type, err: (err as Error).message }, 'dropped a message the core rejected');
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.failed || (this.stopping && !this.timer)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.looping) this.looping = this.loop().finally(() => (this.looping = undefined));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The Ready loop

  private async loop(): Promise<void> {
    try {
      for (;;) {
        if (this.failed) return;
        if (this.pendingCompaction) {
          const snap = this.pendingCompaction;
          this.pendingCompaction = undefined;
          // Not awaited: writing the snapshot can take a while, and the Ready loop (which carries
          // the heartbeats) must keep going. Storage orders the short log switch with saves itself.
          void this.compact(snap).catch((err: Error) => {
            if (!this.stopping) this.fail(err);
          });
          continue;
        }
        if (!this.raw.hasReady()) return;
        await this.handleReady(this.raw.ready());
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    if (rd.hardState) this.term = rd.hardState.term;

    // A leader's appends go out while its own fsync runs; everything else waits for durability.
    const sentEarly = rd.sendBeforePersist && rd.messages.length > 0;
    if (sentEarly) this.transport.send(rd.messages);
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      const t0 = performance.now();
      await this.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
      const ms = performance.now() - t0;
      if (this.measureSaves) this.metrics.fsyncSeconds.observe(ms / 1000);
      if (this.measureSaves && ms >= this.slowFsyncMs) {
        this.log?.warn({ event: 'slow_fsync', ms: Math.round(ms), entries: rd.entries.length }, 'slow log save');
      }
    }
    if (rd.snapshot) await this.restoreSnapshot(rd.snapshot);
    if (!sentEarly && rd.messages.length > 0) this.transport.send(rd.messages);
    if (rd.committedEntries.length > 0) await this.applyCommitted(rd.committedEntries);
    for (const rs of rd.readStates) this.reads.onReadState(rs.context, rs.index);
    this.raw.advance(rd);
    this.maybeSnapshot();
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.role === 'leader';
    if (ss.leaderId !== this.leaderId) {
      this.metrics.leaderChanges.inc();
      this.log?.info(
        { event: 'leader_changed', id: this.id, leader: ss.leaderId || null, previous: this.leaderId || null, role: ss.role },
        ss.leaderId ? `leader is now ${ss.leaderId}` : 'leader lost',
      );
    }
    if (wasLeader && ss.role !== 'leader') {
      this.log?.info({ event: 'stepped_down', id: this.id, pending: this.pending.size }, 'no longer leader');
    }
    this.role = ss.role;
    this.leaderId = ss.leaderId;
    if (this.transferWaiters.length > 0) {
      const done = this.transferWaiters.filter((w) => w.to === ss.leaderId);
      this.transferWaiters = this.transferWaiters.filter((w) => w.to !== ss.leaderId);
      for (const w of done) w.resolve();
    }
  }

  private async applyCommitted(entries: Entry[]): Promise<void> {
    const results = await this.sm.apply(entries);
    for (const e of entries) this.appliedBytesSinceSnapshot += e.data.length;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      this.appliedTerms.record(e.index, e.term);
      if (e.type === 'conf') this.applyConfEntry(e);
      const p = this.pending.get(e.index);
      if (p) {
        this.pending.delete(e.index);
        clearTimeout(p.timer);
        if (p.term === e.term) p.resolve(results[i] ?? null);
        else p.reject(this.lostError(p.term, e.index));
      }
    }
    this.applied = entries[entries.length - 1]!.index;
    this.metrics.appliedEntries.inc(entries.length);
    this.freshness.applied(this.applied);
    this.appliedWaiters.notify(this.applied);
  }

  private applyConfEntry(e: Entry): void {
    this.lastConfIndex = e.index;
    const decoded = decodeConfEntry(e.data);
    if (!decoded) {
      this.log?.warn({ event: 'bad_conf_entry', index: e.index }, 'conf entry did not decode; membership addresses unchanged');
      return;
    }
    const { change, context } = decoded;
    if (change.type === 'removeNode') {
      if (change.nodeId !== this.id) {
        this.members.delete(change.nodeId);
        this.transport.removePeer(change.nodeId);
      }
    } else if (context) {
      this.members.set({ id: change.nodeId, ...context });
      if (change.nodeId !== this.id) this.transport.addPeer({ id: change.nodeId, raftAddress: context.raftAddress });
    }
    this.log?.info(
      { event: 'member_changed', change: change.type, member: change.nodeId, index: e.index, ...(context ?? {}) },
      `membership: ${change.type} ${change.nodeId}`,
    );
  }

  private async restoreSnapshot(snap: Snapshot): Promise<void> {
    const { state, members } = unwrapSnapshotData(snap.data);
    await this.sm.restore({ meta: snap.meta, data: state });
    for (const m of members) {
      if (!this.members.get(m.id)) this.setMemberAddress(m);
    }
    this.applied = snap.meta.index;
    this.lastSnapshotIndex = snap.meta.index;
    this.lastConfIndex = snap.meta.index;
    this.appliedTerms.record(snap.meta.index, snap.meta.term);
    // Proposals covered by the snapshot: their outcome is not knowable here, but every write
    // carries (clientId, seq), so a retry is answered exactly once either way.
    for (const [index, p] of this.pending) {
      if (index > snap.meta.index) continue;
      this.pending.delete(index);
      clearTimeout(p.timer);
      if (index === snap.meta.index && p.term === snap.meta.term) p.resolve(null);
      else p.reject(this.notLeader());
    }
    this.freshness.applied(this.applied);
    this.appliedWaiters.notify(this.applied);
    this.metrics.snapshotsInstalled.inc();
    this.log?.info({ event: 'snapshot_installed', index: snap.meta.index, term: snap.meta.term, bytes: snap.data.length }, 'installed snapshot from leader');
  }

  private maybeSnapshot(): void {
    const { snapshotEntries, snapshotBytes } = this.timings;
    if (this.snapshotting || this.failed || this.stopping) return;
    const entriesDue = snapshotEntries > 0 && this.applied - this.lastSnapshotIndex >= snapshotEntries;
    const bytesDue = snapshotBytes > 0 && this.appliedBytesSinceSnapshot >= snapshotBytes && this.applied > this.lastSnapshotIndex;
    if (!entriesDue && !bytesDue) return;
    this.snapshotting = true;
    this.appliedBytesSinceSnapshot = 0;
    // Captured now, right after advance(): the core's ConfState matches the applied index.
    const conf = this.raw.status().conf;
    const confIndexAtCapture = this.lastConfIndex;
    const members = this.members.list();
    void this.sm
      .snapshot()
      .then(({ index, data }) => {
        // The state machine may have captured a later index; the conf is only valid if no conf
        // entry was applied in between. Otherwise skip: the next round will take one.
        if (index <= this.lastSnapshotIndex || this.lastConfIndex > index || confIndexAtCapture > index || this.lastConfIndex !== confIndexAtCapture) {
          this.snapshotting = false;
          return;
        }
        const term = this.termAt(index);
        if (term === undefined) {
          this.snapshotting = false;
          return;
        }
        this.pendingCompaction = { meta: { index, term, conf }, data: wrapSnapshotData(data, members) };
        this.schedule();
      })
      .catch((err: Error) => {
        this.snapshotting = false;
        this.log?.warn({ event: 'snapshot_failed', err: err.message }, 'state machine snapshot failed; will retry');
      });
  }

  private async compact(snap: Snapshot): Promise<void> {
    try {
      const t0 = performance.now();
      await this.storage.compact(snap, this.timings.retainEntries);
      this.lastSnapshotIndex = snap.meta.index;
      this.metrics.snapshots.inc();
      this.log?.info(
        { event: 'snapshot_taken', index: snap.meta.index, term: snap.meta.term, bytes: snap.data.length, ms: Math.round(performance.now() - t0) },
        'snapshot taken, log compacted',
      );
    } finally {
      this.snapshotting = false;
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.log?.error({ event: 'node_failed', err: err.message, name: err.name }, 'raft node stopped on an unrecoverable error');
    this.failEverything(new ShuttingDownError(this.id));
    this.onFatal?.(err);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private enter(): number {
    if (this.stopping) throw new ShuttingDownError(this.id);
    if (!this.started) throw new NotLeaderError(this.id, '', ''); // still starting: no leader known yet
    this.inflight++;
    return this.now();
  }

  private leave(): void {
    this.inflight--;
    if (this.inflight === 0 && this.drained) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  private checkDeadline(deadline: number, started: number, what: string): void {
    if (typeof deadline !== 'number' || !Number.isFinite(deadline)) throw new InvalidArgumentError('deadline', 'must be a finite number (ms since epoch)');
    if (deadline <= started) throw new DeadlineExceededError(0, what);
  }

  private notLeader(hint?: NodeId): NotLeaderError {
    const leader = hint ?? (this.leaderId === this.id ? '' : this.leaderId);
    return new NotLeaderError(this.id, leader, this.members.clientAddress(leader));
  }

  private lostError(term: number, index: number): Error {
    this.log?.debug?.({ event: 'proposal_lost', term, index }, 'proposal overwritten by another leader');
    // Definitely not applied; the retry (same clientId/seq) goes to the current leader.
    return this.notLeader();
  }

  private mapCoreError(err: unknown): Error {
    if (err instanceof CoreNotLeaderError) return this.notLeader(err.leaderHint === this.id ? '' : err.leaderHint);
    if (err instanceof UncommittedLimitError) return new OverloadedError('uncommitted log entries', err.limit);
    if (err instanceof CoreProposalDroppedError) {
      // Typically a leadership transfer in progress: point the client at the transferee.
      const transferee = this.raw.status().leadTransferee;
      return this.notLeader(transferee && transferee !== this.id ? transferee : '');
    }
    if (err instanceof CoreConfChangeRejectedError) return new ConfChangeRejectedError(err.reason);
    return err as Error;
  }

  private track(term: number, index: number, deadline: number, started: number, what: string): Promise<CommandResult | null> {
    const existing = this.pending.get(index);
    if (existing) {
      // A stale proposal from an earlier term at the same index was necessarily overwritten.
      this.pending.delete(index);
      clearTimeout(existing.timer);
      existing.reject(this.lostError(existing.term, index));
    }
    return new Promise<CommandResult | null>((resolve, reject) => {
      const p: PendingProposal = {
        term,
        resolve,
        reject,
        timer: setTimeout(() => {
          if (this.pending.get(index) === p) this.pending.delete(index);
          this.metrics.proposalsFailed.inc();
          reject(new DeadlineExceededError(deadline - started, what));
        }, Math.max(0, deadline - this.now())),
      };
      this.pending.set(index, p);
    });
  }

  private waitApplied(index: number, deadline: number, started: number, what: string): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        reject(new DeadlineExceededError(deadline - started, what));
      }, Math.max(0, deadline - this.now()));
      this.appliedWaiters.add(index, () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.applied >= index) resolve();
        else reject(new ShuttingDownError(this.id));
      });
    });
  }

  private async readBarrier(options: ReadOptions, started: number): Promise<void> {
    if (!options || typeof options !== 'object') throw new InvalidArgumentError('options', 'read options are required');
    this.checkDeadline(options.deadline, started, 'read');
    switch (options.consistency) {
      case 'linearizable':
        return this.linearizableBarrier(options.deadline, started);
      case 'lease': {
        if (this.role !== 'leader') throw this.notLeader();
        const index = this.raw.leaseReadIndex();
        if (index === null) return this.linearizableBarrier(options.deadline, started);
        return this.waitApplied(index, options.deadline, started, 'lease read');
      }
      case 'follower': {
        if (options.minIndex !== undefined) {
          if (!Number.isInteger(options.minIndex) || options.minIndex < 0) throw new InvalidArgumentError('minIndex', `must be a non-negative integer, got ${options.minIndex}`);
          await this.waitApplied(options.minIndex, options.deadline, started, 'follower read (minIndex)');
        }
        if (options.maxLagMs !== undefined) {
          if (typeof options.maxLagMs !== 'number' || !(options.maxLagMs >= 0)) throw new InvalidArgumentError('maxLagMs', `must be a non-negative number, got ${options.maxLagMs}`);
          const lag = this.followerLagMs();
          if (lag > options.maxLagMs) throw new StaleReadError(this.id, lag, options.maxLagMs);
        }
        return;
      }
      default:
        throw new InvalidArgumentError('consistency', `must be 'linearizable', 'lease' or 'follower', got ${String(options.consistency)}`);
    }
  }

  private async linearizableBarrier(deadline: number, started: number): Promise<void> {
    if (this.reads.pending >= this.maxPendingReads) throw new OverloadedError('pending reads', this.maxPendingReads);
    const index = await new Promise<number>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        reject(new DeadlineExceededError(deadline - started, 'linearizable read'));
      }, Math.max(0, deadline - this.now()));
      this.reads.request().then(
        (i) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(i);
        },
        (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
    await this.waitApplied(index, deadline, started, 'linearizable read');
  }

  private termAt(index: number): number | undefined {
    const t = this.appliedTerms.get(index);
    if (t !== undefined) return t;
    try {
      return this.storage.term(index);
    } catch {
      const snap = this.storage.snapshot().meta;
      return index === snap.index ? snap.term : undefined;
    }
  }

  private outcomeOf(term: number, index: number): WaitOutcome {
    const actual = this.termAt(index);
    if (actual !== undefined) return actual === term ? 'committed' : 'lost';
    // Compacted away. Log terms never decrease with the index, so a receipt newer than the
    // snapshot's term at an index the snapshot covers cannot have been committed.
    const snap = this.storage.snapshot().meta;
    if (index <= snap.index && term > snap.term) return 'lost';
    throw new ReceiptTooOldError(term, index, snap.index);
  }

  /** Rebuilds member addresses from the stored snapshot and the conf entries still in the log. */
  private rebuildMembers(): void {
    const snap = this.storage.snapshot();
    for (const m of unwrapSnapshotData(snap.data).members) {
      if (!this.members.get(m.id)) this.members.set(m);
    }
    this.lastConfIndex = snap.meta.index;
    const first = this.storage.firstIndex();
    const upto = Math.min(this.applied, this.storage.lastIndex());
    if (upto < first) return;
    for (const e of this.storage.entries(first, upto + 1)) {
      if (e.type !== 'conf') continue;
      this.lastConfIndex = e.index;
      const decoded = decodeConfEntry(e.data);
      if (!decoded) continue;
      if (decoded.change.type === 'removeNode') {
        if (decoded.change.nodeId !== this.id) this.members.delete(decoded.change.nodeId);
      } else if (decoded.context) {
        this.members.set({ id: decoded.change.nodeId, ...decoded.context });
      }
    }
  }
}

function coreLogger(log: Logger): RaftLogger {
  return {
    info: (event, fields) => log.info({ event, ...fields }, event),
    warn: (event, fields) => log.warn({ event, ...fields }, event),
  };
}
