// The simulated cluster over the REAL runtime: N RaftNodes (src/runtime/raft-node.ts, unchanged)
// over memory storage or the real durable log (FileRaftStorage over a strict MemoryFs), the real
// MemoryStateMachine, a simulated network (sim-network.ts) and simulated clocks (sim-clock.ts).
// Every fault and every client operation is drawn from one seed, and every event runs from one
// queue, so one seed replays one run exactly.
//
// Clients use only the runtime's KvBackend methods: sync writes with (clientId, seq) sessions and
// retries, async writes with waitFor, linearizable / lease / follower reads, membership changes,
// leadership transfers. Faults: loss, duplication, delay, reordering, partitions (split, one-way,
// one link, isolated leader), crashes between events and at points inside the Ready loop (before
// or after a save, part-way through a send, after an apply, right after granting a vote), slow
// disks, clock-rate drift, processes frozen like SIGSTOP (timers stop, monotonic time does not),
// disks that lose what was not fsynced, tear writes and fail fsyncs, and nodes that lose their
// whole disk (amnesia). The checkers (checkers.ts) run on what the nodes durably hold and what
// clients observe; the first violation stops the run.
import type { Logger } from 'pino';
import { NotLeaderError, StaleSequenceError } from '../../src/api/errors.js';
import type { ConfChangeType, ConfState, HardState, Message, NodeId, RaftStatus, Recovery, Role } from '../../src/raft/types.js';
import type { MemberAddress } from '../../src/runtime/membership.js';
import { RaftNode } from '../../src/runtime/raft-node.js';
import { StorageFailedError } from '../../src/storage/errors.js';
import { FileRaftStorage } from '../../src/storage/file-raft-storage.js';
import { type CrashPolicy, MemoryFs, memoryFsError } from '../../src/storage/memory-fs.js';
import { MemoryRaftStorage } from '../../src/storage/memory-raft-storage.js';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import { SnapshotStore } from '../../src/storage/snapshot-store.js';
import type { RaftStorage } from '../../src/storage/raft-storage.js';
import {
  type AckRecord,
  type AppliedRecord,
  type CommittedEntry,
  type LeaderObservation,
  type LogView,
  type ReadObservation,
  SimViolationError,
  type Violation,
  checkAckedWritesSurvive,
  checkDurability,
  checkElectionSafety,
  checkExactlyOnce,
  checkLeaderCompleteness,
  checkLinearizableRead,
  checkLiveness,
  checkLogMatching,
  checkStateMachineSafety,
  checkWaitOutcome,
  livenessReached,
} from './checkers.js';
import { Prng } from './prng.js';
import { NodeClock, type ResumeOrder, SimProcess, SimScheduler } from './sim-clock.js';
import { SimNetwork, type SimTransport } from './sim-network.js';
import { type AppliedEntry, ObservedStateMachine, SimRaftStorage, digestOf, durableEntries, parseWrite } from './sim-storage.js';
import { Trace } from './trace.js';

/** Simulated ms per Raft tick. */
export const TICK_MS = 10;
/** A client gives up on a request that got no answer for this many ticks (and may retry elsewhere). */
const CLIENT_TIMEOUT_TICKS = 40;
const DATA_DIR = '/data/raft';
const SNAPSHOT_DIR = '/data/snapshots';

/** How hostile the environment is; drawn from the seed unless given. */
export interface FaultProfile {
  dropRate: number;
  dupRate: number;
  /** Each message takes 1 ms .. 1+maxDelay ticks. */
  maxDelay: number;
  /** Messages on one link may overtake each other. */
  reorder: boolean;
  /** Per tick, chance a partition starts (when none is active). */
  partitionRate: number;
  partitionMaxTicks: number;
  /** Per tick, chance a node crashes between events. */
  crashRate: number;
  /**
   * Chance that a node crashing between events also loses its whole disk (Raft log, hard state
   * and state machine) and restarts empty: the "amnesia" fault. See SimCluster.mayWipe for when.
   */
  amnesiaRate: number;
  /** Per Ready, chance the node crashes at one of the points inside it. */
  crashInReadyRate: number;
  /** Chance a node crashes right after granting a vote, and comes back within a few ticks (double-vote hunting). */
  voteCrashRate: number;
  /** Per save (memory storage) or fsync (file storage), chance it takes 1-5 ticks. */
  slowDiskRate: number;
  /** Node clocks run at slightly different rates (within what the lease margin allows). */
  skew: boolean;
  snapshotEvery: number;
  /** Entries kept in the log behind a snapshot. */
  snapshotRetain: number;
  writeRate: number;
  readRate: number;
  leaseReadRate: number;
  confRate: number;
  transferRate: number;
  /** Per tick, chance a node's process is frozen (SIGSTOP, a stalled event loop) for a while. */
  freezeRate: number;
  freezeMaxTicks: number;
  /** 'file': the real durable log (FileRaftStorage) over a strict in-memory filesystem. */
  storage: 'memory' | 'file';
  /** file storage: per fsync, chance it fails with EIO (the node's log then stops and the node restarts). */
  syncErrorRate: number;
  /**
   * file storage: bytes of log entries kept in memory (FileRaftStorage.memoryLogBytes); small
   * values make lagging followers and late applies read entries back from the segment.
   */
  memoryLogBytes: number;
  /** Of the writes, the share sent with durability 'async' (then confirmed with waitFor). */
  asyncWriteRate: number;
  followerReadRate: number;
  /** Round-trip messages through the wire codec (else a frozen copy crosses the network). */
  wireCodec: boolean;
  /** n1 is the preferred leader: the runtime's failback hands leadership back to it. */
  failback: boolean;
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
   * Deliberately break one rule, to prove end to end that the checkers catch real bugs:
   * 'forget-votes' persists hard states without the vote (double voting after a crash);
   * 'early-reads' serves reads from the state before the latest apply batch (a read served before
   * the state machine reached its index); 'rebuilding-votes' lets a node that lost its disk vote and
   * campaign before it caught up (RaftConfig.unsafeRebuildingVotes); 'frozen-lease' judges the
   * lease on a monotonic clock that stops while the process is frozen (the lease bug of issue 9).
   */
  sabotage?: Sabotage;
  /**
   * A node that lost its disk restarts with its ORIGINAL config file (bootstrap members as they were
   * at the cluster's creation) instead of the current one. Off by default: such a node is never
   * rebuilt when the leader joined later (peer admission refuses it), and campaigns in the stale
   * configuration (seed 122 shows it winning with an empty log). Kept to reproduce that.
   */
  staleConfigAfterAmnesia?: boolean;
}

export type Sabotage = 'forget-votes' | 'early-reads' | 'rebuilding-votes' | 'frozen-lease';

