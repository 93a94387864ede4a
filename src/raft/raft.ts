import { ConfChangeRejectedError, NotLeaderError, ProposalDroppedError, UncommittedLimitError, invariant } from './errors.js';
import { RAFT_DEFAULTS } from './defaults.js';
import { applyConfChangeTo, decodeConfEntry, encodeConfEntry, MalformedConfChangeError } from './conf-change-codec.js';
import { EntriesLoadingError, type LogStorage } from './log-storage.js';
import { Progress, quorumSize, quorumValue, tallyVotes } from './progress.js';
import { RaftLog } from './raft-log.js';
import {
  emptyMessage,
  isEmptyHardState,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type ProposalReceipt,
  type RaftConfig,
  type RaftLogger,
  type RaftStatus,
  type ReadState,
  type Recovery,
  type Role,
  type Snapshot,
} from './types.js';

const EMPTY = new Uint8Array(0);
/** Vote requests sent on behalf of a leadership transfer carry this context: they bypass the lease. */
const TRANSFER_CONTEXT = 'transfer';

/** Why a node refused a (pre-)vote; logged as `raft.vote_refused`'s reason. */
type VoteRefusal =
  | 'rebuilding' // this node may have lost entries it acknowledged
  | 'concurrent_pre_campaign' // tie-break between pre-candidates with the same log
  | 'in_lease' // this node heard from its leader within an election timeout
  | 'stale_term' // the candidate's term is behind ours
  | 'log_behind' // the candidate's log is less up to date than ours
  | 'already_voted'; // this node voted for another candidate in this term, or follows a leader in it

const silentLogger: RaftLogger = { info() {}, warn() {} };

/**
 * Whether `m`, received by a node without any durable Raft state, proves that the cluster has a
 * history this node may have been part of (and lost): then it must rebuild before it votes. What is
 * no proof is what a brand-new cluster sends while it forms: votes for candidates with empty logs,
 * pre-vote traffic, responses, and its first leader's appends and heartbeats before it commits
 * anything (an append from index 0 whose entries are all of the leader's term, commit 0).
 */
function showsClusterHistory(m: Message): boolean {
  switch (m.type) {
    case 'app':
      return m.commit > 0 || m.index > 0 || m.entries.some((e) => e.term !== m.term);
    case 'heartbeat':
      return (m.leaderCommit ?? m.commit) > 0;
    case 'vote':
    case 'preVote':
      return m.index > 0 || m.logTerm > 0;
    case 'snap':
    case 'timeoutNow':
      return true;
    default:
      return false;
  }
}

interface PendingRead {
  context: string;
  index: number;
  /** Who asked: this node, or a follower that forwarded the request. */
  from: NodeId;
  acks: Set<NodeId>;
}

