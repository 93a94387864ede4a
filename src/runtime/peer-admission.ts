// Which Raft messages may reach the core. Raft itself trusts every message it is given; this is the
// boundary that decides whom to trust. It runs on every peer message (onPeerMessage), and the gRPC
// transport asks it about a sender before it decodes a batch or buffers a snapshot.
//
//   - Only members speak Raft: the sender must be a voter or learner of this node's configuration
//     (the applied one, or one a conf entry already in the log will produce: a member added by an
//     entry this node holds but has not applied yet is let in, so it can lead this node).
//   - Leader traffic (appends, heartbeats, snapshots, TimeoutNow, ReadIndex answers) in this node's
//     current term comes only from the node it knows as that term's leader (one leader per term: a
//     second one is forged). A higher term is a new leader's first message and is let through; it is
//     how Raft learns of a new term. The sender may be a learner in this node's view: a follower that
//     missed a learner's promotion would otherwise refuse that node's leadership for ever (the
//     simulator found clusters that never recovered), and only the leader can send it the entry that
//     promoted it.
//   - A leader this node does not know as a member is let in for one term when a voter of this
//     node's configuration vouches for it: the voter refused this node's (pre-)vote naming the leader
//     it follows in that term (Message.leaderHint). This node lags behind the change that added that
//     leader, and only that leader can send it; without the voucher it would refuse it for ever
//     (the simulator found followers that never caught up). The voter is trusted as a member is.
//   - Vote and pre-vote answers count only from voters: a learner's are dropped. Vote and pre-vote
//     requests from a learner in this node's view are let in, as etcd lets them: it may have been
//     promoted in a change this node missed, and refusing it could leave no quorum able to elect
//     anyone (the simulator's seed 10471: the up-to-date nodes needed the lagging node's vote). A
//     candidate that is not a voter of the real configuration cannot win with it anyway, and a
//     learner that missed its leader's addition asks who leads with pre-votes (probeForLeader).
//   - No message may claim to come from this node itself, nor carry a term so large that no
//     election could follow it (a term near 2^53 would leave the cluster leaderless for ever).
//
// With TLS the transport has already bound `from` to the peer's certificate; without TLS any
// process can claim a member's id, which is why production clusters enable mutual TLS.
import { decodeConfEntry } from '../raft/conf-change-codec.js';
import type { ConfState, Entry, Message, MessageType, NodeId } from '../raft/types.js';

/**
 * The largest term accepted from a peer: 2^48, a new term every millisecond for 8900 years. Far
 * above any real cluster's, far enough below 2^53 that terms can always still grow.
 */
export const MAX_PEER_TERM = 2 ** 48;

/** Why a message was dropped (counted per reason in stats()). */
export type AdmissionRefusal =
  | 'not-a-member'
  | 'from-self'
  | 'term-too-large'
  | 'learner-cannot-lead'
  | 'learner-cannot-vote'
  | 'not-the-leader-of-this-term'
  | 'leader-only-message-from-non-leader';

/** What the boundary needs to know about the core right now. */
export interface CoreView {
  readonly term: number;
  readonly leaderId: NodeId;
}

export interface AdmissionLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

const FROM_LEADER: ReadonlySet<MessageType> = new Set<MessageType>(['app', 'heartbeat', 'snap']);
/** Sent by the leader of our own term only, never as the first message of a term. */
const FROM_KNOWN_LEADER: ReadonlySet<MessageType> = new Set<MessageType>(['timeoutNow', 'readIndexResp']);

const LOG_EVERY_MS = 30_000;

export class PeerAdmission {
  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  /** Conf entries in the log beyond the applied index: index -> the configuration they produce. */
  private readonly pending = new Map<number, ConfState>();
  private confDirty = true;
  /** The newest leader a voter vouched for, and the term it leads (see vouch()). */
  private vouched: { term: number; leader: NodeId } | undefined;
  private readonly refused = new Map<AdmissionRefusal, number>();
  private readonly lastLogged = new Map<string, number>();

