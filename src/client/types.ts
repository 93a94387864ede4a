// Public option and result types of the SDK.
import type { Consistency, Durability, NodeStatus } from '../api/types.js';
import type { OpResult } from '../api/command.js';
import type { Bytes } from './bytes.js';
import type { KvItem, ServedBy } from './kv-item.js';

export type { Consistency, Durability, NodeStatus, OpResult, Bytes };

/**
 * What a read may see. The server-side modes (`linearizable`, `lease`, `follower`) plus
 * `session`: a follower read (any node, no leader round trip) that never sees a state older than
 * one this client already saw — monotonic reads and read-your-(sync-)writes across nodes.
 */
export type ReadConsistency = Consistency | 'session';

export interface ConnectOptions {
  /** Client addresses of the nodes, `host:port`. Any subset works; the leader is discovered. */
  endpoints: string[];
  /** Default per-request deadline (ms), retries included. Default 5000. */
  deadlineMs?: number;
  /**
   * One attempt on one node gets at most this long before the SDK tries another node (a hung or
   * partitioned node must not eat the whole deadline). Default 2000. WaitFor attempts are not cut.
   */
  attemptTimeoutMs?: number;
  /**
   * Hung-leader detection: once a leader-routed attempt has waited this long (about one election
   * timeout), ask the other nodes for their view, and move the request to a node that leads a
   * newer term at once. Default 300.
   */
  leaderProbeAfterMs?: number;
  /**
   * 'stream' (default): many calls multiplexed over one long-lived stream per node — measured about
   * 6x cheaper per call than unary. 'unary': one gRPC unary call per request.
   */
  transport?: 'stream' | 'unary';
  /** Session id for exactly-once retries; must be unique per live client. Default: a random UUID. */
  clientId?: string;
  /** Ask the nodes for the leader while connecting (bounded, never fails connect). Default true. */
  discover?: boolean;
  /**
   * TLS to the nodes: `ca` verifies them (PEM; default: the system's roots), `cert` and `key` are
   * this client's certificate when the cluster authenticates clients by certificate. Absent:
   * plaintext (local development only).
   */
  tls?: TlsOptions;
  /** Who this client is, when the cluster has auth on: a user and password, or an API token. */
  credentials?: Credentials;
}

export interface TlsOptions {
  ca?: string | Uint8Array;
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
}

export type Credentials = { username: string; password: string } | { token: string };

export interface CallOptions {
  /** Overrides the client's deadlineMs for this call. */
  deadlineMs?: number;
}

export interface WriteOptions extends CallOptions {
  /** 'sync' (default): acked once committed and applied. 'async': acked once in the leader's log. */
  durability?: Durability;
}

export interface PutOptions extends WriteOptions {
  /** Attach the key to this lease (from grantLease): it is deleted when the lease ends. */
  lease?: number;
}

/** A lease as the leader sees it. */
export interface LeaseStatus {
  id: number;
  ttlMs: number;
  /** What is left by the leader's clock. */
  remainingMs: number;
  /** Keys attached. */
  keys: number;
}

export interface ReadOptions extends CallOptions {
  /** Default 'linearizable'. */
  consistency?: ReadConsistency;
  /**
   * Follower and session reads: the serving node first applies at least this index
   * (read-your-writes). A session read uses the larger of this and the client's watermark.
   */
  minIndex?: number;
  /** Follower reads: refuse nodes lagging the leader by more than this (tries the others). */
  maxLagMs?: number;
}

/** Where an entry sits in the log; await it with waitFor(). */
export interface WriteReceipt {
  term: number;
  index: number;
}

export interface WriteResult extends WriteReceipt {
  /** True for sync writes: `result` and `appliedAt` are set. */
  applied: boolean;
  result?: OpResult;
  /** Log index at which the command took effect (differs from `index` for a deduplicated retry). */
  appliedAt?: number;
  /** The node had already applied this write (a retry) and returned the original result. */
  duplicate: boolean;
}

export interface DeleteResult extends WriteResult {
  /** Keys removed (sync writes only). */
  deleted?: number;
}

export interface CasResult extends WriteResult {
  /** Whether the expected value matched and the new value was written. */
  succeeded: boolean;
}

export interface TxnResult extends WriteResult {
  /** Sync writes only: which branch ran. */
  succeeded?: boolean;
  /** Sync writes only: one result per op of the branch that ran. */
  results?: OpResult[];
}

/**
 * A key range: a `prefix`, or [start, end) (end omitted = to the end of the keyspace). Giving a
 * prefix together with start/end is rejected (InvalidArgumentError).
 */
export interface RangeSpec {
  prefix?: Bytes;
  start?: Bytes;
  end?: Bytes;
}

/** A scan without prefix, start or end covers the whole keyspace. */
export interface ScanOptions extends ReadOptions, RangeSpec {
  /** Max keys in this page (server default 1000, max 10000). */
  limit?: number;
  /** `continueFrom` of the previous page. */
  continueFrom?: Uint8Array;
}

export interface ScanPage extends ServedBy {
  items: KvItem[];
  /** More keys remain in the range: pass `continueFrom` to the next scan. */
  more: boolean;
  continueFrom?: Uint8Array;
}

export interface GetDetail extends ServedBy {
  /** undefined when the key does not exist. */
  item?: KvItem;
}

export type TxnCompare =
  | { key: Bytes; target: 'value'; result: 'eq' | 'neq'; value: Bytes }
  | { key: Bytes; target: 'version' | 'modIndex'; result: 'eq' | 'neq' | 'lt' | 'gt'; number: number };

export type TxnOp = { op: 'put'; key: Bytes; value: Bytes; lease?: number } | { op: 'delete'; key: Bytes } | ({ op: 'deleteRange' } & RangeSpec);

export interface TxnSpec {
  /** All must hold for `success` to run; otherwise `failure` runs. */
  compares?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

/** One node's answer to status(): its status, or why it could not be reached. */
export type EndpointStatus = { endpoint: string; status: NodeStatus; error?: undefined } | { endpoint: string; status?: undefined; error: Error };

/** A cluster member as the leader reports it. */
export interface Member {
  id: string;
  /** Where clients reach it ('' when the node does not know it). */
  clientAddress: string;
  /** false for a learner (replicates, does not vote). */
  voter: boolean;
  /** Where the other members reach its Raft (peer) port ('' when unknown, or from an older node). */
  raftAddress: string;
}

export interface AddMemberSpec {
  id: string;
  /** host:port the other nodes dial for Raft traffic. */
  raftAddress: string;
  /** host:port clients use. */
  clientAddress: string;
  /** Add as a learner (a non-voting replica; promote it once caught up). Default false. */
  learner?: boolean;
}
