// The node runtime: drives one RawNode (the pure Raft core) with a tick timer, persists and
// applies its Ready batches, and implements KvBackend on top. Each concern has its own file:
// proposals and receipts (proposals.ts), reads (reads.ts), snapshots (snapshots.ts), member
// addresses (membership.ts), leadership transfer (leadership-transfer.ts), failback (failback.ts);
// every wait a request parks is bounded by one helper (with-deadline.ts).
//
// The Ready loop runs one batch at a time and is never re-entered: storage.save (one group-commit
// fsync) → restore a received snapshot → send messages → apply committed entries in one batch →
// release read states → advance. Inputs (ticks, peer messages, proposals) only step the core and
// schedule the loop with clock.setImmediate, so everything that arrives during an fsync lands in
// the next Ready and shares the next fsync. Every deferral goes through the Clock (clock.ts), never
// the timer globals: the simulator runs this very runtime over a simulated clock.
import type { Logger } from 'pino';
import {
  ConfChangeRejectedError as CoreConfChangeRejectedError,
  NotLeaderError as CoreNotLeaderError,
  ProposalDroppedError as CoreProposalDroppedError,
  UncommittedLimitError,
} from '../raft/errors.js';
import { RawNode } from '../raft/raw-node.js';
import type { Entry, Message, NodeId, RaftConfig, RaftLogger, ProposalReceipt, RaftStatus, RandomInt, Ready, Snapshot, SoftState } from '../raft/types.js';
import { encodeCommand } from '../storage/codec.js';
import type { CommandResult } from '../api/command.js';
import type { RaftStorage } from '../storage/raft-storage.js';
import type { StateMachine } from '../storage/state-machine.js';
import type { Transport } from '../transport/transport.js';
import { AppliedTerms } from './applied-terms.js';
import { RUNTIME_DEFAULTS } from './defaults.js';
import {
  ConfChangeRejectedError,
  DeadlineExceededError,
  InvalidArgumentError,
  LeaseNotFoundError,
  NotLeaderError,
  OverloadedError,
  ReplicaCorruptedError,
  ShuttingDownError,
  StaleSequenceError,
} from '../api/errors.js';
import { IndexWaiters } from './index-waiters.js';
import { LeaderWaiters } from './leader-waiters.js';
import { TransferWaiters } from './leadership-transfer.js';
import { PendingProposals, receiptOutcome } from './proposals.js';
import { ReadPath } from './reads.js';
import { SnapshotScheduler } from './snapshots.js';
import { type Clock, SYSTEM_CLOCK } from './clock.js';
import { LeaseClock } from './lease-clock.js';
import { withDeadline } from './with-deadline.js';
import type {
  BackupOptions,
  BackupStream,
  GetResult,
  KvBackend,
  LeaseStatus,
  NodeStatus,
  RangeResult,
  ReadOptions,
  WaitOutcome,
  WriteAck,
  WriteRequest,
} from './kv-backend.js';
import { LeaseKeeper } from './lease-keeper.js';
import { type WatchHistoryLimits, WatchHub, type WatchSource } from './watch-hub.js';
import { FailbackPolicy } from './failback.js';
import { LeaderFreshness } from './leader-freshness.js';
import { applyConfToTable, decodeConfEntry, encodeConfContext, type MemberAddress, MemberTable } from './membership.js';
import { type NodeMetrics, noopNodeMetrics } from './metrics.js';
import { PeerAdmission } from './peer-admission.js';
import { decodeMembers, unwrapSnapshotData } from './snapshot-envelope.js';
import { openSnapshotFile, readSnapshotFileHeader } from '../storage/snapshot-file.js';
import { type SnapshotStore, decodeSnapshotRef } from '../storage/snapshot-store.js';
import { ProgressLog } from '../transport/progress-log.js';
import { snapshotFilesFor } from './snapshot-transfer-files.js';
import { stagedSource } from './snapshot-staging.js';
import { backupStream } from './backup-stream.js';

export interface RaftTimings {
  /** Milliseconds per logical tick. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a snapshot and compact the log every this many applied entries (0 = never). */
  snapshotEntries?: number;
  /** ...or once this many bytes of entries were applied since the last one (0 = never; default 64 MiB). */
  snapshotBytes?: number;
  /**
   * A due snapshot waits until the command bytes applied since the last one reach this percent of
   * the last snapshot file's size (0 = never waits; default 25).
   */
  snapshotLogPercent?: number;
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
  /** Where the runtime reports what it does (the server's prom-client registry); default: nowhere. */
  metrics?: NodeMetrics;
  /** How long stop() waits for in-flight requests (default 2000 ms). */
  drainTimeoutMs?: number;
  random?: RandomInt;
  /** Time and timers (default: the system's). The simulator passes a simulated clock. */
  clock?: Clock;
  /** Overrides clock.now (wall-clock ms since epoch), for tests. */
  now?: () => number;
  /** The caller already started the transport (e.g. to learn its bound port); start() won't. */
  transportStarted?: boolean;
  /**
   * Snapshot files (streamed snapshots: Snapshot.data is then a reference into this store). The
   * transport must be given the same store. Without it snapshots are in-memory buffers.
   */
  snapshotStore?: SnapshotStore;
  /** Failback: leadership returns to this voter once it has been caught up for `failbackHoldMs`. */
  preferredLeader?: NodeId;
  /** Default 3000 ms. */
  failbackHoldMs?: number;
  /** The node hit an unrecoverable error (e.g. the disk failed) and stopped serving. */
  onFatal?: (err: Error) => void;
  /**
   * This node applied its own removal from the cluster. Like an etcd member, it should stop: it
   * no longer votes, acks or serves, and only the process can release its ports and data dir.
   */
  onRemoved?: () => void;
  /** The window of applied changes kept for watchers to resume from (events, bytes). */
  watchHistory?: Partial<WatchHistoryLimits>;
  /** The cluster's name, recorded in backups (a restore must give the new cluster another one). */
  clusterName?: string;
  /** Simulator only (a mutation check), passed to the core: see RaftConfig.unsafeRebuildingVotes. Never set it. */
  unsafeRebuildingVotes?: boolean;
}

