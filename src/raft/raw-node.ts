import { invariant } from './errors.js';
import type { LogStorage } from './log-storage.js';
import { Raft } from './raft.js';
import type { ConfChange, HardState, Message, NodeId, ProposalReceipt, RaftConfig, RaftStatus, Ready, Role, SoftState } from './types.js';

const DEFAULT_MAX_COMMITTED_SIZE = 4 * 1024 * 1024;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit && a.recovery === b.recovery;
}

/**
 * The core's public face (etcd's RawNode): feed it ticks, messages and proposals; drain Ready
 * batches; acknowledge each with advance(). Single-threaded and synchronous, it never does I/O.
 */
export class RawNode {
  private readonly raft: Raft;
  private readonly maxCommittedSize: number;
  private previousHardState: HardState;
  private previousSoftState: SoftState;
  /** The Ready handed out and not yet advanced (at most one at a time). */
  private outstanding: Ready | undefined;

  constructor(config: RaftConfig, storage: LogStorage) {
    this.raft = new Raft(config, storage);
    this.maxCommittedSize = config.maxCommittedSizePerReady ?? DEFAULT_MAX_COMMITTED_SIZE;
    this.previousHardState = this.hardState();
    this.previousSoftState = this.softState();
  }

  private hardState(): HardState {
    const hs: HardState = { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
    if (this.raft.recovery) hs.recovery = this.raft.recovery;
    return hs;
  }

  private softState(): SoftState {
    return { leaderId: this.raft.leaderId, role: this.raft.role };
  }

  tick(): void {
    this.raft.tick();
  }

  // The core's live role, leader and term: callers read these instead of keeping copies, which
  // would lag the core between a step() and the Ready that reports it.
  get role(): Role {
    return this.raft.role;
  }

  get leaderId(): NodeId {
    return this.raft.leaderId;
  }

  get term(): number {
    return this.raft.term;
  }

  /** Input from the network. Messages for other nodes or stale terms are ignored. */
  step(message: Message): void {
    this.raft.step(message);
  }

  propose(data: Uint8Array): ProposalReceipt {
    return this.raft.propose(data);
  }

  proposeConfChange(change: ConfChange): ProposalReceipt {
    return this.raft.proposeConfChange(change);
  }

  readIndex(context: string): void {
    this.raft.readIndex(context);
  }

  leaseReadIndex(): number | null {
    return this.raft.leaseReadIndex();
  }

  /** See Raft.leaseRead: the caller must judge `ackedTick` against a monotonic clock. */
  leaseRead(): { index: number; ackedTick: number } | null {
    return this.raft.leaseRead();
  }

  /** Ticks fed so far; the stamp the next tick's heartbeats carry is tickCount + 1. */
  get tickCount(): number {
    return this.raft.tickCount;
  }

  transferLeadership(to: NodeId): void {
    this.raft.startTransfer(to);
  }

  campaign(): void {
    if (this.raft.role !== 'leader') this.raft.campaign('election');
  }

  reportUnreachable(peer: NodeId): void {
    this.raft.reportUnreachable(peer);
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(peer, ok);
  }

  /** Storage read entries the core asked for from disk (LogStorage.entries threw EntriesLoadingError). */
  entriesLoaded(): void {
    this.raft.entriesLoaded();
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const raft = this.raft;
    return (
      raft.broadcastPending ||
      raft.messages.length > 0 ||
      raft.readStates.length > 0 ||
      raft.log.hasUnstableEntries() ||
      raft.log.pendingSnapshot() !== undefined ||
      raft.log.hasNextCommittedEntries() ||
      !sameHardState(this.hardState(), this.previousHardState) ||
      this.raft.leaderId !== this.previousSoftState.leaderId ||
      this.raft.role !== this.previousSoftState.role
    );
  }

  ready(): Ready {
    invariant(!this.outstanding, 'ready() called again before advance()');
    const raft = this.raft;
    raft.flushBroadcast();
    const entries = raft.log.unstableEntries();
    const hardState = this.hardState();
    const softState = this.softState();
    const hardStateChanged = !sameHardState(hardState, this.previousHardState);
    const ready: Ready = {
      entries,
      committedEntries: raft.log.nextCommittedEntries(this.maxCommittedSize),
      messages: raft.messages,
      readStates: raft.readStates,
      // A change of recovery must be durable before anything that relies on it: leaving
      // 'rebuilding' before the vote it allows, entering it before acknowledgements it qualifies.
      mustSync:
        entries.length > 0 ||
        hardState.term !== this.previousHardState.term ||
        hardState.vote !== this.previousHardState.vote ||
        hardState.recovery !== this.previousHardState.recovery,
      sendBeforePersist: this.messagesMayPrecedePersistence(),
    };
    const snapshot = raft.log.pendingSnapshot();
    if (snapshot) ready.snapshot = snapshot;
    if (hardStateChanged) ready.hardState = hardState;
    if (softState.leaderId !== this.previousSoftState.leaderId || softState.role !== this.previousSoftState.role) {
      ready.softState = softState;
      this.previousSoftState = softState;
    }
    raft.messages = [];
    raft.readStates = [];
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted) raft.log.applying = lastCommitted.index;
    this.outstanding = ready;
    return ready;
  }