/**
 * The Raft state machine (election, replication, ReadIndex, lease, transfer, snapshots, membership).
 * Pure and single-threaded: every input is a method call, every output lands in `messages`,
 * `readStates` or the log; RawNode packages them into Ready batches.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = '';
  leaderId: NodeId = '';
  role: Role = 'follower';
  readonly log: RaftLog;

  messages: Message[] = [];
  readStates: ReadState[] = [];

  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Logical clock: ticks since this instance was created. Used for lease accounting only. */
  private now = 0;

  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflight: number;
  private readonly maxSizePerMsg: number;
  private readonly maxUncommittedEntries: number;
  private readonly random: (n: number) => number;
  private readonly logger: RaftLogger;

  /** Target of an ongoing leadership transfer ('' when none). Proposals are refused meanwhile. */
  leadTransferee: NodeId = '';
  /** Set once this leader sent TimeoutNow: a forced election may follow, so the lease is void for the term. */
  private transferStartedThisTerm = false;
  /** invariant: a new conf change is only accepted once applied >= pendingConfIndex. */
  private pendingConfIndex = 0;
  /** Leader only: for each voter, the highest leader clock value it acknowledged via heartbeat. */
  private leaseAcks = new Map<NodeId, number>();
  private pendingReads: PendingRead[] = [];
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  private deferredReads: { context: string; from: NodeId }[] = [];
  /** Appends requested by proposals, flushed once per Ready so many proposals share one message. */
  broadcastPending = false;
  /** Set while this node must not vote or campaign (see Recovery in types.ts); persisted in the hard state. */
  recovery: Recovery | undefined;
  private readonly unsafeRebuildingVotes: boolean;

  constructor(config: RaftConfig, storage: LogStorage) {
    invariant(config.id !== '', 'node id must not be empty');
    invariant(
      config.heartbeatTicks > 0 && config.electionTicks > config.heartbeatTicks,
      () => `electionTicks (${config.electionTicks}) must exceed heartbeatTicks (${config.heartbeatTicks}) > 0`,
    );
    this.id = config.id;
    this.electionTimeout = config.electionTicks;
    this.heartbeatTimeout = config.heartbeatTicks;
    this.preVote = config.preVote ?? RAFT_DEFAULTS.preVote;
    this.checkQuorum = config.checkQuorum ?? RAFT_DEFAULTS.checkQuorum;
    this.maxInflight = config.maxInflightMsgs ?? RAFT_DEFAULTS.maxInflightMsgs;
    this.maxSizePerMsg = config.maxSizePerMsg ?? RAFT_DEFAULTS.maxSizePerMsg;
    this.maxUncommittedEntries = config.maxUncommittedEntries ?? RAFT_DEFAULTS.maxUncommittedEntries;
    this.random = config.random;
    this.logger = config.logger ?? silentLogger;
    this.unsafeRebuildingVotes = config.unsafeRebuildingVotes ?? false;

    const { hardState, confState } = storage.initialState();
    const snapshotIndex = storage.snapshot().meta.index;
    // No durable state at all: a first start, or a start after the data dir was wiped. Only the
    // cluster can tell which (see showsClusterHistory).
    const nothingDurable = isEmptyHardState(hardState) && storage.lastIndex() === 0 && snapshotIndex === 0;
    // A node without any configuration was started to join a cluster (or to be added back after
    // its removal, with a wiped disk): it never helps form a new one, so it starts out rebuilding
    // and votes only once a leader caught it up. As 'pristine' it would grant an empty-log candidate
    // that missed the cluster's history (the simulator's seed 2789: two removed, wiped members
    // rejoined and elected a founder that had been cut off from the start, over committed entries).
    const joining = nothingDurable && confState.voters.length === 0 && confState.learners.length === 0;
    this.recovery = hardState.recovery ?? (joining ? 'rebuilding' : nothingDurable ? 'pristine' : undefined);
    const applied = Math.max(config.applied ?? 0, snapshotIndex);
    // What the state machine applied was committed, and the log held it durably before it was
    // applied. The stored commit index may lag it: a hard state whose only change is the commit
    // index is saved without an fsync (Ready.mustSync), as etcd does.
    const commit = Math.max(hardState.commit, Math.min(applied, storage.lastIndex()));
    this.log = new RaftLog(storage, commit, Math.min(applied, Math.max(commit, snapshotIndex)));
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.applyConfState(confState);
    // Membership changes between the snapshot and the applied index are already reflected in the
    // state machine; replay them here so the tracker matches it.
    if (this.log.applied > snapshotIndex) {
      invariant(this.log.firstIndex() <= snapshotIndex + 1, 'entries after the snapshot are missing from the log');
      for (const entry of this.log.confEntries(snapshotIndex + 1, this.log.applied + 1)) this.applyConfEntry(entry);
    }
    this.becomeFollower(this.term, '');
  }

  // ---- membership bookkeeping ----------------------------------------------------------------

  private applyConfState(conf: ConfState): void {
    this.voters = new Set(conf.voters);
    this.learners = new Set(conf.learners);
    this.progress = new Map();
    const next = this.log.lastIndex() + 1;
    for (const id of conf.voters) this.progress.set(id, new Progress(next, this.maxInflight, false));
    for (const id of conf.learners) this.progress.set(id, new Progress(next, this.maxInflight, true));
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  private promotable(): boolean {
    return this.voters.has(this.id);
  }

  private voterList(): NodeId[] {
    return [...this.voters];
  }

  // ---- role transitions ----------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = '';
    }
    this.leaderId = '';
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    this.transferStartedThisTerm = false;
    this.leaseAcks = new Map();
    this.pendingReads = [];
    this.deferredReads = [];
    this.broadcastPending = false;
    const lastIndex = this.log.lastIndex();
    for (const [id, pr] of this.progress) {
      const fresh = new Progress(lastIndex + 1, this.maxInflight, pr.isLearner);
      // invariant: our own match counts only entries that are durable here.
      if (id === this.id) fresh.match = this.log.persistedIndex();
      this.progress.set(id, fresh);
    }
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random(this.electionTimeout);
  }

  becomeFollower(term: number, leaderId: NodeId): void {
    const wasLeader = this.role === 'leader';
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
    if (wasLeader) this.logger.info('raft.stepped_down', { id: this.id, term, leaderId });
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Pre-vote does not touch term or vote: a node stuck in a minority cannot inflate terms.
    this.votes = new Map();
    this.leaderId = '';
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate can become leader');
    this.reset(this.term);
    this.leaderId = this.id;
    this.role = 'leader';
    // A pristine node wins only with votes of nodes whose logs are empty too: a brand-new cluster.
    if (this.recovery === 'pristine') this.recovery = undefined;
    this.progress.get(this.id)?.becomeReplicate();
    // Conservatively treat everything in our log as possibly holding an unapplied conf change.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op lets this leader commit (and so learn the commit index of) its predecessors' entries.
    this.appendEntries([{ type: 'normal', data: EMPTY }]);
    this.logger.info('raft.became_leader', { id: this.id, term: this.term, lastIndex: this.log.lastIndex() });
  }

  // ---- time ----------------------------------------------------------------------------------

  tick(): void {
    this.now++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed < this.randomizedElectionTimeout) return;
    this.electionElapsed = 0;
    if (this.promotable() && !this.mustNotVote()) this.campaign(this.preVote ? 'preElection' : 'election');
    else this.probeForLeader();
  }

  /**
   * A node that may not campaign (rebuilding, or a learner) and heard from no leader for an
   * election timeout asks the voters it knows with a pre-vote it never follows up: pre-votes change
   * nothing where they arrive, and a refusal names the leader the voter follows (leaderHint). That
   * is how a node that missed the change adding its leader learns to accept that leader (peer
   * admission refuses a non-member's traffic); it could not ask otherwise. Grants are ignored.
   */
  private probeForLeader(): void {
    for (const id of this.voters) {
      if (id !== this.id) this.send(this.voteRequest('preVote', id, this.term + 1));
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.logger.warn('raft.check_quorum_failed', { id: this.id, term: this.term });
          this.becomeFollower(this.term, '');
          return;
        }
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== '') {
        this.logger.warn('raft.transfer_timed_out', { id: this.id, to: this.leadTransferee });
        this.abortLeaderTransfer();
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      const last = this.pendingReads[this.pendingReads.length - 1];
      this.broadcastHeartbeat(last?.context);
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === this.id || this.progress.get(id)?.recentActive) active++;
    }
    return active >= quorumSize(this.voters.size);
  }

  // ---- elections -----------------------------------------------------------------------------

  campaign(kind: 'preElection' | 'election' | 'transfer'): void {
    if (!this.promotable()) return;
    if (this.mustNotVote()) {
      this.logger.info('raft.campaign_refused', { id: this.id, term: this.term, kind, reason: 'rebuilding: this node may have lost entries it acknowledged' });
      return;
    }
    let voteType: 'preVote' | 'vote';
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.votes.set(this.id, true);
    this.logger.info('raft.campaign_started', { id: this.id, term, kind, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm() });
    if (tallyVotes(this.voterList(), this.votes) === 'won') {
      // Single-voter cluster.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      const message = this.voteRequest(voteType, id, term);
      if (kind === 'transfer') message.context = TRANSFER_CONTEXT;
      this.send(message);
    }
  }

  /** A (pre-)vote request to `to` for `term`, carrying our last log position. */
  private voteRequest(type: 'preVote' | 'vote', to: NodeId, term: number): Message {
    const message = emptyMessage(type, this.id, to, term);
    message.index = this.log.lastIndex();
    message.logTerm = this.log.lastTerm();
    return message;
  }

  private handleVoteRequest(m: Message): void {
    const isPreVote = m.type === 'preVote';
    if (this.mustNotVote()) {
      // Our old incarnation may have voted in this term already, or held entries this candidate
      // lacks: only a node that kept its data may vote (pre-votes included, or a node that lost
      // its data could still help an out-of-date candidate past the pre-vote round).
      this.refuseVote(m, 'rebuilding');
      return;
    }
    const canVote = this.vote === m.from || (this.vote === '' && this.leaderId === '') || (isPreVote && m.term > this.term);
    const responseType = isPreVote ? 'preVoteResp' : 'voteResp';
    if (isPreVote && this.yieldsNotToConcurrentPreCandidate(m)) {
      this.refuseVote(m, 'concurrent_pre_campaign');
      this.askAgain(m.from);
      return;
    }
    const upToDate = this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // A granted pre-vote answers in the candidate's future term so it can count it.
      this.logVoteDecision('raft.vote_granted', m);
      this.send(emptyMessage(responseType, this.id, m.from, m.term));
      if (!isPreVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
        // A pristine node grants only candidates with an empty log (any other is evidence of
        // history, see showsClusterHistory): it takes part in a brand-new cluster's first election.
        if (this.recovery === 'pristine') this.recovery = undefined;
      }
    } else {
      this.refuseVote(m, upToDate ? 'already_voted' : 'log_behind');
    }
  }

  /**
   * Two nodes that time out within a round trip of each other would each grant the other's pre-vote
   * (a pre-vote grant records nothing), both become candidates in the same term, refuse each other
   * the real vote, and wait out a whole new election timeout: a split vote that doubles failover
   * time. So a pre-candidate refuses the pre-vote of a peer in the same term whose log is exactly as
   * up to date as its own and whose id ranks after its own, for its whole pre-campaign round; the
   * lower id wins the tie, and a peer with a fresher log or a newer term is granted as before. (A
   * window of one heartbeat interval was not enough: under load the two pre-campaigns began 27 ms
   * apart and the first pre-vote took 42 ms to arrive, and the vote split.)
   *
   * Holding out cannot block the peer for long:
   * - a peer that has already answered our pre-vote this round is never refused: if it refused us
   *   we cannot win through it, so we must not stand in its way;
   * - our refusal travels on the link our own pre-vote to that peer took. If that link is cut the
   *   peer could not have won through us anyway, since a grant would be lost as well;
   * - if our pre-vote was lost (the link was still being redialled when we sent it) we ask again
   *   beside the refusal (see askAgain), and the peer, ranking after us, grants it.
   */
  private yieldsNotToConcurrentPreCandidate(m: Message): boolean {
    if (this.role !== 'preCandidate' || this.votes.has(m.from)) return false;
    const sameTerm = m.term === this.term + 1;
    const sameLog = m.index === this.log.lastIndex() && m.logTerm === this.log.lastTerm();
    return sameTerm && sameLog && this.id < m.from;
  }

  /** Our pre-vote to this peer again: it ranks after us in a tie, and it has not answered us. */
  private askAgain(peer: NodeId): void {
    this.send(this.voteRequest('preVote', peer, this.term + 1));
  }

  /**
   * rejectVote, logged with the reason (`raft.vote_refused`). Every refusal is logged: they happen
   * only around elections, and an election that ends without a leader is explained by them alone.
   */
  private refuseVote(m: Message, reason: VoteRefusal): void {
    this.logVoteDecision('raft.vote_refused', m, reason);
    this.rejectVote(m);
  }

  private logVoteDecision(event: 'raft.vote_granted' | 'raft.vote_refused', m: Message, reason?: VoteRefusal): void {
    this.logger.info(event, {
      id: this.id,
      term: this.term,
      candidate: m.from,
      candidateTerm: m.term,
      preVote: m.type === 'preVote',
      candidateLast: `${m.logTerm}/${m.index}`,
      ownLast: `${this.log.lastTerm()}/${this.log.lastIndex()}`,
      leaderId: this.leaderId,
      electionElapsed: this.electionElapsed,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  /** Refuse a (pre-)vote at our term, naming the leader we follow in it (see Message.leaderHint). */
  private rejectVote(m: Message): void {
    const reply = emptyMessage(m.type === 'preVote' ? 'preVoteResp' : 'voteResp', this.id, m.from, this.term);
    reply.reject = true;
    if (this.leaderId !== '') reply.leaderHint = this.leaderId;
    this.send(reply);
  }

  private handleVoteResponse(m: Message): void {
    const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    if (m.type !== expected) return;
    this.votes.set(m.from, !m.reject);
    const result = tallyVotes(this.voterList(), this.votes);
    if (result === 'won') {
      if (this.role === 'preCandidate') this.campaign('election');
      else {
        this.becomeLeader();
        this.broadcastAppend();
      }
    } else if (result === 'lost') {
      this.logger.info('raft.election_lost', { id: this.id, term: this.term, preVote: this.role === 'preCandidate', lastRefusedBy: m.from });
      this.becomeFollower(this.term, '');
    }
  }

  // ---- message dispatch ----------------------------------------------------------------------

  step(m: Message): void {
    if (m.to !== this.id) return;
    if (this.recovery === 'pristine' && showsClusterHistory(m)) this.startRebuilding(m, 'this node has no Raft state but the cluster has history');
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = m.context === TRANSFER_CONTEXT;
        // Leader stickiness: while we hear from a live leader, ignore disruptive candidates.
        const inLease = this.checkQuorum && this.leaderId !== '' && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Our term stays; the refusal (at our term, which a candidate never adopts from it) names
          // our leader, so a member that lags behind that leader's addition learns to accept it.
          this.refuseVote(m, 'in_lease');
          return;
        }
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // Pre-vote traffic never changes our term.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, '');
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. back from a partition) learns our term and steps down; without this
        // it could keep a pre-voting minority from ever moving on.
        this.send(emptyMessage('appResp', this.id, m.from, this.term));
      } else if (m.type === 'preVote') {
        this.refuseVote(m, 'stale_term');
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case 'readIndex':
        if (pr && m.context) this.startReadIndex(m.context, m.from);
        return;
      case 'transferLeader':
        if (pr && m.context) this.startTransfer(m.context);
        return;
    }
    if (!pr) return;
    if (m.type === 'appResp' || m.type === 'heartbeatResp') pr.heardAt = this.now;
    switch (m.type) {
      case 'appResp':
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        break;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m, pr);
        break;
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case 'preVoteResp':
      case 'voteResp':
        this.handleVoteResponse(m);
        break;
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        break;
      case 'snap':
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        break;
      case 'timeoutNow':
        if (this.promotable()) {
          this.logger.info('raft.transfer_campaign', { id: this.id, term: this.term, from: m.from });
          this.campaign('transfer');
        }
        break;
      case 'readIndexResp':
        if (m.context) this.readStates.push({ index: m.index, context: m.context });
        break;
      default:
        break;
    }
  }

  // ---- follower side of replication ----------------------------------------------------------

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      const reply = emptyMessage('appResp', this.id, m.from, this.term);
      reply.index = this.log.committed;
      this.send(reply);
      return;
    }
    const lastMatch = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    // Only the commit index, accepted: the leader expects no answer (broadcastCommit). Entries,
    // a rejection and a rebuilding node's progress are always answered.
    if (m.commitOnly && lastMatch !== undefined && m.entries.length === 0 && this.recovery === undefined) return;
    const reply = emptyMessage('appResp', this.id, m.from, this.term);
    if (lastMatch !== undefined) {
      reply.index = lastMatch;
      // Entries from a brand-new cluster's first leader (the only appends that are no evidence of
      // history): this node now holds part of the log like any founding member.
      if (this.recovery === 'pristine' && m.entries.length > 0) this.recovery = undefined;
      else if (this.recovery === 'rebuilding') this.maybeFinishRebuilding(m, lastMatch);
    } else {
      // Point the leader at the last entry that might match, skipping a whole term at a time.
      const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      reply.index = m.index;
      reply.reject = true;
      reply.rejectHint = hint.index;
      reply.rejectTerm = hint.term;
    }
    this.send(reply);
  }

  private handleHeartbeat(m: Message): void {
    const lastIndex = this.log.lastIndex();
    // The leader sends min(match, commit): it believes we hold at least m.commit because we
    // acknowledged it. A shorter log means we lost acknowledged entries (etcd panics here with
    // "tocommit is out of range ... was the raft log corrupted, truncated, or lost?"); we rebuild.
    if (m.commit > lastIndex && this.recovery !== 'rebuilding') {
      this.startRebuilding(m, `the leader counts entries up to ${m.commit} as held here but the log ends at ${lastIndex}`);
    }
    this.log.commitTo(Math.min(m.commit, lastIndex));
    const reply = emptyMessage('heartbeatResp', this.id, m.from, this.term);
    reply.index = m.index; // echo the leader's clock for its lease
    if (m.context !== undefined) reply.context = m.context;
    if (this.recovery === 'rebuilding') {
      // Tells the leader where our log really ends (it resets what it believes we hold) and that
      // this acknowledgement vouches for nothing: our old incarnation may have voted for another
      // leader, so it must not count towards leader leases or ReadIndex quorums.
      reply.reject = true;
      reply.rejectHint = lastIndex;
    }
    this.send(reply);
  }

  /** This node lost (or never had) entries the cluster may count on: stop voting until rebuilt. */
  private startRebuilding(m: Message, reason: string): void {
    this.recovery = 'rebuilding';
    this.logger.warn('raft.rebuilding', {
      id: this.id,
      term: this.term,
      from: m.from,
      messageTerm: m.term,
      messageType: m.type,
      lastIndex: this.log.lastIndex(),
      reason,
    });
  }

  /**
   * A rebuilding node may vote again once it accepted an append from its leader that leaves it
   * holding the leader's whole commit index, and that index is of the leader's own term:
   * - the append matched at prevIndex >= the leader's match for us (match < next), so whatever the
   *   leader counted us as holding — even an acknowledgement of our lost incarnation — we hold;
   *   from then on its match for us only grows with acknowledgements of this incarnation;
   * - a leader that committed an entry of its own term holds every entry committed before it, and
   *   so do we now: no candidate we vote for can lack an entry our lost acknowledgement helped commit.
   * Which term our lost incarnation may have voted in is not known; see the limits in
   * docs/ARCHITECTURE.md ("A node that lost its data").
   */
  private maybeFinishRebuilding(m: Message, lastMatch: number): void {
    if (m.commit === 0 || lastMatch < m.commit || this.log.term(m.commit) !== m.term) return;
    this.recovery = undefined;
    this.logger.info('raft.rebuild_complete', { id: this.id, term: this.term, leaderId: m.from, commit: this.log.committed, lastIndex: this.log.lastIndex() });
  }

  /** While rebuilding, this node neither votes (pre-votes included) nor campaigns. */
  private mustNotVote(): boolean {
    return this.recovery === 'rebuilding' && !this.unsafeRebuildingVotes;
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    const reply = emptyMessage('appResp', this.id, m.from, this.term);
    if (snapshot && this.restore(snapshot)) {
      this.logger.info('raft.snapshot_restoring', { id: this.id, index: snapshot.meta.index, term: snapshot.meta.term });
      reply.index = this.log.lastIndex();
    } else {
      reply.index = this.log.committed;
    }
    this.send(reply);
  }

  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: just move the commit index forward.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.applyConfState(snapshot.meta.conf);
    return true;
  }

  // ---- leader side of replication ------------------------------------------------------------

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      if (pr.lostAcknowledgedEntries(m.index, m.rejectHint)) {
        this.forgetLostEntries(m.from, pr, m.rejectHint);
        return;
      }
      let hint = m.rejectHint;
      if ((m.rejectTerm ?? 0) > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.rejectTerm!).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (pr.maybeUpdate(m.index)) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

      if (this.maybeCommit()) {
        this.releaseDeferredReads();
        this.broadcastCommit();
      } else if (wasPaused) {
        this.sendAppend(m.from);
      }
      // Fill the pipeline while the window has room.
      while (this.sendAppend(m.from, false)) {
        /* keep sending */
      }
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    pr.rebuilding = m.reject;
    if (m.reject) {
      // A rebuilding follower (see handleHeartbeat): rejectHint is where its log really ends.
      if (m.rejectHint < pr.match) this.forgetLostEntries(m.from, pr, m.rejectHint);
      // Always append (even with nothing new): an append carrying our commit index is how it
      // learns it holds everything committed and may vote again (maybeFinishRebuilding).
      else this.sendAppend(m.from);
      return; // its acknowledgement vouches for nothing: no lease, no ReadIndex ack
    }
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (!pr.isLearner && m.index > (this.leaseAcks.get(m.from) ?? -1)) this.leaseAcks.set(m.from, m.index);
    if (m.context !== undefined && !pr.isLearner) this.ackRead(m.context, m.from);
  }

  /**
   * `id` no longer holds entries it acknowledged (its data dir was wiped or replaced while we stayed
   * leader): its match no longer counts towards commit, and it is probed again from where its log
   * really ends. Without this a wiped follower stayed empty forever while we reported it caught up.
   */
  private forgetLostEntries(id: NodeId, pr: Progress, followerLast: number): void {
    this.logger.warn('raft.follower_lost_entries', { id: this.id, term: this.term, follower: id, match: pr.match, followerLastIndex: followerLast });
    pr.resetAfterDataLoss(followerLast);
    this.sendAppend(id);
  }

  /**
   * Send the next batch of entries (or a snapshot) to `to`. Returns whether anything was sent.
   * `commitOnly`: an append that carries no entries to a follower in replicate state is marked as
   * only telling it the commit index; it accepts that without an answer (see handleAppend).
   */
  private sendAppend(to: NodeId, sendIfEmpty = true, commitOnly = false): boolean {
    const pr = this.progress.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let entries: Entry[] | undefined;
    try {
      entries = prevTerm === undefined ? undefined : this.log.entriesFrom(pr.next, this.maxSizePerMsg);
    } catch (error) {
      // Storage is reading them from disk; entriesLoaded() (or the next heartbeat answer) retries.
      if (error instanceof EntriesLoadingError) return false;
      throw error;
    }
    if (entries !== undefined && entries.length === 0 && !sendIfEmpty) return false;

    if (prevTerm === undefined || entries === undefined) {
      // The follower needs entries we compacted: ship the snapshot instead.
      if (!pr.recentActive) return false;
      const snapshot = this.log.snapshot();
      if (snapshot.meta.index === 0) return false;
      pr.becomeSnapshot(snapshot.meta.index);
      const message = emptyMessage('snap', this.id, to, this.term);
      message.snapshot = snapshot;
      this.send(message);
      this.logger.info('raft.snapshot_sent', { id: this.id, to, index: snapshot.meta.index });
      return true;
    }
    const message = emptyMessage('app', this.id, to, this.term);
    message.index = prevIndex;
    message.logTerm = prevTerm;
    message.entries = entries;
    message.commit = this.log.committed;
    if (entries.length > 0) {
      const last = entries[entries.length - 1]!.index;
      if (pr.state === 'replicate') {
        pr.next = last + 1;
        pr.inflights.add(last);
      } else {
        pr.probeSent = true;
      }
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    } else if (commitOnly && pr.state === 'replicate') {
      message.commitOnly = true;
    }
    this.send(message);
    return true;
  }

  /**
   * Entries storage was reading from disk are in memory now: apply can go on, and followers whose
   * next batch waited for them get it.
   */
  entriesLoaded(): void {
    this.log.entriesLoaded();
    if (this.role !== 'leader') return;
    for (const id of this.progress.keys()) if (id !== this.id) while (this.sendAppend(id, false)) {}
  }

  broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  /**
   * The commit index moved: tell every follower. One in step with us gets an append with nothing
   * but the commit index, which it does not answer: on every write that is one message fewer
   * each way per follower, and its answer would tell us nothing its earlier ones did not.
   */
  private broadcastCommit(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true, true);
  }

  private broadcastHeartbeat(context?: string): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const message = emptyMessage('heartbeat', this.id, id, this.term);
      message.commit = Math.min(pr.match, this.log.committed);
      message.leaderCommit = this.log.committed;
      message.index = this.now;
      if (context !== undefined) message.context = context;
      this.send(message);
    }
  }

  private maybeCommit(): boolean {
    const matches = this.voterList().map((id) => this.progress.get(id)?.match ?? 0);
    return this.log.maybeCommit(quorumValue(matches), this.term);
  }

  private appendEntries(entries: { type: Entry['type']; data: Uint8Array }[]): ProposalReceipt {
    let index = this.log.lastIndex();
    const stamped: Entry[] = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    const lastIndex = this.log.append(stamped);
    // Our own copy counts towards commit only once persisted (onEntriesPersisted): a commit index
    // that reaches followers or clients never relies on entries this leader could still lose.
    return { term: this.term, index: lastIndex };
  }

  /** The runtime made entries up to (index, term) durable. */
  onEntriesPersisted(index: number, term: number): void {
    const self = this.progress.get(this.id);
    if (!self || this.log.term(index) !== term) return; // replaced meanwhile
    self.maybeUpdate(index);
    if (this.role === 'leader' && this.maybeCommit()) {
      this.releaseDeferredReads();
      this.broadcastPending = true; // tell followers the new commit index
    }
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ---- proposals -----------------------------------------------------------------------------

  private assertLeaderAcceptingProposals(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.id, this.leaderId);
    if (this.leadTransferee !== '') throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    if (this.log.lastIndex() - this.log.committed >= this.maxUncommittedEntries) throw new UncommittedLimitError(this.maxUncommittedEntries);
  }

  propose(data: Uint8Array): ProposalReceipt {
    this.assertLeaderAcceptingProposals();
    const receipt = this.appendEntries([{ type: 'normal', data }]);
    this.broadcastPending = true;
    return receipt;
  }

  proposeConfChange(change: ConfChange): ProposalReceipt {
    this.assertLeaderAcceptingProposals();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ConfChangeRejectedError(`a previous membership change (index ${this.pendingConfIndex}) is not applied yet; retry once it is`, true);
    }
    // One-server-at-a-time changes are only safe once this leader committed an entry of its own
    // term (the fix for the single-server membership bug described by Ongaro, 2015).
    if (!this.committedEntryInCurrentTerm()) {
      throw new ConfChangeRejectedError('the new leader has not committed an entry of its term yet; retry shortly', true);
    }
    const isVoter = this.voters.has(change.nodeId);
    const isLearner = this.learners.has(change.nodeId);
    switch (change.type) {
      case 'addVoter':
        if (isVoter) throw new ConfChangeRejectedError(`${change.nodeId} is already a voter`);
        if (isLearner) this.assertLearnerReadyToPromote(change.nodeId);
        break;
      case 'addLearner':
        if (isVoter) throw new ConfChangeRejectedError(`${change.nodeId} is a voter; remove it before re-adding it as a learner`);
        if (isLearner) throw new ConfChangeRejectedError(`${change.nodeId} is already a learner`);
        break;
      case 'removeNode':
        if (!isVoter && !isLearner) throw new ConfChangeRejectedError(`${change.nodeId} is not a member`);
        if (isVoter && this.voters.size === 1) throw new ConfChangeRejectedError(`${change.nodeId} is the last voter`);
        break;
    }
    const result = applyConfChangeTo(this.confState(), change);
    this.assertVotersStayElectable(result.voters);
    const receipt = this.appendEntries([{ type: 'conf', data: encodeConfEntry(change, result) }]);
    this.pendingConfIndex = receipt.index;
    this.broadcastPending = true;
    return receipt;
  }

  /**
   * Promote only a learner that is in sync, as etcd does ("can only promote a learner member which
   * is in sync with leader"): heard from within an election timeout, not rebuilding, and holding at
   * least nine tenths of the committed log. A voter that cannot vote yet (it has no data, or lost
   * it) would only enlarge the quorum: with one more member down or rebuilding, none could be
   * elected, and a rebuilding node leaves that state only when a leader catches it up. The refusal
   * is transient: the learner keeps catching up, so a retry within the request's deadline is right.
   */
  private assertLearnerReadyToPromote(id: NodeId): void {
    const pr = this.progress.get(id);
    const committed = this.log.committed;
    const reachable = pr !== undefined && this.now - pr.heardAt < this.electionTimeout;
    const caughtUp = pr !== undefined && pr.match * 10 >= committed * 9;
    if (reachable && !pr.rebuilding && caughtUp) return;
    const why = !reachable
      ? 'has not answered within an election timeout'
      : pr.rebuilding
        ? 'is rebuilding its data'
        : `holds ${pr.match} of ${committed} committed entries`;
    throw new ConfChangeRejectedError(`learner ${id} is not in sync with the leader yet (it ${why}); promote it once it has caught up`, true);
  }

  /**
   * Refuse a change of voters after which fewer than a quorum of them are known to be able to
   * vote: reachable within the last election timeout and not rebuilding (a node that lost its data
   * votes only once a leader caught it up, so a quorum that needs it could never elect that leader).
   * The spirit of etcd's --strict-reconfig-check, which refuses changes that would lose quorum.
   */
  private assertVotersStayElectable(voters: readonly NodeId[]): void {
    const sameVoters = voters.length === this.voters.size && voters.every((id) => this.voters.has(id));
    if (sameVoters) return;
    const able: NodeId[] = [];
    const unable: NodeId[] = [];
    for (const id of voters) {
      const pr = this.progress.get(id);
      // The voter being added counts as able (etcd does the same): it is added to take part.
      const ok = id === this.id || !this.voters.has(id) || (pr !== undefined && !pr.rebuilding && this.now - pr.heardAt < this.electionTimeout);
      (ok ? able : unable).push(id);
    }
    const quorum = quorumSize(voters.length);
    if (able.length >= quorum) return;
    throw new ConfChangeRejectedError(
      `after it only ${able.length} of ${voters.length} voters would be known able to vote (${able.join(', ') || 'none'}); ` +
        `a quorum needs ${quorum} — first bring back or let catch up ${unable.join(', ')} (unreachable or rebuilding after losing data)`,
    );
  }

  /**
   * Apply a committed conf entry (called by RawNode.advance in log order). The entry carries the
   * whole resulting membership, which replaces ours: a joiner replaying the log from index 1 never
   * knew the bootstrap membership and must not reconstruct it from deltas.
   */
  applyConfEntry(entry: Entry): void {
    let change: ConfChange;
    let result: ConfState;
    try {
      ({ change, result } = decodeConfEntry(entry.data));
    } catch (error) {
      if (error instanceof MalformedConfChangeError) {
        this.logger.warn('raft.conf_change_malformed', { id: this.id, index: entry.index, error: error.message });
        return;
      }
      throw error;
    }
    const { nodeId } = change;
    const lastIndex = this.log.lastIndex();
    this.voters = new Set(result.voters);
    this.learners = new Set(result.learners);
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) {
        this.progress.delete(id);
        this.leaseAcks.delete(id);
      }
    }
    for (const id of [...result.voters, ...result.learners]) {
      const isLearner = this.learners.has(id);
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = isLearner;
      else {
        const fresh = new Progress(lastIndex + 1, this.maxInflight, isLearner);
        if (id === this.id) fresh.match = this.log.persistedIndex();
        this.progress.set(id, fresh);
      }
    }
    this.logger.info('raft.conf_change_applied', {
      id: this.id,
      index: entry.index,
      change: change.type,
      nodeId,
      voters: [...this.voters],
      learners: [...this.learners],
    });
    if (this.role !== 'leader') return;
    if (!this.voters.has(this.id)) {
      // A removed leader hands over by stepping down; the remaining voters elect a successor. It
      // first tells them the change is committed: a follower that does not know keeps the old
      // membership, whose quorum may need this node (it rejects candidates behind its log) or a
      // member that cannot vote yet (rebuilding after losing its data), and none can be elected.
      this.broadcastAppend();
      this.becomeFollower(this.term, '');
      return;
    }
    if (this.leadTransferee !== '' && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    const newMember = this.progress.get(nodeId);
    if (newMember) newMember.recentActive = true;
    // A smaller quorum may commit more now.
    if (this.maybeCommit()) this.releaseDeferredReads();
    this.broadcastAppend();
  }

  // ---- leadership transfer -------------------------------------------------------------------

  startTransfer(to: NodeId): void {
    if (this.role !== 'leader') {
      if (this.leaderId === '') throw new NotLeaderError(this.id, '');
      const message = emptyMessage('transferLeader', this.id, this.leaderId, this.term);
      message.context = to;
      this.send(message);
      return;
    }
    if (to === this.id) return;
    if (!this.voters.has(to)) {
      this.logger.warn('raft.transfer_refused', { id: this.id, to, reason: 'target is not a voter' });
      return;
    }
    if (this.leadTransferee === to) return;
    this.abortLeaderTransfer();
    this.electionElapsed = 0; // the transfer gets one election timeout to finish
    this.leadTransferee = to;
    this.logger.info('raft.transfer_started', { id: this.id, to, term: this.term });
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.transferStartedThisTerm = true;
    this.send(emptyMessage('timeoutNow', this.id, to, this.term));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = '';
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** Linearizable read: the ReadState arrives once a heartbeat quorum confirmed leadership. */
  readIndex(context: string): void {
    if (this.role === 'leader') {
      this.startReadIndex(context, this.id);
      return;
    }
    if (this.leaderId === '') throw new NotLeaderError(this.id, '');
    const message = emptyMessage('readIndex', this.id, this.leaderId, this.term);
    message.context = context;
    this.send(message);
  }

  private startReadIndex(context: string, from: NodeId): void {
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may still be behind the previous leader's: wait for the no-op to commit.
      if (this.deferredReads.length < 10000) this.deferredReads.push({ context, from });
      return;
    }
    const index = this.log.committed;
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.releaseRead({ context, index, from, acks: new Set() });
      return;
    }
    if (this.pendingReads.some((read) => read.context === context)) return;
    this.pendingReads.push({ context, index, from, acks: new Set([this.id]) });
    this.broadcastHeartbeat(context);
  }

  private releaseDeferredReads(): void {
    if (this.deferredReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const deferred = this.deferredReads;
    this.deferredReads = [];
    for (const read of deferred) this.startReadIndex(read.context, read.from);
  }

  private ackRead(context: string, from: NodeId): void {
    const position = this.pendingReads.findIndex((read) => read.context === context);
    if (position < 0) return;
    const read = this.pendingReads[position]!;
    read.acks.add(from);
    let acked = 0;
    for (const id of read.acks) if (this.voters.has(id)) acked++;
    if (acked < quorumSize(this.voters.size)) return;
    // Leadership confirmed as of this request: every earlier request is confirmed too.
    const released = this.pendingReads.slice(0, position + 1);
    this.pendingReads = this.pendingReads.slice(position + 1);
    for (const r of released) this.releaseRead(r);
  }

  private releaseRead(read: PendingRead): void {
    if (read.from === this.id) {
      this.readStates.push({ index: read.index, context: read.context });
    } else {
      const message = emptyMessage('readIndexResp', this.id, read.from, this.term);
      message.index = read.index;
      message.context = read.context;
      this.send(message);
    }
  }

  /**
   * Lease read: while a quorum acknowledged heartbeats sent within the last
   * (electionTimeout - margin) ticks, no other leader can have been elected (voters ignore
   * candidates while they hear from us), so the commit index is safe to read without a round trip.
   * Counted in ticks this relies on ticks advancing with real time, which a paused or stalled
   * process breaks (it loses ticks, not time): the runtime must also judge `ackedTick` — the stamp
   * of the newest heartbeat round a quorum acknowledged — against a monotonic clock (leaseRead).
   */
  leaseReadIndex(): number | null {
    return this.leaseRead()?.index ?? null;
  }

  /** The lease read index with the tick stamp of the heartbeat round that grants it, or null. */
  leaseRead(): { index: number; ackedTick: number } | null {
    if (this.role !== 'leader' || !this.checkQuorum || this.transferStartedThisTerm) return null;
    if (!this.committedEntryInCurrentTerm()) return null;
    const margin = Math.max(2, Math.ceil(this.electionTimeout / 5));
    const acks = this.voterList().map((id) => (id === this.id ? this.now : (this.leaseAcks.get(id) ?? -Infinity)));
    const quorumAck = quorumValue(acks);
    if (this.now - quorumAck >= this.electionTimeout - margin) return null;
    return { index: this.log.committed, ackedTick: quorumAck };
  }

  /** Ticks since this instance was created: heartbeats carry it as their stamp (m.index). */
  get tickCount(): number {
    return this.now;
  }

  // ---- snapshots and failures reported by the runtime ----------------------------------------

  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.becomeProbe();
    pr.probeSent = true;
  }

  reportUnreachable(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role === 'leader' && pr && pr.state === 'replicate') pr.becomeProbe();
  }

  flushBroadcast(): void {
    if (this.broadcastPending) {
      this.broadcastPending = false;
      if (this.role === 'leader') this.broadcastAppend();
    }
  }

  private send(message: Message): void {
    this.messages.push(message);
  }

  status(): RaftStatus {
    const status: RaftStatus = {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leaderId: this.leaderId,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      conf: this.confState(),
      leadTransferee: this.leadTransferee,
    };
    if (this.recovery) status.recovery = this.recovery;
    if (this.role === 'leader') {
      status.progress = {};
      for (const [id, pr] of this.progress) status.progress[id] = pr.toStatus();
    }
    return status;
  }
}