/** How often a membership change re-asks the core after a refusal that clears by itself. */
const CONF_RETRY_MS = 20;
/** Status calls that may wait for a newer leader at once; past it they answer without waiting. */
const MAX_LEADER_WAITERS = 1024;
/** A snapshot sent to a follower holds the log after it (followerFloor) at most this long. */
const SNAPSHOT_HOLD_MS = 10 * 60_000;

const defaultRandom: RandomInt = (n) => Math.floor(Math.random() * n);

export class RaftNode implements KvBackend {
  readonly id: NodeId;
  /** Where the runtime reports what it does (options.metrics; no-op by default). */
  readonly metrics: NodeMetrics;

  private readonly raw: RawNode;
  private readonly storage: RaftStorage;
  private readonly sm: StateMachine;
  private readonly transport: Transport;
  private readonly log: Logger | undefined;
  private readonly members: MemberTable;
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly leaseClock: LeaseClock;
  private readonly timings: Required<Pick<RaftTimings, 'tickMs' | 'electionTicks' | 'heartbeatTicks'>>;
  private readonly maxPendingProposals: number;
  private readonly slowFsyncMs: number;
  private readonly drainTimeoutMs: number;
  private readonly onFatal: ((err: Error) => void) | undefined;
  private readonly onRemoved: (() => void) | undefined;
  private readonly preferredLeader: NodeId | undefined;
  private readonly transportStarted: boolean;
  private readonly measureSaves: boolean;

  // Role, leader and term are read from the core (this.raw) when needed, never copied: a copy
  // lags the core between a step() and the Ready that reports the change. This is only the soft
  // state last announced in the logs and metrics, to name the previous leader in a change event.
  private announced: SoftState = { role: 'follower', leaderId: '' };
  // invariant: applied === stateMachine.appliedIndex() between Ready batches
  private applied: number;
  /** Index of the last applied conf entry: a snapshot's ConfState must match its index. */
  private lastConfIndex = 0;

  private readonly pending: PendingProposals;
  private readonly appliedWaiters = new IndexWaiters();
  /** Status calls waiting for a leader in a newer term (bounded: see MAX_LEADER_WAITERS). */
  private readonly leaderWaiters: LeaderWaiters;
  private readonly appliedTerms = new AppliedTerms();
  private readonly freshness: LeaderFreshness;
  private readonly reads: ReadPath;
  private readonly snapshots: SnapshotScheduler;
  private readonly snapshotStore: SnapshotStore | undefined;
  private readonly clusterName: string;
  private readonly transfers = new TransferWaiters();
  /** Which peer messages may reach the core (members only, one leader per term): see peer-admission.ts. */
  private readonly admission: PeerAdmission;
  private readonly failback: FailbackPolicy | undefined;
  private ticksSinceFailbackCheck = 0;
  private readonly watchHub: WatchHub;
  private readonly leaseKeeper: LeaseKeeper;

  private timer: unknown;
  private scheduled = false;
  /** Leader: snapshots sent and not yet acknowledged, per follower (followerFloor). */
  private readonly snapshotsSent = new Map<NodeId, { index: number; at: number }>();
  private looping: Promise<void> | undefined;
  private started = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private failed: Error | undefined;
  private inflight = 0;
  private drained: (() => void) | undefined;

  constructor(
    options: RaftNodeOptions,
    /** Members from the stored snapshot's file header (create() reads it; the buffers carry their own). */
    private readonly snapshotFileMembers?: MemberAddress[],
  ) {
    this.id = options.id;
    this.storage = options.storage;
    this.sm = options.stateMachine;
    this.transport = options.transport;
    this.log = options.logger;
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.clock = options.now ? { ...clock, now: options.now } : clock;
    this.leaderWaiters = new LeaderWaiters(this.clock, MAX_LEADER_WAITERS);
    this.now = this.clock.now;
    const t = options.raft;
    for (const field of ['tickMs', 'electionTicks', 'heartbeatTicks'] as const) {
      if (!Number.isInteger(t[field]) || t[field] <= 0) throw new InvalidArgumentError(`raft.${field}`, `must be a positive integer, got ${t[field]}`);
    }
    this.timings = { tickMs: t.tickMs, electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks };
    // The lease lasts the minimum election timeout less a margin for clock-rate drift between
    // nodes (the core's own tick-counted check uses the same margin).
    const electionMs = t.electionTicks * t.tickMs;
    this.leaseClock = new LeaseClock({
      tickMs: t.tickMs,
      leaseMs: electionMs - Math.max(2 * t.tickMs, Math.ceil(electionMs / 5)),
      capacity: 4 * t.electionTicks,
      maxCatchUpTicks: 4 * t.electionTicks,
    });
    this.maxPendingProposals = options.maxPendingProposals ?? RUNTIME_DEFAULTS.maxPendingProposals;
    this.slowFsyncMs = options.slowFsyncMs ?? RUNTIME_DEFAULTS.slowFsyncMs;
    this.drainTimeoutMs = options.drainTimeoutMs ?? RUNTIME_DEFAULTS.drainTimeoutMs;
    this.onFatal = options.onFatal;
    this.onRemoved = options.onRemoved;
    this.preferredLeader = options.preferredLeader;
    this.transportStarted = options.transportStarted ?? false;
    this.measureSaves = options.measureSaves ?? true;
    this.metrics = options.metrics ?? noopNodeMetrics();
    this.members = new MemberTable(options.members);
    this.failback = options.preferredLeader
      ? new FailbackPolicy({
          preferredLeader: options.preferredLeader,
          holdMs: options.failbackHoldMs ?? RUNTIME_DEFAULTS.failbackHoldMs,
          maxLagEntries: RUNTIME_DEFAULTS.failbackMaxLagEntries,
        })
      : undefined;
    this.freshness = new LeaderFreshness(this.now());

    this.applied = this.sm.appliedIndex();
    this.watchHub = new WatchHub(this.id, this.applied, options.watchHistory);
    this.sm.onApply((events) => this.watchHub.append(events));
    this.leaseKeeper = new LeaseKeeper({
      now: () => this.clock.monotonicMs(),
      leases: () => this.sm.leases(),
      lease: (id) => this.sm.lease(id),
      proposeExpiry: (ids) => this.proposeLeaseExpiry(ids),
      retryMs: 2 * t.electionTicks * t.tickMs,
    });
    this.pending = new PendingProposals((term, index) => this.lostError(term, index));
    const snapshotEntries = t.snapshotEntries ?? RUNTIME_DEFAULTS.snapshotEntries;
    this.snapshots = new SnapshotScheduler({
      snapshotEntries,
      snapshotBytes: t.snapshotBytes ?? RUNTIME_DEFAULTS.snapshotBytes,
      snapshotLogPercent: t.snapshotLogPercent ?? RUNTIME_DEFAULTS.snapshotLogPercent,
      retainEntries: t.retainEntries ?? Math.min(snapshotEntries || RUNTIME_DEFAULTS.maxRetainEntries, RUNTIME_DEFAULTS.maxRetainEntries),
      storage: this.storage,
      stateMachine: this.sm,
      metrics: this.metrics,
      logger: this.log,
      termAt: (index) => this.termAt(index),
      lastConfIndex: () => this.lastConfIndex,
      followerFloor: () => this.followerFloor(),
      schedule: () => this.schedule(),
      snapshotStore: options.snapshotStore,
    });
    this.snapshotStore = options.snapshotStore;
    this.clusterName = options.clusterName ?? '';
    if (options.snapshotStore)
      this.transport.setSnapshotFiles?.(snapshotFilesFor(options.snapshotStore, { stateMachine: options.stateMachine, logger: options.logger }));
    const lastSnapshotIndex = this.snapshots.lastSnapshotIndex;

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
      maxCommittedSizePerReady: RUNTIME_DEFAULTS.maxApplyBytesPerReady,
      random: options.random ?? defaultRandom,
      unsafeRebuildingVotes: options.unsafeRebuildingVotes,
      logger: this.log ? coreLogger(this.log) : undefined,
    };
    // The core must not be created before the state machine caught up with the stored snapshot
    // (see start()), but the config's `applied` is only read at construction, so a lagging state
    // machine is restored first by RaftNode.open-style callers; here we refuse the inconsistency.
    if (this.applied < lastSnapshotIndex) {
      throw new InvalidArgumentError(
        'stateMachine',
        `applied index ${this.applied} is behind the stored snapshot ${lastSnapshotIndex}; call RaftNode.create() which restores it first`,
      );
    }
    this.raw = new RawNode(config, this.storage);
    // Older log entries may live on disk only: once storage read back what the core asked for, the
    // core retries (a lagging follower's next batch, a late apply).
    this.storage.onEntriesLoaded?.(() => {
      if (this.stopping || this.failed) return;
      this.raw.entriesLoaded();
      this.schedule();
    });
    this.rebuildMembers();
    this.admission = new PeerAdmission(
      this.id,
      () => this.raw.status().conf,
      () => this.members.list().map((m) => m.id),
      this.log,
    );
    // Conf entries already in the log beyond the applied index name members this node will have.
    const lastIndex = this.storage.lastIndex();
    if (lastIndex > this.applied) this.admission.appended(this.confEntries(Math.max(this.applied + 1, this.storage.firstIndex()), lastIndex + 1));

