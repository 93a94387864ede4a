// The service the runtime offers the client-facing server (RaftNode implements it; tests use an
// in-memory fake). Request and result shapes are the runtime's; the wire types come from api/.
import type { Command, CommandResult, KeyValue, LeaseInfo } from '../api/command.js';
import type { Consistency, Durability, NodeStatus, WaitOutcome } from '../api/types.js';
import type { NodeId } from '../raft/types.js';
import type { ScanResult } from '../storage/state-machine.js';
import type { WatchSource } from './watch-hub.js';

export type { WatchSource };

/** A lease as the leader sees it: its TTL, what is left of it by the leader's clock, its keys. */
export interface LeaseStatus extends LeaseInfo {
  remainingMs: number;
}

export type { Consistency, Durability, NodeStatus, WaitOutcome };

export interface WriteRequest {
  command: Command;
  durability: Durability;
  /** Absolute deadline, ms since epoch. */
  deadline: number;
  /** Aborted when the client cancels or goes away: whatever the request parked is freed. */
  signal?: AbortSignal;
}

export interface WriteAck {
  term: number;
  index: number;
  /** Present for sync writes: the applied result. Absent for async writes (not yet committed). */
  result?: CommandResult;
}

export interface ReadOptions {
  consistency: Consistency;
  /** follower reads: wait (until the deadline) until this node has applied at least minIndex. */
  minIndex?: number;
  /** follower reads: reject with StaleReadError if this node is further behind the leader than this. */
  maxLagMs?: number;
  deadline: number;
  /** Aborted when the client cancels or goes away: whatever the read parked is freed. */
  signal?: AbortSignal;
}

/** Who served a read and at which applied index (every read reports this). */
export interface ReadServedBy {
  nodeId: NodeId;
  appliedIndex: number;
}

export interface GetResult extends ReadServedBy {
  kv?: KeyValue;
}

export interface RangeResult extends ReadServedBy, ScanResult {}

export interface AddMemberOptions {
  /** Add as a non-voting learner. Re-adding a learner's id without it promotes it to voter. */
  learner?: boolean;
  /** Absolute deadline, ms since epoch. */
  deadline: number;
  signal?: AbortSignal;
}

export interface RemoveMemberOptions {
  /** Absolute deadline, ms since epoch. */
  deadline: number;
  signal?: AbortSignal;
}

/**
 * What the client-facing gRPC service needs from a node. Implemented by the runtime; the service
 * maps errors (src/api/errors.ts) to gRPC status codes in one place.
 */
export interface KvBackend extends KvBackendBackup {
  write(request: WriteRequest): Promise<WriteAck>;
  get(key: Uint8Array, options: ReadOptions): Promise<GetResult>;
  scan(start: Uint8Array, end: Uint8Array, limit: number, options: ReadOptions): Promise<RangeResult>;
  /** Resolves 'committed' once {term,index} is committed, 'lost' if another entry took that index. */
  waitFor(term: number, index: number, deadline: number, signal?: AbortSignal): Promise<WaitOutcome>;
  status(): Promise<NodeStatus>;
  /**
   * Resolves once this node knows a leader in a term > `term`, or at `deadline`, on abort or at
   * shutdown (never rejects): a Status call that long-polls for a hung leader's successor.
   */
  awaitLeaderAbove(term: number, deadline: number, signal?: AbortSignal): Promise<void>;
  transferLeadership(to: NodeId, deadline: number, signal?: AbortSignal): Promise<void>;
  /**
   * Leader only; one change at a time; resolves once the change is applied on this node (and at
   * once when `id` already has that role at those addresses). Empty addresses are allowed only to
   * promote a known learner (its addresses are kept).
   */
  addMember(id: NodeId, raftAddress: string, clientAddress: string, options: AddMemberOptions): Promise<void>;
  /** Leader only; resolves once `id` is no longer a member (at once when it is not one). */
  removeMember(id: NodeId, options: RemoveMemberOptions): Promise<void>;
  /** Leader only (leadership confirmed first): renews the lease; its TTL. LeaseNotFoundError when gone. */
  keepAliveLease(id: number, deadline: number, signal?: AbortSignal): Promise<number>;
  /** Leader only: every live lease, or the one with `id` (LeaseNotFoundError when gone). */
  leases(id: number | undefined, deadline: number, signal?: AbortSignal): Promise<LeaseStatus[]>;
  /** The applied changes this node keeps for watchers (any node, leader or not). */
  watchSource(): WatchSource;
}

/** What a backup holds, known before its first byte is sent. */
export interface BackupInfo {
  nodeId: NodeId;
  index: number;
  term: number;
  voters: NodeId[];
  learners: NodeId[];
  members: { id: NodeId; raftAddress: string; clientAddress: string }[];
  /** A guess at the file's size for progress (the node's last snapshot file), 0 when unknown. */
  estimatedBytes: number;
}

/** Known once the last byte was produced. */
export interface BackupTotals {
  /** Size and CRC-32 of the whole file. */
  bytes: number;
  crc32: number;
  /** Raw keyspace pairs (keys, leases, sessions) and user keys among them. */
  pairs: number;
  keys: number;
}

export interface BackupStream {
  info: BackupInfo;
  /** The backup file's bytes (storage/backup-file.ts), a record at a time, produced as they are taken. */
  bytes: AsyncGenerator<Uint8Array>;
  totals(): BackupTotals | undefined;
}

export interface BackupOptions {
  /** false: leader only, after a read barrier (every acknowledged write is in it). true: this node's applied state. */
  anyNode: boolean;
  /** Absolute deadline for taking the view (not for streaming it). */
  deadline: number;
  signal?: AbortSignal;
}

/** Optional so in-memory fakes need not stream backups. */
export interface KvBackendBackup {
  backup?(options: BackupOptions): Promise<BackupStream>;
}