  constructor(
    private readonly selfId: NodeId,
    /** The core's applied configuration (read again after confChanged()). */
    private readonly appliedConf: () => ConfState,
    /**
     * Ids that may lead this node while its own configuration has no voters yet (a node started
     * with `join: true` waits, empty, for the leader that adds it): the members of its config file.
     */
    private readonly bootstrapMembers: () => Iterable<NodeId>,
    private readonly logger?: AdmissionLogger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The applied configuration changed (conf entry applied, snapshot installed, start). */
  confChanged(appliedIndex: number): void {
    this.confDirty = true;
    for (const index of this.pending.keys()) if (index <= appliedIndex) this.pending.delete(index);
  }

  /** Entries were appended to the local log: remember the configurations their conf entries produce. */
  appended(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.type !== 'conf') continue;
      // A conflicting append may replace entries: drop what a replaced entry said.
      for (const index of this.pending.keys()) if (index >= e.index) this.pending.delete(index);
      try {
        this.pending.set(e.index, decodeConfEntry(e.data).result);
      } catch {
        // A malformed conf entry changes nothing (the core treats it the same way).
      }
    }
  }

  /** Whether `id` is a member (voter or learner) in this node's view. Cheap: the transport asks per batch. */
  isMember(id: NodeId): boolean {
    this.refresh();
    if (this.voters.has(id) || this.learners.has(id)) return true;
    for (const conf of this.pending.values()) if (conf.voters.includes(id) || conf.learners.includes(id)) return true;
    if (this.voters.size === 0) for (const m of this.bootstrapMembers()) if (m === id) return true;
    return false;
  }

  /**
   * Voter `voucher` said `leader` leads `term`. Remembered (the newest term wins) when `leader` is no
   * member in this node's view; true when that changed anything.
   */
  vouch(term: number, leader: NodeId, voucher: NodeId): boolean {
    if (leader === this.selfId || term > MAX_PEER_TERM || !this.isVoter(voucher) || this.isMember(leader)) return false;
    if (this.vouched && (this.vouched.term > term || (this.vouched.term === term && this.vouched.leader === leader))) return false;
    this.vouched = { term, leader };
    return true;
  }

  /** Whether `id` is the leader a voter last vouched for (the transport lets its batches in). */
  isVouchedLeader(id: NodeId): boolean {
    return this.vouched !== undefined && this.vouched.leader === id;
  }

  private isVoter(id: NodeId): boolean {
    if (this.voters.has(id)) return true;
    for (const conf of this.pending.values()) if (conf.voters.includes(id)) return true;
    if (this.voters.size === 0) for (const m of this.bootstrapMembers()) if (m === id) return true;
    return false;
  }

  /** The reason `m` must not reach the core, or undefined when it may. */
  check(m: Message, core: CoreView): AdmissionRefusal | undefined {
    if (m.from === this.selfId) return 'from-self';
    if (m.term > MAX_PEER_TERM) return 'term-too-large';
    // The leader this node already follows in its term stays admitted even when this node's view of
    // the membership no longer lists it: a snapshot older than the leader's own addition (the only
    // one it has to send) replaces the log entry that made it a member here. It was admitted under
    // this node's view when it took over the term, and one leader per term still holds.
    if (m.term === core.term && core.leaderId === m.from && core.leaderId !== '' && (FROM_LEADER.has(m.type) || FROM_KNOWN_LEADER.has(m.type)))
      return undefined;
    if (FROM_LEADER.has(m.type) && this.vouched && this.vouched.leader === m.from && this.vouched.term === m.term && !this.isMember(m.from)) {
      if (m.term === core.term && core.leaderId !== '' && core.leaderId !== m.from) return 'not-the-leader-of-this-term';
      return undefined;
    }
    if (!this.isMember(m.from)) return 'not-a-member';
    const voter = this.isVoter(m.from);
    if (FROM_LEADER.has(m.type)) {
      // One leader per term: once this node knows the leader of its term, nobody else is one.
      if (m.term === core.term && core.leaderId !== '' && core.leaderId !== m.from) return 'not-the-leader-of-this-term';
      return undefined;
    }
    if (FROM_KNOWN_LEADER.has(m.type)) {
      if (!voter) return 'learner-cannot-lead';
      if (m.term !== core.term || core.leaderId !== m.from) return 'leader-only-message-from-non-leader';
      return undefined;
    }
    if ((m.type === 'voteResp' || m.type === 'preVoteResp') && !voter) return 'learner-cannot-vote';
    return undefined;
  }

  /** check(), counting and (throttled) logging a refusal. True when `m` may be stepped. */
  admit(m: Message, core: CoreView): boolean {
    const reason = this.check(m, core);
    if (reason === undefined) return true;
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    const key = `${reason}:${m.from}`;
    const t = this.now();
    const last = this.lastLogged.get(key);
    if (last === undefined || t - last >= LOG_EVERY_MS) {
      if (this.lastLogged.size > 1000) this.lastLogged.clear(); // bounded even under a flood of ids
      this.lastLogged.set(key, t);
      this.logger?.warn(
        {
          event: 'raft_message_refused',
          reason,
          from: m.from.slice(0, 64),
          type: m.type,
          term: m.term,
          ourTerm: core.term,
          leader: core.leaderId || null,
          hint:
            reason === 'not-a-member'
              ? "the sender is not a member in this node's configuration; if it joined recently and now leads, this node lags behind that change: transfer leadership to a member it knows so it can catch up"
              : undefined,
        },
        `dropped a raft message: ${reason}`,
      );
    }
    return false;
  }

  /** Messages dropped so far, by reason. */
  stats(): Record<AdmissionRefusal, number> {
    return Object.fromEntries(this.refused) as Record<AdmissionRefusal, number>;
  }

  /** Total messages dropped so far. */
  get refusedTotal(): number {
    let n = 0;
    for (const v of this.refused.values()) n += v;
    return n;
  }

  private refresh(): void {
    if (!this.confDirty) return;
    this.confDirty = false;
    const conf = this.appliedConf();
    this.voters = new Set(conf.voters);
    this.learners = new Set(conf.learners);
  }
}