export function drawProfile(rng: Prng): FaultProfile {
  const skew = rng.chance(0.25);
  const base = {
    dropRate: rng.pick([0, 0.01, 0.05, 0.15, 0.3]),
    dupRate: rng.pick([0, 0.01, 0.05]),
    maxDelay: rng.pick([0, 1, 2, 4, 8]),
    reorder: rng.chance(0.7),
    partitionRate: rng.pick([0, 0.01, 0.03]),
    partitionMaxTicks: rng.pick([20, 60, 150]),
    crashRate: rng.pick([0, 0.003, 0.01]),
    crashInReadyRate: rng.pick([0, 0.0005, 0.002]),
    amnesiaRate: 0, // drawn from its own stream by SimCluster
    slowDiskRate: rng.pick([0, 0, 0.05, 0.3]),
    voteCrashRate: rng.pick([0, 0.05, 0.2]),
    skew,
    snapshotEvery: rng.pick([5, 20, 60]),
    snapshotRetain: rng.pick([0, 3, 20]),
    writeRate: rng.pick([0.1, 0.3, 0.8]),
    readRate: rng.pick([0.05, 0.2]),
    leaseReadRate: rng.pick([0, 0.1, 0.3]),
    confRate: rng.pick([0, 0.005, 0.02]),
    transferRate: rng.pick([0, 0.003, 0.01]),
  };
  const more = rng.fork('runtime');
  return {
    ...base,
    freezeRate: more.pick([0, 0, 0.005, 0.02]),
    freezeMaxTicks: more.pick([15, 40, 80]),
    storage: more.chance(0.5) ? 'file' : 'memory',
    syncErrorRate: more.pick([0, 0, 0.001, 0.005]),
    asyncWriteRate: more.pick([0, 0.2, 0.5]),
    followerReadRate: more.pick([0, 0.05]),
    wireCodec: more.chance(0.25),
    failback: more.chance(0.25),
    memoryLogBytes: rng.fork('log-memory').pick([0, 300, 3000, 32 << 20]),
  };
}

interface Observed {
  role: Role;
  term: number;
  leaderId: NodeId;
  conf: ConfState;
  recovery: Recovery | undefined;
}

class NodeSlot {
  incarnation = 0;
  proc: SimProcess | undefined;
  clock: NodeClock | undefined;
  node: RaftNode | undefined;
  transport: SimTransport | undefined;
  /** The durable Raft storage of the current (or last) incarnation: what the checkers read. */
  storage: RaftStorage | undefined;
  /** memory storage: the one durable log object, kept across restarts. */
  memStorage: MemoryRaftStorage | undefined;
  /** file storage: the disk. */
  fs: MemoryFs | undefined;
  sm: ObservedStateMachine;
  /** Bootstrap membership of a fresh disk (a joiner's is empty): what its config file says. */
  bootstrapConf: ConfState;
  highestPersistedCommit = 0;
  logDirty = true;
  logView: LogView = { first: 1, entries: [] };
  restartAt = -1;
  /** Local clock time the next incarnation starts at (a restart does not turn the clock back). */
  localTime = 0;
  rate = 1;
  observed: Observed | undefined;
  /** Leadership observed, its completeness checked once the leader's own-term entry is durable. */
  pendingCompleteness: { term: number; sinceSeq: number }[] = [];
  frozen = false;
  /** Its disk was wiped (amnesia) or deleted (after its removal): a new one is set up when it restarts. */
  newDisk: { joiner: boolean; conf: ConfState } | undefined;

  constructor(
    readonly id: NodeId,
    /** Member addresses its config file lists. */
    public members: MemberAddress[],
    bootstrapVoters: NodeId[],
    readonly rng: Prng,
  ) {
    this.bootstrapConf = { voters: bootstrapVoters, learners: [] };
    this.sm = new ObservedStateMachine(new MemoryStateMachine());
  }

  /** Running: its process is alive and its runtime started. */
  get up(): boolean {
    return this.proc?.alive === true && this.node !== undefined;
  }

  get alive(): boolean {
    return this.proc?.alive === true;
  }
}

interface PendingOp {
  slot: NodeSlot;
  proc: SimProcess;
  startedTick: number;
  done: boolean;
  broken: () => void;
}

interface WriteClient {
  id: string;
  seq: number;
  firstUnacked: number;
  busy: boolean;
  retryAt: number;
  current: { seq: number; key: string; value: string; attempts: number; hint: NodeId } | undefined;
}

/** The request never got an answer: the connection broke or the client gave up waiting. */
class NoAnswer extends Error {
  override name = 'NoAnswer';
}

export interface ClusterStats {
  acked: number;
  asyncAcked: number;
  proposed: number;
  reads: number;
  leaseReads: number;
  /** Lease reads answered by a node that was frozen while the request waited for it. */
  leaseReadsAfterFreeze: number;
  crashes: number;
  partitions: number;
  freezes: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  messages: number;
  elections: number;
  /** Nodes that lost their disk and restarted empty. */
  amnesias: number;
  /** Nodes that applied their own removal and stopped. */
  removed: number;
  /** Retries answered from the session table (exactly-once at work). */
  duplicates: number;
  /** Injected fsync failures. */
  syncErrors: number;
  /** Writes torn, and unsynced bytes lost, by crashes of a MemoryFs. */
  tornWrites: number;
  lostBytes: number;
  /** Scheduler events run (timers, deliveries, requests, ...). */
  events: number;
}

class StopRun extends Error {
  constructor(readonly violation: Violation) {
    super(violation.message);
  }
}