  /**
   * Messages a leader may send right now, even while a Ready is still being persisted: its term
   * and vote are durable and its commit index counts only durable copies, so nothing here depends
   * on the outstanding write. Lets heartbeats flow through a slow fsync or apply. Returns [] when
   * that does not hold (then the messages wait for the next Ready).
   */
  takeLeaderMessages(): Message[] {
    const raft = this.raft;
    if (raft.role !== 'leader') return [];
    raft.flushBroadcast();
    if (raft.messages.length === 0 || !this.messagesMayPrecedePersistence()) return [];
    const messages = raft.messages;
    raft.messages = [];
    return messages;
  }

  /**
   * A follower's heartbeat responses, which may go out while a Ready is still being persisted
   * (etcd's send() lets them skip the wait for storage too): a response says "I follow you in term
   * T", echoes the leader's clock and ReadIndex context, and claims nothing about the log. Only a
   * follower's own, non-rejecting responses at its durable term, with its recovery state durable,
   * are taken; anything else waits for the next Ready as before, so no response ever vouches for a
   * term or a state a crash could take back. Without this a follower whose fsync is slow (seen:
   * 400-600 ms on every node at once while all three wrote snapshot files) answers no heartbeat
   * for that long, and its leader fails check-quorum and steps down.
   */
  takeHeartbeatResponses(): Message[] {
    const raft = this.raft;
    if (raft.role !== 'follower' || raft.term !== this.previousHardState.term || raft.recovery !== this.previousHardState.recovery) return [];
    const early = (m: Message) => m.type === 'heartbeatResp' && m.from === raft.id && m.term === raft.term && !m.reject;
    if (!raft.messages.some(early)) return [];
    const taken: Message[] = [];
    const kept: Message[] = [];
    for (const m of raft.messages) (early(m) ? taken : kept).push(m);
    raft.messages = kept;
    return taken;
  }

  /**
   * The one rule for sending ahead of persistence: only a leader, whose term, vote and recovery
   * state are already durable (previousHardState), with no received snapshot pending, and only its
   * own current-term messages. A pristine node that wins leaves 'pristine' (see becomeLeader): its
   * first appends wait until that is durable, or a crash could restart it pristine while a follower
   * already holds its entry, proof of a history it would think it lost (it would rebuild for ever). Its commit index counts only durable copies, so nothing sent depends on the write.
   */
  private messagesMayPrecedePersistence(): boolean {
    const raft = this.raft;
    return (
      raft.role === 'leader' &&
      raft.term === this.previousHardState.term &&
      raft.vote === this.previousHardState.vote &&
      raft.recovery === this.previousHardState.recovery &&
      raft.log.pendingSnapshot() === undefined &&
      raft.messages.every((m) => m.from === raft.id && m.term === raft.term)
    );
  }

  /** The runtime persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    invariant(this.outstanding === ready, 'advance() called with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const raft = this.raft;
    if (ready.hardState) this.previousHardState = ready.hardState;
    if (ready.snapshot) {
      raft.log.stableSnapshotTo(ready.snapshot.meta.index);
      if (ready.snapshot.meta.index > raft.log.applied) raft.log.appliedTo(ready.snapshot.meta.index);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry) {
      raft.log.stableTo(lastEntry.index, lastEntry.term);
      raft.onEntriesPersisted(lastEntry.index, lastEntry.term);
    }
    // A snapshot restored while this Ready was out carries a newer membership than these entries.
    const restoring = raft.log.pendingSnapshot()?.meta.index ?? 0;
    for (const entry of ready.committedEntries) {
      if (entry.index <= raft.log.applied) continue; // superseded by a snapshot restored meanwhile
      if (entry.type === 'conf' && entry.index > restoring) raft.applyConfEntry(entry);
      raft.log.appliedTo(entry.index);
    }
  }

  status(): RaftStatus {
    return this.raft.status();
  }
}
