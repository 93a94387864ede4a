// The vocabulary of the pure Raft core. Everything here is plain data so that the simulator,
// storage and transport can create, persist and ship it without knowing the core's internals.

export type NodeId = string;

/** 'normal' entries carry client commands (empty data = the leader's no-op); 'conf' entries carry a ConfChange. */
export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/**
 * Whether a node may trust its own durable state when it votes. A node that lost its data (a wiped
 * or replaced data dir) may have voted, or acknowledged entries, before the loss: voting again
 * could elect a second leader in a term it already voted in, or a leader lacking entries that were
 * committed with its lost acknowledgement. Absent: a member in good standing.
 *
 * - 'pristine': no durable Raft state yet (a node's first start, or a start after its data dir was
 *   wiped; the two look the same from inside). It votes only in what looks like a brand-new
 *   cluster's first election (a candidate with an empty log), and turns 'rebuilding' on the first
 *   sign that the cluster has history.
 * - 'rebuilding': it knows the cluster has history it may have lost; it neither votes nor campaigns
 *   until it holds everything a leader of the current term told it is committed (see
 *   Raft.maybeFinishRebuilding).
 */
export type Recovery = 'pristine' | 'rebuilding';

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  /** '' when this node has not voted in `term`. */
  vote: NodeId;
  commit: number;
  /** Persisted with the term and vote so a restart mid-rebuild is still a rebuild (see Recovery). */
  recovery?: Recovery;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** The state machine's serialized contents at meta.index (opaque to the core). */
  data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

/**
 * One-server-at-a-time membership change. `context` is opaque to the core; the runtime uses it to
 * carry the new member's addresses so every node learns them from the log.
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

export type MessageType =
  | 'app' // AppendEntries (leader -> follower)
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap' // InstallSnapshot (snapshot field set)
  | 'timeoutNow' // leadership transfer: campaign now, skipping pre-vote
  | 'readIndex' // follower -> leader: please confirm a read index for `context`
  | 'readIndexResp' // leader -> follower: `index` is safe to read at once applied
  | 'transferLeader'; // follower -> leader: please transfer leadership to the node named in `context`

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** app: term of the entry at `index`; vote/preVote: candidate's last log term. */
  logTerm: number;
  /** app: index preceding `entries`; appResp: highest index known to match (or rejected index); vote: last log index;
   *  heartbeat/heartbeatResp: the leader's logical clock at send time, echoed back (lease accounting). */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** appResp with reject: the follower's hint for where to probe next. */
  rejectHint: number;
  /** Only for rejectHint: term of the follower's entry at rejectHint (fast backtracking). */
  rejectTerm?: number;
  snapshot?: Snapshot;
  /**
   * heartbeat: the leader's actual commit index. `commit` on a heartbeat is capped at the
   * follower's match (so it never commits entries the follower may not hold); this one is not,
   * and only serves the follower to measure how far behind it is.
   */
  leaderCommit?: number;
  /**
   * app without entries, to a follower in replicate state: it only carries the leader's commit
   * index, and the follower does not answer it when it accepts it (Raft.broadcastCommit).
   */
  commitOnly?: boolean;
  /** ReadIndex request id (echoed by heartbeats and their responses); transferLeader target; vote: "transfer" for a forced election. */
  context?: string;
  /**
   * voteResp/preVoteResp rejections: the leader the sender follows in `term`, when it knows one. A
   * node that missed the membership change adding that leader refuses its traffic as a
   * non-member's; a member it trusts telling it who leads is how it learns to accept that leader
   * (runtime/peer-admission.ts). The core never acts on it.
   */
  leaderHint?: NodeId;
  /** Beside leaderHint, filled in by the sender's runtime: that leader's raft address from its member table. */
  leaderAddress?: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A linearizable read is safe once the local applied index reaches `index`. */
export interface ReadState {
  index: number;
  context: string;
}

export interface SoftState {
  leaderId: NodeId; // '' when unknown
  role: Role;
}

/**
 * One batch of work for the runtime. Order: persist `snapshot`, `entries` and `hardState`
 * (one fsync), then send `messages` (or send them first when `sendBeforePersist`), then apply
 * `committedEntries`, release `readStates`, and finally call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState; // set when leader or role changed
  hardState?: HardState; // set when it changed
  entries: Entry[]; // append to the durable log (replacing any conflicting suffix)
  snapshot?: Snapshot; // persist, then restore the state machine from it
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState.term/vote or entries changed: these need an fsync before sending. */
  mustSync: boolean;
  /**
   * True when `messages` may be sent BEFORE this Ready is persisted, so the leader's fsync runs in
   * parallel with its followers' (Raft thesis §10.2.1). Only ever set for a leader whose term and
   * vote did not change in this Ready: its own entries still count towards a commit index that is
   * applied, acknowledged or advertised only after this Ready is persisted (the next Ready).
   */
  sendBeforePersist: boolean;
}

/** Randomness is injected so that a seed reproduces a run. Returns an integer in [0, n). */
export type RandomInt = (n: number) => number;

export interface RaftLogger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
}

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning; randomized in [e, 2e). */
  electionTicks: number;
  heartbeatTicks: number;
  /** Applied index of the state machine at start (>= snapshot index), so entries are not re-delivered. */
  applied?: number;
  preVote?: boolean; // default true
  checkQuorum?: boolean; // default true
  /** Max AppendEntries messages in flight to one follower (pipelining window). */
  maxInflightMsgs?: number; // default 64
  /** Max bytes of entries in one AppendEntries message (batching). */
  maxSizePerMsg?: number; // default 1 MiB
  /** Max appended-but-uncommitted entries on the leader before proposals are refused (bounds memory). */
  maxUncommittedEntries?: number; // default 1024: async writes must not outrun replication
  /** Max bytes of entries handed out for apply in one Ready. */
  maxCommittedSizePerReady?: number; // default 4 MiB
  random: RandomInt;
  logger?: RaftLogger;
  /**
   * Simulator only (a mutation check): a 'rebuilding' node votes and campaigns as if it had never
   * lost its data. Exists to show that the rebuild guard is what keeps amnesia safe; never set it.
   */
  unsafeRebuildingVotes?: boolean;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** In state 'snapshot': the index of the snapshot being sent. */
  pendingSnapshot?: number;
  recentActive: boolean;
  isLearner: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId;
  leaderId: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  conf: ConfState;
  leadTransferee: NodeId;
  /** Set while this node must not vote (see Recovery). */
  recovery?: Recovery;
  /** Only on the leader. */
  progress?: Record<NodeId, ProgressStatus>;
}

/** What propose returns: the log position the command will occupy if it commits. */
export interface ProposalReceipt {
  term: number;
  index: number;
}

export function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return { type, from, to, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === '' && hs.commit === 0;
}