function crashViolation(node: NodeId, what: string, err: unknown): Violation {
  const e = err as Error;
  return { checker: 'core-crash', message: `${node} ${what}: ${e?.name}: ${e?.message}\n${e?.stack?.split('\n').slice(1, 8).join('\n')}` };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function address(id: NodeId): MemberAddress {
  return { id, raftAddress: `sim:${id}`, clientAddress: `client-${id}:1` };
}

function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

/** An I/O error the simulator injected into a MemoryFs (directly, or as the cause a log failed with). */
function isInjectedIoError(err: unknown): boolean {
  const e = err instanceof StorageFailedError ? err.cause : err;
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EIO';
}

export class SimCluster {
  readonly seed: number;
  readonly profile: FaultProfile;
  readonly slots: NodeSlot[] = [];
  readonly byId = new Map<NodeId, NodeSlot>();
  readonly trace: Trace;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly bootstrap: NodeId[];
  tick = 0;
  private seq = 0;
  private readonly rng: Prng;
  private readonly amnesiaRng: Prng;
  private readonly faultRng: Prng;
  private readonly sched = new SimScheduler();
  private readonly net: SimNetwork;
  private partitionEndsAt = 0;
  private faultsOn = true;
  private faultTicks = 0;
  private healTick = 0;
  private livenessBound = 0;
  private finished = false;
  private violation: Violation | undefined;
  private readonly sabotage: Sabotage | undefined;
  private readonly staleConfigAfterAmnesia: boolean;
  private writeSeq = 0;
  private readonly clients: WriteClient[] = [];
  private readonly marker: WriteClient = { id: 'marker', seq: 0, firstUnacked: 1, busy: false, retryAt: 0, current: undefined };
  private markerIndex = 0;
  private confBusy = false;
  private readonly ops = new Set<PendingOp>();
  /** First application of each index anywhere: the canonical applied history and the commit record. */
  readonly committed = new Map<number, CommittedEntry & AppliedRecord>();
  /** Session commands ('clientId#seq') and the index each was first applied at. */
  private readonly firstApplied = new Map<string, number>();
  readonly leadersByTerm = new Map<number, NodeId>();
  readonly acks: AckRecord[] = [];
  private readonly lastAckIndex = new Map<string, number>();
  readonly stats: ClusterStats = {
    acked: 0,
    asyncAcked: 0,
    proposed: 0,
    reads: 0,
    leaseReads: 0,
    leaseReadsAfterFreeze: 0,
    crashes: 0,
    partitions: 0,
    freezes: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsSent: 0,
    messages: 0,
    elections: 0,
    amnesias: 0,
    removed: 0,
    duplicates: 0,
    syncErrors: 0,
    tornWrites: 0,
    lostBytes: 0,
    events: 0,
  };

  constructor(opts: ClusterOptions) {
    this.seed = opts.seed;
    this.rng = new Prng(opts.seed);
    this.amnesiaRng = this.rng.fork('amnesia');
    this.faultRng = this.rng.fork('runtime-faults');
    const setup = this.rng.fork('setup');
    this.profile = { ...drawProfile(setup.fork('profile')), amnesiaRate: setup.fork('amnesia').pick([0, 0, 0.3, 1]), ...opts.profile };
    const n = opts.nodes ?? setup.pick([3, 5]);
    const spares = opts.spares ?? 1;
    this.electionTicks = opts.electionTicks ?? 10;
    this.heartbeatTicks = opts.heartbeatTicks ?? 1;
    this.trace = new Trace(opts.trace ?? false);
    this.sabotage = opts.sabotage;
    this.staleConfigAfterAmnesia = opts.staleConfigAfterAmnesia ?? false;
    this.bootstrap = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    const p = this.profile;
    this.net = new SimNetwork(
      this.sched,
      this.rng.fork('network'),
      { dropRate: p.dropRate, dupRate: p.dupRate, maxDelay: p.maxDelay, reorder: p.reorder, wireCodec: p.wireCodec },
      this.trace,
      TICK_MS,
      () => this.tick,
    );
    this.net.onLeaderMessage = (m) => this.onLeaderMessage(m);
    const founders = this.bootstrap.map(address);
    for (let i = 0; i < n + spares; i++) {
      const id = `n${i + 1}`;
      const founder = i < n;
      const slot = new NodeSlot(id, founder ? founders : [...founders, address(id)], founder ? [...this.bootstrap] : [], this.rng.fork(`node-${id}`));
      if (p.skew) slot.rate = setup.pick([0.97, 1, 1.03]);
      this.freshDisk(slot);
      this.slots.push(slot);
      this.byId.set(id, slot);
    }
    for (let i = 0; i < 6; i++) this.clients.push({ id: `c${i + 1}`, seq: 0, firstUnacked: 1, busy: false, retryAt: 0, current: undefined });
    this.trace.event(
      0,
      `seed=${this.seed} nodes=${n}+${spares} storage=${p.storage} drop=${p.dropRate} dup=${p.dupRate} delay<=${p.maxDelay + 1} ` +
        `partition=${p.partitionRate} crash=${p.crashRate}/${p.crashInReadyRate} amnesia=${p.amnesiaRate} freeze=${p.freezeRate} ` +
        `skew=${p.skew ? this.slots.map((s) => s.rate).join('/') : 'no'} eio=${p.syncErrorRate} snapEvery=${p.snapshotEvery} lease=${p.leaseReadRate}`,
    );
    for (const slot of this.slots) this.start(slot);
  }

  // ---- disks --------------------------------------------------------------------------------------

  /** A new, empty disk (first start, or a wiped one). */
  private freshDisk(slot: NodeSlot): void {
    slot.sm = new ObservedStateMachine(new MemoryStateMachine());
    slot.highestPersistedCommit = 0;
    slot.logDirty = true;
    if (this.profile.storage === 'memory') {
      slot.memStorage = new MemoryRaftStorage({ bootstrap: cloneConf(slot.bootstrapConf) });
      slot.storage = slot.memStorage;
      return;
    }
    const fs = new MemoryFs();
    // The data dir's parent exists durably (an operator's mount point); everything below is the log's.
    void fs.mkdir('/data', { recursive: true }); // takes effect at once (see memory-fs.ts)
    fs.syncAll();
    slot.fs = fs;
    slot.storage = undefined;
    fs.faults = {
      syncError: (path) => {
        if (!this.faultsOn || this.profile.syncErrorRate <= 0 || !this.faultRng.chance(this.profile.syncErrorRate)) return undefined;
        this.stats.syncErrors++;
        this.trace.event(this.tick, `${slot.id} DISK fsync of ${path} fails with EIO`);
        return memoryFsError('EIO', 'fsync', path);
      },
      syncDelay: (_path) => {
        if (!this.faultsOn || !this.faultRng.chance(this.profile.slowDiskRate)) return undefined;
        const ms = this.faultRng.range(1, 5) * TICK_MS;
        if (this.profile.crashInReadyRate > 0 && this.faultRng.chance(2 * this.profile.crashInReadyRate)) {
          // The power goes while the write is on its way to the platter: what was not synced is lost or torn.
          const proc = slot.proc;
          this.sched.at(this.sched.now + this.faultRng.int(ms), 'sim', undefined, () => {
            if (this.faultsOn && slot.proc === proc) this.crash(slot, 'power lost during an fsync');
          });
        }
        return this.sleep(slot, ms);
      },
    };
  }

  private crashPolicy(): CrashPolicy {
    const mode = this.faultRng.int(3);
    if (mode === 0) return { keep: () => 0 };
    const rng = this.faultRng;
    const policy: CrashPolicy = { keep: (pending) => rng.int(pending + 1) };
    if (mode === 2) policy.tear = (length) => rng.int(length);
    return policy;
  }

  /** Resolves after `ms` on `slot`'s current process (never, if it dies; late, if it is frozen). */
  private sleep(slot: NodeSlot, ms: number): Promise<void> {
    const proc = slot.proc;
    return new Promise((resolve) => {
      this.sched.at(this.sched.now + ms, 'io', proc, resolve);
    });
  }

  // ---- node lifecycle ------------------------------------------------------------------------------

  private start(slot: NodeSlot): void {
    if (slot.newDisk) {
      // A new, empty disk. Its config file is written when it is put back: the cluster as it is now
      // (a joiner's lists the members to join; a wiped member's lists the members as bootstrap).
      const lead = this.leader();
      const conf = (lead && this.fresh(lead)?.conf) ?? slot.newDisk.conf;
      if (slot.newDisk.joiner || !this.staleConfigAfterAmnesia) {
        slot.members = [...conf.voters, ...conf.learners, slot.id].filter((id, i, all) => all.indexOf(id) === i).map(address);
        if (!slot.newDisk.joiner) slot.bootstrapConf = cloneConf(conf);
      }
      slot.newDisk = undefined;
      this.freshDisk(slot);
    }
    slot.incarnation++;
    const proc = new SimProcess(slot.id, slot.incarnation);
    const clock = new NodeClock(this.sched, proc, { rate: slot.rate, monotonicStopsWhenFrozen: this.sabotage === 'frozen-lease' }, slot.localTime);
    slot.proc = proc;
    slot.clock = clock;
    slot.node = undefined;
    slot.restartAt = -1;
    slot.frozen = false;
    slot.observed = undefined;
    slot.pendingCompleteness = [];
    this.sched.at(this.sched.now, 'io', proc, () => {
      this.boot(slot, proc, clock).catch((err: unknown) => {
        if (proc.alive) this.report(crashViolation(slot.id, 'failed to start', err));
      });
    });
  }

  private async boot(slot: NodeSlot, proc: SimProcess, clock: NodeClock): Promise<void> {
    let inner: RaftStorage;
    if (this.profile.storage === 'file') {
      try {
        inner = await FileRaftStorage.open({
          dir: DATA_DIR,
          bootstrap: cloneConf(slot.bootstrapConf),
          fs: slot.fs!,
          memoryLogBytes: this.profile.memoryLogBytes,
          coldReadBytes: 2000,
        });
      } catch (err) {
        if (!proc.alive) return;
        if (isInjectedIoError(err)) {
          this.crash(slot, `cannot open its log: ${(err as Error).message}`);
          return;
        }
        // A crash must never leave a log that does not open: that is lost durability.
        this.report({ checker: 'durability', message: `${slot.id} cannot open its log after a crash: ${(err as Error).message}` });
        return;
      }
    } else {
      inner = slot.memStorage!;
    }
    if (!proc.alive) return;
    slot.storage = inner;
    slot.logDirty = true;
    const storage = new SimRaftStorage(inner, proc, this.storageHooks(slot, proc));
    slot.sm.lagReads = this.sabotage === 'early-reads';
    slot.sm.attach(proc, this.smObserver(slot, proc));
    slot.transport = this.net.attach(slot.id, proc, {
      sendPlan: (messages) => this.sendPlan(slot, proc, messages),
      crashNow: (why) => this.crash(slot, why),
    });
    const hs = inner.initialState().hardState;
    // File-backed disks keep streamed snapshot files beside the log, over the same MemoryFs: the
    // snapshot path then runs the real file format, store, restore and piece-by-piece copy.
    let snapshotStore: SnapshotStore | undefined;
    try {
      snapshotStore = slot.fs ? await SnapshotStore.open({ dir: SNAPSHOT_DIR, fs: slot.fs }) : undefined;
    } catch (err) {
      if (proc.alive && isInjectedIoError(err)) this.crash(slot, `cannot open its snapshot dir: ${(err as Error).message}`);
      else if (proc.alive) this.report(crashViolation(slot.id, 'cannot open its snapshot dir', err));
      return;
    }
    if (!proc.alive) return;
    const node = await RaftNode.create({
      id: slot.id,
      members: slot.members,
      raft: {
        tickMs: TICK_MS,
        electionTicks: this.electionTicks,
        heartbeatTicks: this.heartbeatTicks,
        snapshotEntries: this.profile.snapshotEvery,
        snapshotBytes: 0,
        retainEntries: this.profile.snapshotRetain,
      },
      storage,
      stateMachine: slot.sm,
      transport: slot.transport,
      snapshotStore,
      logger: this.logger(slot, proc),
      measureSaves: false,
      drainTimeoutMs: 100,
      random: (k) => slot.rng.int(k),
      clock,
      preferredLeader: this.profile.failback ? 'n1' : undefined,
      failbackHoldMs: 30 * TICK_MS,
      onFatal: (err) => this.onFatal(slot, proc, err),
      onRemoved: () => this.onRemoved(slot, proc),
      unsafeRebuildingVotes: this.sabotage === 'rebuilding-votes',
    });
    if (!proc.alive) return;
    slot.node = node;
    await node.start();
    if (slot.incarnation > 1) {
      this.trace.event(
        this.tick,
        `${slot.id} restart applied=${slot.sm.applied} term=${hs.term} vote=${hs.vote || '-'} commit=${hs.commit}${hs.recovery ? ` ${hs.recovery}` : ''} log=[${inner.firstIndex()},${inner.lastIndex()}]`,
      );
    }
  }

  /** The process dies: nothing it does from now on has any effect; its disk keeps what was durable. */
  private crash(slot: NodeSlot, why: string, quickRestart = false): void {
    const proc = slot.proc;
    if (!proc?.alive) return;
    proc.alive = false;
    slot.localTime = slot.clock!.local();
    slot.node = undefined;
    slot.frozen = false;
    slot.observed = undefined;
    slot.pendingCompleteness = [];
    this.stats.crashes++;
    // Half the time the state machine is volatile and restarts from the last durable snapshot.
    const volatile = this.rng.chance(0.5);
    if (volatile) slot.sm = new ObservedStateMachine(new MemoryStateMachine());
    let disk = '';
    if (slot.fs) {
      const before = { torn: slot.fs.stats.torn, lost: slot.fs.stats.lostBytes };
      slot.fs.crash(this.crashPolicy());
      const torn = slot.fs.stats.torn - before.torn;
      const lost = slot.fs.stats.lostBytes - before.lost;
      this.stats.tornWrites += torn;
      this.stats.lostBytes += lost;
      if (torn || lost) disk = `, disk lost ${lost} unsynced bytes${torn ? `, ${torn} torn write(s)` : ''}`;
    }
    slot.restartAt = this.tick + (quickRestart ? this.rng.range(1, 4) : this.rng.range(3, 60));
    this.trace.event(this.tick, `${slot.id} CRASH (${why}${volatile ? ', state machine lost' : ''}${disk}) restart at t=${slot.restartAt}`);
    for (const op of this.ops) if (op.proc === proc) this.breakOp(op);
  }

  private onFatal(slot: NodeSlot, proc: SimProcess, err: Error): void {
    if (slot.proc !== proc || !proc.alive) return;
    if (isInjectedIoError(err)) {
      // The log refused further writes after an injected I/O error: the process exits, and a
      // supervisor restarts it.
      this.crash(slot, `log failed: ${(err.cause as Error)?.message ?? err.message}`);
      return;
    }
    this.report(crashViolation(slot.id, 'stopped on an unrecoverable error', err));
  }

  private onRemoved(slot: NodeSlot, proc: SimProcess): void {
    if (slot.proc !== proc || !proc.alive) return;
    // The process stops; its data dir is no longer a member's: an operator deletes it and starts
    // the node again as a joiner (it can be added back later).
    this.stats.removed++;
    const conf = slot.node!.raftStatus().conf;
    this.crash(slot, 'removed from the cluster, stops');
    slot.bootstrapConf = { voters: [], learners: [] };
    slot.newDisk = { joiner: true, conf };
    slot.storage = undefined;
    this.trace.event(this.tick, `${slot.id} disk deleted after removal; comes back as a joiner`);
  }

  /**
   * Amnesia is injected only where rebuilding in place can work (its documented limits,
   * docs/ARCHITECTURE.md): every member already holds part of the log and something was
   * committed, so the node that lost its data can tell from any candidate (it has a log) or leader
   * (it has a commit index) that it did; a leader is in office and every member that is up agrees
   * on the membership, so the others are a quorum of one known configuration; and only one node at
   * a time: a second loss before the first is rebuilt could leave a quorum without data, which no
   * protocol survives (nor can it be told from a brand-new cluster).
   */
  private mayWipe(victim: NodeSlot): boolean {
    const leader = this.leader();
    const lead = leader && this.fresh(leader);
    if (this.committed.size === 0 || !lead) return false;
    const conf = lead.conf;
    const same = (c: ConfState) => c.voters.join() === conf.voters.join() && c.learners.join() === conf.learners.join();
    if (conf.voters.filter((v) => v !== victim.id).length < Math.floor(conf.voters.length / 2) + 1) return false;
    for (const id of [...conf.voters, ...conf.learners]) {
      const n = this.byId.get(id)!;
      if (!n.storage || n.storage.lastIndex() === 0) return false;
      const now = n.up ? this.fresh(n) : undefined;
      if (n.up && (!now || !same(now.conf))) return false;
      const recovery = n.up ? now?.recovery : n.storage.initialState().hardState.recovery;
      if (recovery !== undefined) return false;
    }
    return true;
  }

  /** The crashed node's disk is gone: it restarts with nothing, as on its very first start. */
  private wipe(slot: NodeSlot, conf: ConfState): void {
    slot.newDisk = { joiner: false, conf };
    slot.storage = undefined;
    // Replacing a disk takes longer than the network takes to deliver what the old process sent.
    slot.restartAt = Math.max(slot.restartAt, this.tick + this.profile.maxDelay + 2);
    this.stats.amnesias++;
    this.trace.event(this.tick, `${slot.id} AMNESIA: disk wiped, restarts empty at t=${slot.restartAt}`);
  }

  private freeze(slot: NodeSlot, ticks: number): void {
    const proc = slot.proc!;
    slot.frozen = true;
    slot.clock!.noteFrozen(true);
    this.stats.freezes++;
    const until = this.sched.now + ticks * TICK_MS;
    this.trace.event(this.tick, `${slot.id} FREEZE for ${ticks} ticks (process stopped, clock running)`);
    this.sched.freeze(proc, until, () => {
      if (slot.proc !== proc) return { timersFirst: true, pick: () => 0 };
      slot.frozen = false;
      slot.clock!.noteFrozen(false);
      const rng = this.faultRng;
      const order: ResumeOrder = { timersFirst: rng.chance(0.5), pick: (n) => rng.int(n) };
      this.trace.event(this.tick, `${slot.id} RESUME (${order.timersFirst ? 'timers first' : 'I/O first'})`);
      return order;
    });
  }

  // ---- hooks into the runtime's storage, state machine, transport and logs ----------------------

  private storageHooks(slot: NodeSlot, proc: SimProcess) {
    return {
      plan: () => {
        const p = this.profile;
        const f = this.faultsOn;
        const slow = f && p.storage === 'memory' && p.slowDiskRate > 0 && this.faultRng.chance(p.slowDiskRate);
        return {
          crashBefore: f && p.crashInReadyRate > 0 && this.faultRng.chance(p.crashInReadyRate / 4),
          delayMs: slow ? this.faultRng.range(1, 5) * TICK_MS : 0,
          crashAfter: f && p.crashInReadyRate > 0 && this.faultRng.chance(p.crashInReadyRate / 4),
        };
      },
      sleep: (ms: number) => this.sleep(slot, ms),
      crashNow: (why: string) => {
        // Decided when the save began; a slow save may finish after faults stopped: then no crash.
        if (this.faultsOn && slot.proc === proc) this.crash(slot, why);
      },
      durable: () => {
        slot.logDirty = true;
        this.checkCompleteness(slot);
      },
      hardStateToWrite: (hs: HardState) => (this.sabotage === 'forget-votes' ? { ...hs, vote: '' } : hs),
    };
  }

  private smObserver(slot: NodeSlot, proc: SimProcess) {
    return {
      applied: (a: AppliedEntry) => this.onApplied(slot, a),
      restoring: (prevApplied: number, index: number, chain: number | undefined) => {
        this.trace.event(this.tick, `${slot.id} restore snapshot idx=${index}`);
        if (chain === undefined) {
          this.report({ checker: 'state-machine-safety', message: `${slot.id} restored a snapshot at ${index} that carries no applied history` });
          return;
        }
        this.check(checkStateMachineSafety(this.committed, { kind: 'restore', node: slot.id, prevApplied, index, chain }));
      },
      crashAfterApply: () => this.faultsOn && this.profile.crashInReadyRate > 0 && this.faultRng.chance(this.profile.crashInReadyRate / 4),
      crashNow: (why: string) => {
        if (slot.proc === proc) this.crash(slot, why);
      },
    };
  }

  private sendPlan(slot: NodeSlot, proc: SimProcess, messages: readonly Message[]): number {
    if (!this.faultsOn || slot.proc !== proc) return messages.length;
    const p = this.profile;
    if (p.crashInReadyRate > 0 && this.faultRng.chance(p.crashInReadyRate / 4)) return this.faultRng.int(messages.length + 1);
    if (p.voteCrashRate > 0 && messages.some((m) => m.type === 'voteResp' && !m.reject) && this.faultRng.chance(p.voteCrashRate)) {
      // Send them, then die at once and come back quickly: the vote must have been durable.
      this.sched.at(this.sched.now, 'sim', undefined, () => {
        if (this.faultsOn && slot.proc === proc) this.crash(slot, 'right after granting a vote', true);
      });
    }
    return messages.length;
  }

  private logger(slot: NodeSlot, proc: SimProcess): Logger {
    const traced = new Set(['leader_changed', 'snapshot_installed', 'ticks_caught_up', 'removed_from_cluster', 'failback', 'leadership_transfer_requested']);
    const emit = (level: string, obj: unknown, msg?: string) => {
      if (!proc.alive || typeof obj !== 'object' || obj === null) return;
      const fields = obj as Record<string, unknown>;
      const event = String(fields.event ?? msg ?? '');
      if (event === 'step_failed') {
        this.report({ checker: 'core-crash', message: `${slot.id} core threw on a peer message: ${JSON.stringify(fields)}` });
        return;
      }
      if (traced.has(event) || event.startsWith('raft.rebuilding') || event === 'raft.rebuilt') {
        const { event: _e, ...rest } = fields;
        this.trace.event(this.tick, `${slot.id} ${level} ${event} ${JSON.stringify(rest)}`);
      }
    };
    const log = {
      level: 'info',
      info: (obj: unknown, msg?: string) => emit('info', obj, msg),
      warn: (obj: unknown, msg?: string) => emit('warn', obj, msg),
      error: (obj: unknown, msg?: string) => emit('error', obj, msg),
      debug: () => {},
      trace: () => {},
      fatal: (obj: unknown, msg?: string) => emit('fatal', obj, msg),
      child: () => log,
    };
    return log as unknown as Logger;
  }

  // ---- observations and checks -----------------------------------------------------------------

  private report(v: Violation): void {
    this.violation ??= v;
  }

  private check(v: Violation | null): void {
    if (v) this.report(v);
  }

  private onLeaderMessage(m: Message): void {
    const slot = this.byId.get(m.from);
    if (slot) this.observeLeader(slot, m.term);
  }

  /** `slot` acts as leader of `term` (it sends what only a leader sends, or says so). */
  private observeLeader(slot: NodeSlot, term: number): void {
    if (this.leadersByTerm.get(term) === slot.id) return;
    const obs: LeaderObservation = { node: slot.id, term };
    this.check(checkElectionSafety([obs], this.leadersByTerm));
    this.leadersByTerm.set(term, slot.id);
    this.stats.elections++;
    this.trace.event(this.tick, `${slot.id} LEADER term=${term}`);
    slot.pendingCompleteness.push({ term, sinceSeq: this.seq });
    this.checkCompleteness(slot);
  }

  /**
   * Leader completeness, checked once the new leader's first entry of its term is durable: then
   * everything before it in its log is durable too, and every entry committed before it was elected
   * must be there. (Its in-memory log cannot be read from outside; its durable log can.)
   */
  private checkCompleteness(slot: NodeSlot): void {
    if (slot.pendingCompleteness.length === 0 || !slot.storage) return;
    const s = slot.storage;
    const durableTerm = s.initialState().hardState.term;
    const lastTerm = s.term(s.lastIndex());
    slot.pendingCompleteness = slot.pendingCompleteness.filter(({ term, sinceSeq }) => {
      if (durableTerm > term) return false; // moved on before its own entry was durable: it committed nothing
      if (lastTerm !== term) return true;
      this.check(checkLeaderCompleteness({ node: slot.id, term, sinceSeq, log: this.logOf(slot) }, this.committed));
      return false;
    });
  }

  private onApplied(slot: NodeSlot, a: AppliedEntry): void {
    const e = a.entry;
    const record: AppliedRecord = { index: e.index, term: e.term, digest: a.digest, chain: a.chain };
    this.check(checkStateMachineSafety(this.committed, { kind: 'apply', node: slot.id, prevApplied: a.prevApplied, entry: record }));
    if (!this.committed.has(e.index)) this.committed.set(e.index, { ...record, seq: this.seq++ });
    const w = parseWrite(a.digest);
    if (w && a.result) {
      const duplicate = a.result.duplicate === true;
      if (duplicate) this.stats.duplicates++;
      this.check(checkExactlyOnce(this.firstApplied, { node: slot.id, session: w.session, index: e.index, duplicate, resultIndex: a.result.index }));
      if (!duplicate && !this.firstApplied.has(w.session)) this.firstApplied.set(w.session, e.index);
    }
  }

  private logOf(slot: NodeSlot): LogView {
    if (!slot.logDirty) return slot.logView;
    const s = slot.storage;
    if (!s) return slot.logView;
    const first = s.firstIndex();
    const last = s.lastIndex();
    const entries = last >= first ? durableEntries(s, first, last + 1, slot.fs).map((e) => ({ index: e.index, term: e.term, digest: digestOf(e) })) : [];
    slot.logView = { first, entries };
    slot.logDirty = false;
    return slot.logView;
  }

  private checkStep(): void {
    const dirty = this.slots.filter((n) => n.logDirty && n.storage);
    if (dirty.length === 0) return;
    const logs = new Map<NodeId, LogView>();
    for (const n of this.slots) if (n.storage) logs.set(n.id, this.logOf(n));
    this.check(checkLogMatching(logs));
    for (const n of dirty) {
      const persistedCommit = n.storage!.initialState().hardState.commit;
      this.check(checkDurability({ node: n.id, persistedCommit, highestPersistedCommit: n.highestPersistedCommit, log: n.logView }, this.committed));
      n.highestPersistedCommit = Math.max(n.highestPersistedCommit, persistedCommit);
    }
  }

  /** Reads every running node's role and term (election safety; whom clients take for the leader). */
  private poll(): void {
    for (const slot of this.slots) {
      if (!slot.up) continue;
      let s: RaftStatus;
      try {
        s = slot.node!.raftStatus();
      } catch (err) {
        this.report(crashViolation(slot.id, 'threw from raftStatus()', err));
        return;
      }
      slot.observed = { role: s.role, term: s.term, leaderId: s.leaderId, conf: s.conf, recovery: s.recovery };
      if (s.role === 'leader') this.observeLeader(slot, s.term);
    }
  }

  /** `slot`'s role, term and configuration right now (the last poll may be a tick old). */
  private fresh(slot: NodeSlot): Observed | undefined {
    if (!slot.up) return undefined;
    const s = slot.node!.raftStatus();
    slot.observed = { role: s.role, term: s.term, leaderId: s.leaderId, conf: s.conf, recovery: s.recovery };
    return slot.observed;
  }

  /** The leader clients find: a running, responsive node that leads the highest term. */
  private leader(): NodeSlot | undefined {
    let best: NodeSlot | undefined;
    for (const n of this.slots) {
      if (!n.up || n.frozen || n.observed?.role !== 'leader') continue;
      if (!best || n.observed.term > best.observed!.term) best = n;
    }
    return best;
  }

  private liveness(): boolean {
    const leader = this.leader();
    const voters = leader?.observed ? leader.observed.conf.voters : [];
    const applied = this.markerIndex > 0 ? voters.filter((v) => this.byId.get(v)!.sm.applied >= this.markerIndex) : [];
    const down = this.slots.filter((n) => !n.up).map((n) => n.id);
    const state = { ticksSinceHeal: this.tick - this.healTick, boundTicks: this.livenessBound, leader: leader?.id ?? '', voters, appliedMarker: applied, down };
    this.check(checkLiveness(state));
    return livenessReached(state);
  }

  // ---- the driver: one tick of faults, workload and checks ----------------------------------------

  private onDriverTick(): void {
    this.tick++;
    if (this.faultsOn && this.tick > this.faultTicks) this.stopFaults();
    if (this.faultsOn) this.injectFaults();
    else for (const slot of this.slots) if (!slot.alive) this.start(slot);
    this.poll();
    this.expireOps();
    this.workload();
    this.checkStep();
    if (!this.faultsOn && this.liveness()) this.finished = true;
    if (!this.finished) this.sched.at(this.sched.now + TICK_MS, 'sim', undefined, () => this.onDriverTick());
  }

  private injectFaults(): void {
    const p = this.profile;
    const t = this.tick;
    const rng = this.rng;
    if (this.net.blocked.size > 0 && t >= this.partitionEndsAt) {
      this.net.blocked = new Set();
      this.trace.event(t, 'HEAL partition');
    } else if (this.net.blocked.size === 0 && rng.chance(p.partitionRate)) {
      this.startPartition();
    }
    for (const slot of this.slots) if (!slot.alive && slot.restartAt >= 0 && t >= slot.restartAt) this.start(slot);
    if (rng.chance(p.crashRate)) {
      const alive = this.slots.filter((s) => s.alive);
      const maxDown = Math.floor(this.bootstrap.length / 2) + (rng.chance(0.2) ? 1 : 0);
      if (this.slots.length - alive.length < maxDown && alive.length > 0) {
        const leader = this.leader();
        const victim = leader && rng.chance(0.4) ? leader : rng.pick(alive);
        const wipe = this.amnesiaRng.chance(p.amnesiaRate) && this.mayWipe(victim);
        const lead = this.leader();
        const conf = lead ? this.fresh(lead)?.conf : undefined;
        this.crash(victim, 'between events');
        if (wipe && conf) this.wipe(victim, conf);
      }
    }
    if (p.freezeRate > 0 && this.faultRng.chance(p.freezeRate)) {
      const candidates = this.slots.filter((s) => s.up && !s.frozen);
      if (candidates.length > 0) {
        const leader = this.leader();
        const victim = leader && this.faultRng.chance(0.6) ? leader : this.faultRng.pick(candidates);
        this.freeze(victim, this.faultRng.range(2, p.freezeMaxTicks));
      }
    }
    if (rng.chance(p.transferRate)) this.transfer();
    if (rng.chance(p.confRate)) this.changeMembership();
  }

  private startPartition(): void {
    const ids = this.slots.map((n) => n.id);
    const blocked = this.net.blocked;
    const block = (a: NodeId, b: NodeId) => blocked.add(`${a}>${b}`);
    const rng = this.rng;
    const kind = rng.int(4);
    let what: string;
    if (kind === 0) {
      const shuffled = rng.shuffle([...ids]);
      const cut = rng.range(1, ids.length - 1);
      const left = shuffled.slice(0, cut);
      const right = shuffled.slice(cut);
      for (const a of left) {
        for (const b of right) {
          block(a, b);
          block(b, a);
        }
      }
      what = `split [${left.join(',')}] | [${right.join(',')}]`;
    } else if (kind === 1) {
      const a = rng.pick(ids);
      const inbound = rng.chance(0.5);
      for (const b of ids) if (b !== a) inbound ? block(b, a) : block(a, b);
      what = inbound ? `one-way: nothing reaches ${a}` : `one-way: nothing leaves ${a}`;
    } else if (kind === 2) {
      const a = rng.pick(ids);
      const b = rng.pick(ids.filter((x) => x !== a));
      block(a, b);
      what = `one-way link ${a} -x-> ${b}`;
    } else {
      const leader = this.leader();
      const a = leader ? leader.id : rng.pick(ids);
      for (const b of ids) {
        if (b === a) continue;
        block(a, b);
        block(b, a);
      }
      what = `isolate ${leader ? 'leader ' : ''}${a}`;
    }
    this.partitionEndsAt = this.tick + rng.range(5, this.profile.partitionMaxTicks);
    this.stats.partitions++;
    this.trace.event(this.tick, `PARTITION ${what} until t=${this.partitionEndsAt}`);
  }

  /** Faults stop: the network heals and becomes reliable, frozen nodes resume, every node comes back. */
  private stopFaults(): void {
    this.faultsOn = false;
    this.healTick = this.tick;
    this.net.blocked = new Set();
    this.net.profile.dropRate = 0;
    this.net.profile.dupRate = 0;
    // A slow network is a fault too: with round trips near the election timeout no leader keeps
    // its quorum (check-quorum), so liveness is judged on a network of ordinary latency.
    this.net.profile.maxDelay = Math.min(this.net.profile.maxDelay, 1);
    this.trace.event(this.tick, 'FAULTS STOP: network healed, frozen nodes resumed, all nodes restarting');
    for (const slot of this.slots) {
      if (slot.frozen && slot.proc) this.sched.resume(slot.proc, { timersFirst: true, pick: (n) => this.faultRng.int(n) });
      if (slot.frozen) {
        slot.frozen = false;
        slot.clock?.noteFrozen(false);
      }
      if (!slot.alive) this.start(slot);
    }
  }

  // ---- clients ------------------------------------------------------------------------------------

  /**
   * Sends a request to `slot`'s running process; it is handled there as I/O (late, if the process is
   * frozen). The outcome reaches `settle` unless the process died or the client gave up first
   * (then `settle` gets NoAnswer: the outcome is unknown).
   */
  private call<T>(slot: NodeSlot, request: (node: RaftNode, sentAt: number) => Promise<T>, settle: (ok: T | undefined, err: unknown) => void): boolean {
    const node = slot.node;
    const proc = slot.proc;
    const clock = slot.clock;
    if (!node || !proc?.alive || !clock) return false;
    // Deadlines are absolute, set when the client sends (in the node's wall clock: no skew between
    // client and server); a request that waited out a frozen process past its deadline is refused.
    const sentAt = clock.now();
    const op: PendingOp = { slot, proc, startedTick: this.tick, done: false, broken: () => settle(undefined, new NoAnswer()) };
    this.ops.add(op);
    this.sched.at(this.sched.now, 'io', proc, () => {
      let p: Promise<T>;
      try {
        p = request(node, sentAt);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (v) => {
          if (op.done) return;
          op.done = true;
          this.ops.delete(op);
          settle(v, undefined);
        },
        (err: unknown) => {
          if (op.done) return;
          op.done = true;
          this.ops.delete(op);
          settle(undefined, err ?? new Error('rejected'));
        },
      );
    });
    return true;
  }

  private breakOp(op: PendingOp): void {
    if (op.done) return;
    op.done = true;
    this.ops.delete(op);
    op.broken();
  }

  private expireOps(): void {
    for (const op of this.ops) if (this.tick - op.startedTick > CLIENT_TIMEOUT_TICKS) this.breakOp(op);
  }

  private upSlots(): NodeSlot[] {
    return this.slots.filter((s) => s.up);
  }

  private workload(): void {
    const p = this.profile;
    const up = this.upSlots();
    if (up.length === 0) return;
    if (!this.faultsOn) {
      // Liveness phase: only the marker write, retried until it is acknowledged.
      if (this.markerIndex === 0 && !this.marker.busy) {
        if (!this.marker.current) this.marker.current = { seq: ++this.marker.seq, key: 'marker', value: 'final', attempts: 0, hint: '' };
        this.sendWrite(this.marker, false);
      }
      return;
    }
    for (const c of this.clients) if (!c.busy && c.current && this.tick >= c.retryAt) this.sendWrite(c, false);
    if (this.rng.chance(p.writeRate)) {
      const idle = this.clients.filter((c) => !c.busy && !c.current);
      if (idle.length > 0) {
        const c = this.rng.pick(idle);
        const async = p.asyncWriteRate > 0 && this.rng.chance(p.asyncWriteRate);
        c.current = { seq: ++c.seq, key: `k${this.rng.int(4)}`, value: `v${++this.writeSeq}`, attempts: 0, hint: '' };
        this.sendWrite(c, async);
      }
    }
    // Reads come in small bursts, so concurrent linearizable reads share ReadIndex rounds.
    if (this.rng.chance(p.readRate)) for (let i = this.rng.range(1, 3); i > 0; i--) this.read('linearizable');
    if (p.leaseReadRate > 0 && this.rng.chance(p.leaseReadRate)) this.read('lease');
    if (p.followerReadRate > 0 && this.rng.chance(p.followerReadRate)) this.read('follower');
  }

  private pickTarget(hint: NodeId): NodeSlot | undefined {
    const hinted = hint ? this.byId.get(hint) : undefined;
    if (hinted?.up && this.rng.chance(0.8)) return hinted;
    const up = this.upSlots();
    if (up.length === 0) return undefined;
    // Clients mostly find the leader; sometimes they hit a stale or random node.
    return this.rng.chance(0.9) ? (this.leader() ?? this.rng.pick(up)) : this.rng.pick(up);
  }

  private sendWrite(client: WriteClient, async: boolean): void {
    const w = client.current!;
    const target = this.pickTarget(w.hint);
    if (!target) return;
    w.attempts++;
    const command = {
      clientId: client.id,
      seq: w.seq,
      firstUnacked: client.firstUnacked,
      op: { op: 'put' as const, key: encoder.encode(w.key), value: encoder.encode(w.value) },
    };
    this.stats.proposed++;
    client.busy = true;
    const sent = this.call(
      target,
      (node, sentAt) => node.write({ command, durability: async ? 'async' : 'sync', deadline: sentAt + 30 * TICK_MS }),
      (ack, err) => {
        client.busy = false;
        if (ack) {
          if (async) return this.confirmAsync(client, target, ack.term, ack.index);
          if (ack.result) this.acknowledge(client, target, ack.result.index, ack.result.duplicate === true);
          else this.trace.event(this.tick, `${target.id} write ${client.id}#${w.seq} committed (result in a snapshot)`);
          this.finishWrite(client);
          return;
        }
        if (err instanceof StaleSequenceError) {
          this.report({
            checker: 'exactly-once',
            message: `${target.id} refused ${client.id}#${w.seq} as stale, though the client never moved past it (firstUnacked ${client.firstUnacked})`,
          });
          return;
        }
        if (err instanceof NotLeaderError) w.hint = err.leaderId;
        // Async writes are never retried: a retry of the same seq would be a different entry.
        if (async || (client !== this.marker && w.attempts >= 6)) {
          this.trace.event(this.tick, `${client.id} gives up on #${w.seq} (${(err as Error).name})`);
          this.finishWrite(client);
        } else {
          client.retryAt = this.tick + this.rng.range(1, 3);
        }
      },
    );
    if (!sent) client.busy = false;
  }

  private acknowledge(client: WriteClient, slot: NodeSlot, index: number, duplicate: boolean): void {
    const w = client.current!;
    if (client === this.marker) {
      this.markerIndex = index;
      this.trace.event(this.tick, `${slot.id} ACK marker idx=${index}`);
      return;
    }
    this.acks.push({ key: w.key, value: w.value, index, seq: this.seq++ });
    this.lastAckIndex.set(w.key, Math.max(this.lastAckIndex.get(w.key) ?? 0, index));
    this.stats.acked++;
    this.trace.event(
      this.tick,
      `${slot.id} ACK ${client.id}#${w.seq} ${w.key}=${w.value} idx=${index}${duplicate ? ' (retry answered from the session)' : ''}`,
    );
  }

  private finishWrite(client: WriteClient): void {
    const w = client.current;
    client.current = undefined;
    if (w && client.firstUnacked <= w.seq) client.firstUnacked = w.seq + 1;
  }

  /** An async write got its receipt; the client asks a node whether it committed. */
  private confirmAsync(client: WriteClient, proposer: NodeSlot, term: number, index: number): void {
    const w = client.current!;
    const digest = `w|${w.key}|${w.value}|${client.id}#${w.seq}`;
    this.finishWrite(client);
    const target = this.rng.chance(0.5) && proposer.up ? proposer : this.pickTarget('');
    if (!target) return;
    this.call(
      target,
      (node, sentAt) => node.waitFor(term, index, sentAt + 40 * TICK_MS),
      (outcome) => {
        if (!outcome) return;
        this.check(checkWaitOutcome({ node: target.id, term, index, digest, outcome }, this.committed));
        this.trace.event(this.tick, `${target.id} waitFor ${term}/${index} ${w.key}=${w.value}: ${outcome}`);
        if (outcome === 'committed') {
          this.acks.push({ key: w.key, value: w.value, index, seq: this.seq++ });
          this.lastAckIndex.set(w.key, Math.max(this.lastAckIndex.get(w.key) ?? 0, index));
          this.stats.asyncAcked++;
        }
      },
    );
  }

  private read(consistency: 'linearizable' | 'lease' | 'follower'): void {
    const up = this.upSlots();
    let target: NodeSlot | undefined;
    if (consistency === 'lease') {
      // Mostly the leader; sometimes a node that believed itself leader when last seen (a client
      // with a stale view, e.g. of a leader that was frozen and replaced meanwhile).
      const claimants = this.slots.filter((s) => s.up && s.observed?.role === 'leader');
      target = claimants.length > 0 && this.rng.chance(0.4) ? this.rng.pick(claimants) : this.leader();
    } else {
      target = up.length > 0 ? this.rng.pick(up) : undefined;
    }
    if (!target) return;
    const key = `k${this.rng.int(4)}`;
    const minIndex = consistency === 'follower' ? (this.lastAckIndex.get(key) ?? 0) : undefined;
    const issueSeq = this.seq++;
    const wasFrozen = target.frozen;
    const slot = target;
    this.call(
      slot,
      (node, sentAt) => {
        const deadline = sentAt + 30 * TICK_MS;
        return node.get(encoder.encode(key), consistency === 'follower' ? { consistency, deadline, minIndex } : { consistency, deadline });
      },
      (res) => {
        if (!res) return;
        const observed = res.kv ? { value: decoder.decode(res.kv.value), index: res.kv.modIndex } : undefined;
        const kind = consistency === 'linearizable' ? 'readIndex' : consistency;
        const obs: ReadObservation = { ctx: `r${issueSeq}`, node: slot.id, key, kind, issueSeq, readIndex: res.appliedIndex, observed };
        this.stats.reads++;
        if (consistency === 'lease') {
          this.stats.leaseReads++;
          if (wasFrozen) this.stats.leaseReadsAfterFreeze++;
        }
        this.trace.event(
          this.tick,
          `${slot.id} ${consistency} read ${key}=${observed ? `${observed.value}@${observed.index}` : '-'} (applied ${res.appliedIndex})`,
        );
        const acks = minIndex === undefined ? this.acks : this.acks.filter((a) => a.index <= minIndex);
        this.check(checkLinearizableRead(obs, acks));
      },
    );
  }

  private transfer(): void {
    const leader = this.leader();
    const lead = leader && this.fresh(leader);
    if (!leader || !lead) return;
    const voters = lead.conf.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.trace.event(this.tick, `${leader.id} TRANSFER leadership to ${to}`);
    this.stats.transfers++;
    this.call(
      leader,
      (node, sentAt) => node.transferLeadership(to, sentAt + 20 * TICK_MS),
      (_ok, err) => {
        if (err && !(err instanceof NoAnswer)) this.trace.event(this.tick, `${leader.id} transfer to ${to}: ${(err as Error).name}`);
      },
    );
  }

  private changeMembership(): void {
    const leader = this.leader();
    const lead = leader && this.fresh(leader);
    if (!leader || !lead || this.confBusy) return;
    const conf = lead.conf;
    const options: { type: ConfChangeType; nodeId: NodeId }[] = [];
    for (const n of this.slots) {
      if (!conf.voters.includes(n.id) && !conf.learners.includes(n.id)) options.push({ type: 'addLearner', nodeId: n.id });
    }
    for (const l of conf.learners) options.push({ type: 'addVoter', nodeId: l }, { type: 'removeNode', nodeId: l });
    if (conf.voters.length > 3) for (const v of conf.voters) options.push({ type: 'removeNode', nodeId: v });
    if (options.length === 0) return;
    const cc = this.rng.pick(options);
    const id = cc.nodeId;
    this.stats.confChanges++;
    this.confBusy = true;
    this.trace.event(this.tick, `${leader.id} CONF ${cc.type} ${id}`);
    this.call(
      leader,
      (node, sentAt) => {
        const deadline = sentAt + 40 * TICK_MS;
        if (cc.type === 'removeNode') return node.removeMember(id, { deadline });
        if (cc.type === 'addLearner') return node.addMember(id, `sim:${id}`, `client-${id}:1`, { learner: true, deadline });
        return node.addMember(id, '', '', { deadline });
      },
      (_ok, err) => {
        this.confBusy = false;
        this.trace.event(this.tick, `${leader.id} CONF ${cc.type} ${id}: ${err ? (err as Error).name : 'done'}`);
      },
    );
  }

  // ---- running --------------------------------------------------------------------------------------

  /**
   * Run `faultTicks` ticks of faults and workload, then stop the faults and require progress within
   * `livenessElections` election timeouts. Returns the violation that stopped the run, if any.
   */
  async run(faultTicks: number, livenessElections: number): Promise<Violation | null> {
    this.faultTicks = faultTicks;
    this.livenessBound = livenessElections * this.electionTicks;
    this.sched.at(TICK_MS / 2, 'sim', undefined, () => this.onDriverTick());
    try {
      const stopped = await this.sched.run(() => this.violation !== undefined || this.finished);
      if (!stopped) return { checker: 'core-crash', message: 'the simulation ran out of events' };
      if (this.violation) return this.violation;
      this.trace.event(this.tick, `LIVE: marker committed at idx=${this.markerIndex} on all voters ${this.tick - this.healTick} ticks after faults stopped`);
      for (const slot of this.slots) {
        if (!slot.up) continue;
        const { items } = await slot.sm.scan({ start: new Uint8Array(0), end: new Uint8Array(0), limit: 0 });
        const kv = new Map(items.map((it) => [decoder.decode(it.key), { value: decoder.decode(it.value), index: it.modIndex }]));
        const acks = this.acks.filter((a) => a.index <= slot.sm.applied);
        const v = checkAckedWritesSurvive(slot.id, acks, kv);
        if (v) return v;
      }
      return null;
    } catch (err) {
      if (err instanceof StopRun) return err.violation;
      return crashViolation('sim', 'threw (the runtime or the simulator itself)', err);
    } finally {
      this.collectStats();
    }
  }

  private collectStats(): void {
    this.stats.messages = this.net.messages;
    this.stats.snapshotsSent = this.net.snapshotsDelivered;
    this.stats.events = this.sched.executed;
  }

  violationError(v: Violation, replayArgs = ''): SimViolationError {
    return new SimViolationError(v.checker, this.seed, this.tick, v.message, this.trace.tail(), replayArgs);
  }
}