    this.reads = new ReadPath({
      nodeId: this.id,
      timers: this.clock,
      maxPendingReads: options.maxPendingReads ?? RUNTIME_DEFAULTS.maxPendingReads,
      contextPrefix: `${this.id}-${this.now().toString(36)}`,
      retryAfterMs: t.electionTicks * t.tickMs,
      isLeader: () => this.raw.role === 'leader',
      notLeader: () => this.notLeader(),
      leaseReadIndex: () => {
        // The core counts the lease in ticks; it only holds if the round that grants it was sent
        // less than leaseMs ago by the monotonic clock, judged now, at serve time.
        const lease = this.raw.leaseRead();
        if (!lease || !this.leaseClock.holds(lease.ackedTick, this.clock.monotonicMs())) return null;
        return lease.index;
      },
      issueReadIndex: (context) => {
        try {
          this.raw.readIndex(context);
        } catch (err) {
          this.metrics.readIndexFailures.inc();
          throw this.mapCoreError(err);
        }
        this.metrics.readIndexRounds.inc();
        this.schedule();
      },
      waitApplied: (index, deadline, started, what, signal) => this.waitApplied(index, deadline, started, what, signal),
      followerLagMs: () => this.followerLagMs(),
    });
  }

  /**
   * Creates a node, first restoring the state machine from the stored snapshot if a crash left it
   * behind (the snapshot was saved but the restore did not finish).
   */
  static async create(options: RaftNodeOptions): Promise<RaftNode> {
    const snap = options.storage.snapshot();
    const ref = decodeSnapshotRef(snap.data);
    const store = options.snapshotStore;
    let fileMembers: MemberAddress[] | undefined;
    if (ref) {
      if (!store) throw new Error(`the stored snapshot ${ref.name} is a snapshot file but the node was given no snapshotStore`);
      // Files the log never adopted (a crash between receiving or writing one and saving it).
      await store.retainOnly(ref, true);
    } else {
      await store?.retainOnly(undefined, true);
    }
    if (snap.meta.index > options.stateMachine.appliedIndex()) {
      if (ref) fileMembers = await restoreFromFile(options, ref, snap.meta, 'snapshot_restore_at_start');
      else {
        const { state } = unwrapSnapshotData(snap.data);
        await options.stateMachine.restore({ meta: snap.meta, data: state });
      }
      options.logger?.info({ event: 'snapshot_restored_at_start', index: snap.meta.index }, 'state machine restored from stored snapshot');
    } else if (ref) {
      fileMembers = decodeMembers((await readSnapshotFileHeader(store!, ref)).app);
    }
    return new RaftNode(options, fileMembers);
  }

  /** Starts the transport, the tick timer and the Ready loop. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.transport.onMessage((m) => this.onPeerMessage(m));
    // The transport asks before it decodes a batch or buffers a snapshot from a sender.
    this.transport.setAdmission?.({
      isMember: (id) => this.admission.isMember(id) || this.admission.isVouchedLeader(id) || (id !== '' && id === this.raw.leaderId),
      admits: (m) => this.admission.check(m, this.raw) === undefined,
    });
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
    this.leaseClock.start(this.clock.monotonicMs());
    this.timer = this.clock.setInterval(() => this.onTick(), this.timings.tickMs);
    this.log?.info(
      { event: 'node_started', id: this.id, applied: this.applied, term: this.raw.status().term, snapshotIndex: this.snapshots.lastSnapshotIndex },
      'raft node started',
    );
    // A freshly bootstrapped cluster has no leader to wait for: the preferred leader campaigns at
    // once instead of after an election timeout (campaigning early is always safe), so the
    // cluster is ready sooner and starts out led by the node failback would move leadership to.
    const s = this.raw.status();
    if (this.failback && this.preferredLeader === this.id && s.term === 0 && s.conf.voters.includes(this.id)) this.raw.campaign();
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
      if (this.raw.role !== 'leader') throw this.notLeader();
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
      let receipt: ProposalReceipt;
      try {
        receipt = this.raw.propose(data);
      } catch (err) {
        this.metrics.proposalsFailed.inc();
        throw this.mapCoreError(err);
      }
      this.metrics.proposals.inc();
      this.schedule();
      if (request.durability === 'async') return { term: receipt.term, index: receipt.index };
      const result = await this.track(receipt.term, receipt.index, request.deadline, started, 'write', request.signal);
      // null: the entry was committed but reached this node inside a snapshot, so its result is
      // unknown here; a retry with the same (clientId, seq) returns it.
      if (!result) return { term: receipt.term, index: receipt.index };
      if (result.result.op === 'error') {
        if (result.result.name === 'StaleSequenceError') throw new StaleSequenceError(request.command.clientId, request.command.seq);
        if (result.result.name === 'LeaseNotFoundError') throw new LeaseNotFoundError(result.result.lease ?? 0);
        if (result.result.name === 'LeaseLimitError') throw new OverloadedError(result.result.message, 0);
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
      const kv = await this.sm.get(key).catch((err: unknown) => Promise.reject(this.readFailure(err)));
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
      const res = await this.sm.scan({ start, end, limit }).catch((err: unknown) => Promise.reject(this.readFailure(err)));
      return { nodeId: this.id, appliedIndex: this.sm.appliedIndex(), ...res };
    } finally {
      this.leave();
    }
  }

  async waitFor(term: number, index: number, deadline: number, signal?: AbortSignal): Promise<WaitOutcome> {
    const started = this.enter();
    try {
      if (!Number.isInteger(term) || term <= 0) throw new InvalidArgumentError('term', `must be a positive integer, got ${term}`);
      if (!Number.isInteger(index) || index <= 0) throw new InvalidArgumentError('index', `must be a positive integer, got ${index}`);
      this.checkDeadline(deadline, started, 'waitFor');
      await this.waitApplied(index, deadline, started, 'waitFor', signal);
      return this.outcomeOf(term, index);
    } finally {
      this.leave();
    }
  }

  async awaitLeaderAbove(term: number, deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.stopping || this.failed) return;
    const s = this.raw.status();
    if (s.leaderId !== '' && s.term > term) return;
    await this.leaderWaiters.wait(term, deadline, signal);
  }

  async status(): Promise<NodeStatus> {
    const s = this.raw.status();
    const member = (id: NodeId, voter: boolean) => ({
      id,
      clientAddress: this.members.clientAddress(id),
      voter,
      raftAddress: this.members.get(id)?.raftAddress ?? '',
    });
    const members = [...s.conf.voters.map((id) => member(id, true)), ...s.conf.learners.map((id) => member(id, false))];
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

  async transferLeadership(to: NodeId, deadline: number, signal?: AbortSignal): Promise<void> {
    const started = this.enter();
    try {
      const conf = this.raw.status().conf;
      if (!conf.voters.includes(to))
        throw new InvalidArgumentError('to', `${JSON.stringify(to)} is not a voter of this cluster (voters: ${conf.voters.join(', ')})`);
      if (this.raw.leaderId === to) return;
      if (this.raw.role !== 'leader') throw this.notLeader();
      this.checkDeadline(deadline, started, 'transferLeadership');
      const waiter = this.transfers.wait(to);
      try {
        this.raw.transferLeadership(to);
      } catch (err) {
        waiter.cancel();
        throw this.mapCoreError(err);
      }
      this.log?.info({ event: 'leadership_transfer_requested', from: this.id, to }, 'leadership transfer requested');
      this.schedule();
      await withDeadline(
        waiter.done,
        deadline,
        this.clock,
        () => new DeadlineExceededError(deadline - started, `leadership transfer to ${to}`),
        waiter.cancel,
        signal,
      );
    } finally {
      this.leave();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Leases (expiry: lease-keeper.ts) and watches (watch-hub.ts)

  async keepAliveLease(id: number, deadline: number, signal?: AbortSignal): Promise<number> {
    const started = this.enter();
    try {
      if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError('lease', `must be a positive lease id, got ${id}`);
      if (this.raw.role !== 'leader') throw this.notLeader();
      // A deposed leader must not tell a client its lease was renewed: confirm leadership first.
      await this.readBarrier({ consistency: 'linearizable', deadline, ...(signal ? { signal } : {}) }, started);
      if (this.raw.role !== 'leader') throw this.notLeader();
      return this.leaseKeeper.keepAlive(id);
    } finally {
      this.leave();
    }
  }

  async leases(id: number | undefined, deadline: number, signal?: AbortSignal): Promise<LeaseStatus[]> {
    const started = this.enter();
    try {
      if (this.raw.role !== 'leader') throw this.notLeader();
      await this.readBarrier({ consistency: 'linearizable', deadline, ...(signal ? { signal } : {}) }, started);
      const list = id === undefined ? this.sm.leases() : [this.sm.lease(id)].filter((l) => l !== undefined);
      if (id !== undefined && list.length === 0) throw new LeaseNotFoundError(id);
      return list.map((l) => ({ ...l, remainingMs: this.leaseKeeper.remainingMs(l) }));
    } finally {
      this.leave();
    }
  }

  watchSource(): WatchSource {
    return this.watchHub;
  }

  /**
   * A backup of this node's state: a point-in-time view of the state machine, streamed as a
   * backup file. From the leader (default) the view is taken after a read barrier, so it holds
   * every write acknowledged before the call; `anyNode` takes this node's applied state as it is.
   */
  async backup(options: BackupOptions): Promise<BackupStream> {
    const started = this.enter();
    try {
      const sm = this.sm;
      if (!sm.snapshotStream) throw new InvalidArgumentError('backup', `node ${this.id}'s state machine cannot stream snapshots`);
      if (!options.anyNode && this.raw.role !== 'leader') throw this.notLeader();
      await this.readBarrier(
        options.anyNode
          ? { consistency: 'follower', deadline: options.deadline }
          : { consistency: 'linearizable', deadline: options.deadline, ...(options.signal ? { signal: options.signal } : {}) },
        started,
      );
      const stream = await sm.snapshotStream();
      // Informational (a restore sets the new cluster's membership from its config): a conf change
      // applied while the view was being opened may or may not show here.
      const conf = this.raw.status().conf;
      const members = this.members.list().filter((m) => conf.voters.includes(m.id) || conf.learners.includes(m.id));
      return backupStream(stream, {
        nodeId: this.id,
        conf,
        members,
        cluster: this.clusterName,
        term: this.termAt(stream.applied.index) ?? stream.applied.term,
        estimatedBytes: decodeSnapshotRef(this.storage.snapshot().data)?.bytes ?? 0,
      });
    } finally {
      this.leave();
    }
  }

  private proposeLeaseExpiry(ids: number[]): void {
    try {
      this.raw.propose(encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op: { op: 'leaseExpire', ids } }));
      this.log?.info({ event: 'leases_expiring', ids: ids.slice(0, 16), count: ids.length }, `proposing expiry of ${ids.length} lease(s)`);
      this.schedule();
    } catch (err) {
      // Not leader any more, or the log is full: the next leader (or the next try) expires them.
      this.log?.warn({ event: 'lease_expiry_not_proposed', count: ids.length, err: (err as Error).message }, 'could not propose lease expiry');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Membership (leader only). Resolve once the change is applied on this node.

  async addMember(
    id: NodeId,
    raftAddress: string,
    clientAddress: string,
    options: { learner?: boolean; deadline?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('id', 'must be a non-empty string');
    const learner = options.learner === true;
    const known = this.members.get(id);
    if (raftAddress === '' && clientAddress === '') {
      // Promotion by id alone: the learner's addresses are already in the member table. Only the
      // leader's configuration can tell whether id is a learner (a follower's may lag).
      if (this.raw.role !== 'leader') throw this.notLeader();
      const conf = this.raw.status().conf;
      if (learner || !known || !(conf.learners.includes(id) || conf.voters.includes(id))) {
        throw new InvalidArgumentError('raftAddress', `is required unless promoting a current learner (${id} is not one)`);
      }
      raftAddress = known.raftAddress;
      clientAddress = known.clientAddress;
    }
    // Only shape-checked here: the transport validates the address it can actually dial.
    if (typeof raftAddress !== 'string' || !/^\S+$/.test(raftAddress))
      throw new InvalidArgumentError('raftAddress', `must be a host:port, got ${JSON.stringify(raftAddress)}`);
    if (typeof clientAddress !== 'string' || !/^\S+$/.test(clientAddress))
      throw new InvalidArgumentError('clientAddress', `must be a host:port, got ${JSON.stringify(clientAddress)}`);
    // Already so (e.g. a client retrying a change whose reply it lost): nothing to propose.
    const satisfied = () => {
      const conf = this.raw.status().conf;
      const current = this.members.get(id);
      return (learner ? conf.learners : conf.voters).includes(id) && current?.raftAddress === raftAddress && current.clientAddress === clientAddress;
    };
    await this.changeMembership(
      { type: learner ? 'addLearner' : 'addVoter', nodeId: id, context: encodeConfContext({ raftAddress, clientAddress }) },
      options.deadline ?? this.now() + 10_000,
      satisfied,
      options.signal,
    );
  }

  async removeMember(id: NodeId, options: { deadline?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('id', 'must be a non-empty string');
    const satisfied = () => {
      const conf = this.raw.status().conf;
      return !conf.voters.includes(id) && !conf.learners.includes(id);
    };
    await this.changeMembership({ type: 'removeNode', nodeId: id }, options.deadline ?? this.now() + 10_000, satisfied, options.signal);
  }

  private async changeMembership(
    cc: Parameters<RawNode['proposeConfChange']>[0],
    deadline: number,
    satisfied: () => boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const started = this.enter();
    try {
      this.checkDeadline(deadline, started, 'membership change');
      if (this.raw.role !== 'leader') throw this.notLeader();
      // Judged on the leader's applied configuration, after the leadership check: a follower's may lag.
      if (satisfied()) return;
      let receipt: ProposalReceipt;
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
        await new Promise((resolve) => this.clock.setTimeout(() => resolve(undefined), CONF_RETRY_MS));
        if (this.stopping) throw new ShuttingDownError(this.id);
        if (this.raw.role !== 'leader') throw this.notLeader();
        if (satisfied()) return;
      }
      this.schedule();
      await this.track(receipt.term, receipt.index, deadline, started, 'membership change', signal);
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
    return s.leaderId !== '' && this.sm.appliedIndex() >= s.commit && !this.failed && !this.stopping && !this.sm.corruption?.();
  }

  /** Milliseconds this node may be behind the leader (0 on the leader). */
  followerLagMs(): number {
    return this.raw.role === 'leader' ? 0 : this.freshness.lagMs(this.now());
  }

  get pendingProposals(): number {
    return this.pending.size;
  }

  /** Peer messages dropped before the core saw them (not a member, not the leader of the term, …). */
  get refusedPeerMessages(): number {
    return this.admission.refusedTotal;
  }

  /** Requests parked in the runtime: sync writes, applied-index waiters, reads waiting for a read index. */
  get parkedWaits(): number {
    return this.pending.size + this.appliedWaiters.size + this.reads.pending;
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
        const timer = this.clock.setTimeout(resolve, this.drainTimeoutMs);
        this.drained = () => {
          this.clock.clearTimeout(timer);
          resolve();
        };
      });
    }
    if (this.timer) this.clock.clearInterval(this.timer);
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
    this.pending.failAll(err);
    this.reads.failAll(err);
    this.appliedWaiters.releaseAll();
    this.leaderWaiters.releaseAll();
    this.transfers.releaseAll();
    this.watchHub.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  private onTick(): void {
    if (this.failed) return;
    // Feed the ticks the elapsed monotonic time is due: after a stall (GC, SIGSTOP, a long
    // synchronous task) the missed ones are caught up, bounded, so check-quorum and elections see
    // the time that passed. Each tick's start time is recorded for the lease (lease-clock.ts).
    const mono = this.clock.monotonicMs();
    const due = this.leaseClock.ticksDue(mono);
    if (due === 0) return;
    if (due > this.timings.electionTicks) {
      this.log?.warn({ event: 'ticks_caught_up', ticks: due, tickMs: this.timings.tickMs }, 'timers ran late: caught up missed ticks');
    }
    for (let i = 0; i < due; i++) {
      this.leaseClock.recordTick(this.raw.tickCount + 1, mono);
      this.raw.tick();
    }
    // A leader's heartbeats must not wait behind a slow fsync or apply in the Ready loop: when the
    // core says they are independent of the outstanding write, send them now.
    if (this.raw.role === 'leader') {
      const early = this.raw.takeLeaderMessages();
      if (early.length > 0) this.sendToPeers(early);
    }
    this.reads.tick();
    this.leaseKeeper.tick(this.raw.role === 'leader' && !this.stopping);
    this.maybeFailBack();
    this.schedule();
  }

  /** On the leader, about every heartbeat: hand leadership back to the preferred node when it is ready. */
  private maybeFailBack(): void {
    if (!this.failback || this.raw.role !== 'leader' || this.stopping) return;
    if (++this.ticksSinceFailbackCheck < this.timings.heartbeatTicks) return;
    this.ticksSinceFailbackCheck = 0;
    const target = this.failback.decide(this.raw.status(), this.now());
    if (!target) return;
    this.log?.info({ event: 'failback', from: this.id, to: target }, `failback: handing leadership back to preferred node ${target}`);
    this.raw.transferLeadership(target);
  }

  private onPeerMessage(m: Message): void {
    if (this.failed || !this.timer) return;
    if (!this.admission.admit(m, this.raw)) return;
    if (m.leaderHint !== undefined) this.learnLeaderFromMember(m);
    if ((m.type === 'app' || m.type === 'heartbeat') && m.term >= this.raw.term) {
      // A heartbeat's `commit` is capped at our match; its leaderCommit is the leader's real one.
      this.freshness.heard(m.type === 'heartbeat' ? (m.leaderCommit ?? m.commit) : m.commit, this.now(), this.applied);
    }
    try {
      this.raw.step(m);
    } catch (err) {
      // The core promises never to throw on peer input; if it does, drop the message, keep serving.
      this.log?.warn({ event: 'step_failed', from: m.from, type: m.type, err: (err as Error).message }, 'dropped a message the core rejected');
    }
    // A follower answers a heartbeat at once, even while its Ready loop waits on a slow fsync, when
    // the core says the answer does not depend on that write (RawNode.takeHeartbeatResponses).
    if (m.type === 'heartbeat') {
      const answers = this.raw.takeHeartbeatResponses();
      if (answers.length > 0) this.sendToPeers(answers);
    }
    this.schedule();
  }

  /**
   * A voter refused our (pre-)vote and named the leader it follows in that term. When that leader
   * is not a member in our view, we lag behind the change that added it: accept its traffic for that
   * term (the voter is trusted as a member; one leader per term still holds) and learn where to
   * answer it, or we would refuse it for ever and it could never send us that change.
   */
  private learnLeaderFromMember(m: Message): void {
    const leader = m.leaderHint;
    if (leader === undefined || leader === this.id || (m.type !== 'voteResp' && m.type !== 'preVoteResp') || !m.reject) return;
    if (!this.admission.vouch(m.term, leader, m.from)) return;
    this.log?.info(
      { event: 'leader_vouched', leader, term: m.term, by: m.from, address: m.leaderAddress ?? null },
      `accepting ${leader} as leader of term ${m.term} on ${m.from}'s word: this node has not yet applied the change that made it a member`,
    );
    if (m.leaderAddress === undefined || this.members.get(leader)) return;
    try {
      this.transport.addPeer({ id: leader, raftAddress: m.leaderAddress });
    } catch (err) {
      this.log?.warn(
        { event: 'leader_address_refused', leader, address: m.leaderAddress, err: (err as Error).message },
        'the vouched leader address is not usable',
      );
    }
  }

  /** Hands messages to the transport. A refusal that names our leader carries its address too (see learnLeaderFromMember). */
  private sendToPeers(messages: Message[]): void {
    for (const m of messages) {
      if (m.type === 'snap' && m.snapshot) this.snapshotsSent.set(m.to, { index: m.snapshot.meta.index, at: this.now() });
      if (m.leaderHint === undefined) continue;
      const address = this.members.get(m.leaderHint)?.raftAddress;
      if (address) m.leaderAddress = address;
    }
    this.transport.send(messages);
  }

  /**
   * Runs the Ready loop soon. With no loop running, no Ready and no compaction there is nothing to
   * run: an idle node's ticks would otherwise cost a setImmediate and an event-loop turn each (100
   * a second at a 10 ms tick). While a loop runs it is scheduled as before, since the loop may be
   * past its last look at the core and only waiting to clear `looping`.
   */
  private schedule(): void {
    if (this.scheduled || this.failed || (this.stopping && !this.timer)) return;
    if (!this.looping && !this.raw.hasReady() && !this.snapshots.compactionPending) return;
    this.scheduled = true;
    this.clock.setImmediate(() => {
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
        const snap = this.snapshots.takeCompaction();
        if (snap) {
          // Not awaited: writing the snapshot can take a while, and the Ready loop (which carries
          // the heartbeats) must keep going. Storage orders the short log switch with saves itself.
          void this.snapshots.compact(snap).catch((err: Error) => {
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
    if (rd.entries.length > 0) this.admission.appended(rd.entries);

    // A leader's appends go out while its own fsync runs; everything else waits for durability.
    const sentEarly = rd.sendBeforePersist && rd.messages.length > 0;
    if (sentEarly) this.sendToPeers(rd.messages);
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      const t0 = performance.now();
      // Only the commit index moved: written without waiting for an fsync (see StorageUpdate.sync).
      const sync = rd.mustSync || rd.snapshot !== undefined;
      await this.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, sync });
      const ms = performance.now() - t0;
      if (this.measureSaves && sync) this.metrics.fsyncSeconds.observe(ms / 1000);
      if (this.measureSaves && sync && ms >= this.slowFsyncMs) {
        this.log?.warn({ event: 'slow_fsync', ms: Math.round(ms), entries: rd.entries.length }, 'slow log save');
      }
    }
    if (rd.snapshot) await this.restoreSnapshot(rd.snapshot);
    if (!sentEarly && rd.messages.length > 0) this.sendToPeers(rd.messages);
    if (rd.committedEntries.length > 0) await this.applyCommitted(rd.committedEntries);
    for (const rs of rd.readStates) this.reads.onReadState(rs.context, rs.index);
    this.raw.advance(rd);
    // The core applies conf changes in advance(): only now does its configuration match.
    if (rd.snapshot || rd.committedEntries.some((e) => e.type === 'conf')) this.admission.confChanged(this.applied);
    if (!this.failed && !this.stopping) {
      // Captured now, right after advance(): the core's ConfState matches the applied index.
      this.snapshots.maybeStart(this.applied, () => ({ conf: this.raw.status().conf, members: this.members.list() }));
    }
  }

  private onSoftState(ss: SoftState): void {
    const previous = this.announced;
    this.announced = ss;
    if (ss.leaderId !== previous.leaderId) {
      this.metrics.leaderChanges.inc();
      this.log?.info(
        { event: 'leader_changed', id: this.id, leader: ss.leaderId || null, previous: previous.leaderId || null, role: ss.role },
        ss.leaderId ? `leader is now ${ss.leaderId}` : 'leader lost',
      );
    }
    if (previous.role === 'leader' && ss.role !== 'leader') {
      this.log?.info({ event: 'stepped_down', id: this.id, pending: this.pending.size }, 'no longer leader');
    }
    this.transfers.leaderSeen(ss.leaderId);
    if (ss.leaderId !== '') this.leaderWaiters.notify(this.raw.status().term);
  }

  private async applyCommitted(entries: Entry[]): Promise<void> {
    const started = performance.now();
    const results = await this.sm.apply(entries);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      this.snapshots.noteApplied(e.data.length);
      this.appliedTerms.record(e.index, e.term);
      if (e.type === 'conf') this.applyConfEntry(e);
      this.pending.applied(e.index, e.term, results[i]);
    }
    this.applied = entries[entries.length - 1]!.index;
    this.metrics.appliedEntries.inc(entries.length);
    this.freshness.applied(this.applied);
    this.appliedWaiters.notify(this.applied);
    this.watchHub.advance(this.applied);
    this.metrics.applySeconds.observe((performance.now() - started) / 1000);
  }

  private applyConfEntry(e: Entry): void {
    this.lastConfIndex = e.index;
    const decoded = decodeConfEntry(e.data);
    if (!decoded) {
      this.log?.warn({ event: 'bad_conf_entry', index: e.index }, 'conf entry did not decode; membership addresses unchanged');
      return;
    }
    const { change, context } = decoded;
    const applied = applyConfToTable(this.members, decoded, this.id);
    if (applied.kind === 'removed') this.transport.removePeer(applied.id);
    if (applied.kind === 'added' && applied.member.id !== this.id) this.transport.addPeer({ id: applied.member.id, raftAddress: applied.member.raftAddress });
    this.log?.info(
      { event: 'member_changed', change: change.type, member: change.nodeId, index: e.index, ...(context ?? {}) },
      `membership: ${change.type} ${change.nodeId}`,
    );
    if (change.type === 'removeNode' && change.nodeId === this.id) {
      // Ids are reused: a node removed once and added back later replays its old removal while it
      // catches up from the log. That removal is history, not the node's fate, when a later entry
      // it already holds adds it back (found by the simulator: the re-added node shut down).
      if (this.addedBackAfter(e.index)) {
        this.log?.info(
          { event: 'old_removal_replayed', id: this.id, index: e.index },
          `replayed this node's earlier removal at index ${e.index}; the log adds it back later`,
        );
        return;
      }
      this.log?.warn(
        { event: 'removed_from_cluster', id: this.id, index: e.index },
        `node ${this.id} was removed from the cluster at index ${e.index}; shutting down (its data dir is no longer a member's: delete it before reusing this id)`,
      );
      // After this Ready completes: the entry is applied and persisted either way.
      this.clock.setImmediate(() => this.onRemoved?.());
    }
  }

  /** Whether a conf entry after `index` in the log adds this node back (as voter or learner). */
  private addedBackAfter(index: number): boolean {
    const last = this.storage.lastIndex();
    if (last <= index) return false;
    let entries: Entry[];
    try {
      entries = this.confEntries(Math.max(index + 1, this.storage.firstIndex()), last + 1);
    } catch {
      return false;
    }
    return entries.some((x) => {
      if (x.type !== 'conf') return false;
      const change = decodeConfEntry(x.data)?.change;
      return change !== undefined && change.nodeId === this.id && change.type !== 'removeNode';
    });
  }

  private async restoreSnapshot(snap: Snapshot): Promise<void> {
    const started = performance.now();
    const ref = decodeSnapshotRef(snap.data);
    let members: MemberAddress[];
    if (ref) {
      members = await restoreFromFile({ snapshotStore: this.snapshotStore, stateMachine: this.sm, logger: this.log }, ref, snap.meta, 'snapshot_install');
      // The log now rests on this file: older ones go once no transfer reads them.
      await this.snapshotStore?.retainOnly(ref);
    } else {
      const unwrapped = unwrapSnapshotData(snap.data);
      members = unwrapped.members;
      await this.sm.restore({ meta: snap.meta, data: unwrapped.state });
    }
    for (const m of members) {
      if (!this.members.get(m.id)) this.setMemberAddress(m);
    }
    this.applied = snap.meta.index;
    this.watchHub.reset(snap.meta.index);
    this.snapshots.installed(snap.meta.index);
    this.lastConfIndex = snap.meta.index;
    this.appliedTerms.record(snap.meta.index, snap.meta.term);
    this.pending.snapshotInstalled(snap.meta.index, snap.meta.term, () => this.notLeader());
    this.freshness.applied(this.applied);
    this.appliedWaiters.notify(this.applied);
    this.metrics.snapshotsInstalled.inc();
    this.metrics.snapshotInstallSeconds.observe((performance.now() - started) / 1000);
    // A streamed snapshot's data is a reference to its file: count the file's bytes.
    const bytes = ref ? ref.bytes : snap.data.length;
    this.metrics.snapshotInstallBytes.inc(bytes);
    this.log?.info({ event: 'snapshot_installed', index: snap.meta.index, term: snap.meta.term, bytes }, 'installed snapshot from leader');
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.stopping = true;
    if (this.timer) this.clock.clearInterval(this.timer);
    this.timer = undefined;
    this.log?.error({ event: 'node_failed', err: err.message, errorName: err.name }, 'raft node stopped on an unrecoverable error');
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
    const current = this.raw.leaderId;
    const leader = hint ?? (current === this.id ? '' : current);
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

  private track(term: number, index: number, deadline: number, started: number, what: string, signal?: AbortSignal): Promise<CommandResult | null> {
    const proposal = this.pending.track(term, index);
    return withDeadline(
      proposal.result,
      deadline,
      this.clock,
      () => {
        this.metrics.proposalsFailed.inc();
        return new DeadlineExceededError(deadline - started, what);
      },
      proposal.cancel,
      signal,
    );
  }

  private waitApplied(index: number, deadline: number, started: number, what: string, signal?: AbortSignal): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    let waiter: ReturnType<IndexWaiters['add']> | undefined;
    const reached = new Promise<void>((resolve, reject) => {
      waiter = this.appliedWaiters.add(index, () => {
        if (this.applied >= index) resolve();
        else reject(new ShuttingDownError(this.id)); // released by shutdown
      });
    });
    return withDeadline(
      reached,
      deadline,
      this.clock,
      () => new DeadlineExceededError(deadline - started, what),
      () => {
        if (waiter) this.appliedWaiters.remove(waiter);
      },
      signal,
    );
  }

  private async readBarrier(options: ReadOptions, started: number): Promise<void> {
    if (!options || typeof options !== 'object') throw new InvalidArgumentError('options', 'read options are required');
    this.checkDeadline(options.deadline, started, 'read');
    const damage = this.sm.corruption?.();
    if (damage) throw new ReplicaCorruptedError(this.id, damage.message); // known damaged: refuse before waiting
    await this.reads.barrier(options, started);
  }

  /** The state machine refused a read because its data is damaged: the client gets ReplicaCorruptedError, never the data. */
  private readFailure(err: unknown): Error {
    return this.sm.corruption?.() ? new ReplicaCorruptedError(this.id, (err as Error).message) : (err as Error);
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
    return receiptOutcome(term, index, { termAt: (i) => this.termAt(i), snapshot: this.storage.snapshot().meta });
  }

  /**
   * Leader only: the lowest index of a snapshot sent to a follower that has not acknowledged it yet
   * (see SnapshotScheduler): its transfer and then its install (30 s for 2 GB here, during which it
   * answers nothing) must not lose the log after it. A follower that is merely behind, or whose
   * snapshot was sent more than SNAPSHOT_HOLD_MS ago, holds nothing.
   */
  private followerFloor(): number | undefined {
    const s = this.raw.status();
    if (s.role !== 'leader' || !s.progress) {
      this.snapshotsSent.clear();
      return undefined;
    }
    let floor: number | undefined;
    for (const [id, sent] of [...this.snapshotsSent]) {
      const p = s.progress[id];
      if (!p || p.match >= sent.index || this.now() - sent.at > SNAPSHOT_HOLD_MS) {
        this.snapshotsSent.delete(id);
        continue;
      }
      floor = floor === undefined ? sent.index : Math.min(floor, sent.index);
    }
    for (const [id, p] of Object.entries(s.progress)) {
      if (id === this.id || p.state !== 'snapshot' || p.pendingSnapshot === undefined) continue;
      floor = floor === undefined ? p.pendingSnapshot : Math.min(floor, p.pendingSnapshot);
    }
    return floor;
  }

  /** The conf entries among [lo, hi) of the durable log (in memory even when older entries are not). */
  private confEntries(lo: number, hi: number): Entry[] {
    if (this.storage.confEntries) return this.storage.confEntries(lo, hi);
    return this.storage.entries(lo, hi).filter((e) => e.type === 'conf');
  }

  /** Rebuilds member addresses from the stored snapshot and the conf entries still in the log. */
  private rebuildMembers(): void {
    const snap = this.storage.snapshot();
    for (const m of this.snapshotFileMembers ?? unwrapSnapshotData(snap.data).members) {
      if (!this.members.get(m.id)) this.members.set(m);
    }
    this.lastConfIndex = snap.meta.index;
    const first = this.storage.firstIndex();
    const upto = Math.min(this.applied, this.storage.lastIndex());
    if (upto < first) return;
    for (const e of this.confEntries(first, upto + 1)) {
      this.lastConfIndex = e.index;
      const decoded = decodeConfEntry(e.data);
      if (decoded) applyConfToTable(this.members, decoded, this.id);
    }
  }
}

/** Streams a stored snapshot file into the state machine (which swaps it in only after the whole file checked out). */
async function restoreFromFile(
  options: Pick<RaftNodeOptions, 'snapshotStore' | 'stateMachine' | 'logger'>,
  ref: NonNullable<ReturnType<typeof decodeSnapshotRef>>,
  meta: { index: number; term: number },
  event: string,
): Promise<MemberAddress[]> {
  const store = options.snapshotStore;
  const sm = options.stateMachine;
  if (!store || !sm.restoreStream) throw new Error(`snapshot ${ref.name} is a file but this node has no snapshot store or streaming state machine`);
  const progress = new ProgressLog(options.logger, event, { index: meta.index, file: ref.name }, ref.bytes);
  // Built while the file arrived (snapshot-staging.ts): only the swap is left.
  if (sm.installStaged) {
    const header = await readSnapshotFileHeader(store, ref);
    if (await sm.installStaged({ index: meta.index, term: meta.term }, stagedSource(ref))) {
      progress.done(ref.bytes, { staged: true });
      return decodeMembers(header.app);
    }
  }
  const { header, chunks } = await openSnapshotFile(store, ref);
  let read = 0;
  async function* counted() {
    for await (const chunk of chunks) {
      for (const [k, v] of chunk) read += k.length + v.length;
      progress.update(read);
      yield chunk;
    }
  }
  await sm.restoreStream({ index: meta.index, term: meta.term }, counted());
  progress.done(ref.bytes, { pairBytes: read });
  return decodeMembers(header.app);
}

function coreLogger(log: Logger): RaftLogger {
  return {
    info: (event, fields) => log.info({ event, ...fields }, event),
    warn: (event, fields) => log.warn({ event, ...fields }, event),
  };
}
