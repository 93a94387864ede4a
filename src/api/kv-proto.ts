// The wire form of proto/kv.proto, shared by the SDK and the node's client service so both sides
// agree on loader options and field shapes. The interfaces mirror what @grpc/proto-loader produces
// with WIRE_OPTIONS (camelCase fields, uint64 as number, enums as their names, bytes as Buffer).
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { Consistency, Durability, WaitOutcome } from './types.js';
import type { Compare } from './command.js';
import { packageFile } from './package-files.js';

export const KV_PROTO_PATH = packageFile('proto/kv.proto');
export const KV_SERVICE_NAME = 'quorumkv.v1.KV';

/**
 * uint64 as JS number: log indexes and versions stay far below 2^53. Unknown enum numbers survive
 * decoding as numbers, which lets the service reject them instead of silently defaulting.
 */
const WIRE_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

export type KvMethodName =
  | 'Put'
  | 'Get'
  | 'Delete'
  | 'DeleteRange'
  | 'Scan'
  | 'Txn'
  | 'WaitFor'
  | 'Status'
  | 'TransferLeadership'
  | 'AddMember'
  | 'RemoveMember'
  | 'Ping'
  | 'LeaseGrant'
  | 'LeaseRevoke'
  | 'LeaseKeepAlive'
  | 'LeaseList';

export const KV_METHODS: readonly KvMethodName[] = [
  'Put',
  'Get',
  'Delete',
  'DeleteRange',
  'Scan',
  'Txn',
  'WaitFor',
  'Status',
  'TransferLeadership',
  'AddMember',
  'RemoveMember',
  'Ping',
  'LeaseGrant',
  'LeaseRevoke',
  'LeaseKeepAlive',
  'LeaseList',
];

export type KvMethodDefinition = MethodDefinition<object, object, object, object>;

let cached: Record<KvMethodName, KvMethodDefinition> | undefined;

/** The method table of the KV service (loaded once per process). */
export function kvServiceDefinition(): Record<KvMethodName, KvMethodDefinition> {
  if (!cached) {
    const pkg = protoLoader.loadSync(KV_PROTO_PATH, WIRE_OPTIONS);
    const service = pkg[KV_SERVICE_NAME] as unknown as Record<string, KvMethodDefinition> | undefined;
    if (!service) throw new Error(`${KV_PROTO_PATH} does not define service ${KV_SERVICE_NAME}`);
    for (const m of KV_METHODS) if (!service[m]) throw new Error(`${KV_PROTO_PATH}: ${KV_SERVICE_NAME} lacks method ${m}`);
    cached = service as Record<KvMethodName, KvMethodDefinition>;
  }
  return cached;
}

// ---- enums (wire names <-> SDK/backend names) ----

/** Decoded enum fields: a known name, or the raw number when the sender used an unknown value. */
export type WireEnum<T extends string> = T | number;

export type WireDurability = 'DURABILITY_UNSPECIFIED' | 'DURABILITY_SYNC' | 'DURABILITY_ASYNC';
export type WireConsistency = 'CONSISTENCY_UNSPECIFIED' | 'CONSISTENCY_LINEARIZABLE' | 'CONSISTENCY_LEASE' | 'CONSISTENCY_FOLLOWER';
export type WireCompareTarget = 'TARGET_UNSPECIFIED' | 'TARGET_VALUE' | 'TARGET_VERSION' | 'TARGET_MOD_INDEX';
export type WireCompareResult = 'RESULT_UNSPECIFIED' | 'RESULT_EQ' | 'RESULT_NEQ' | 'RESULT_LT' | 'RESULT_GT';
export type WireOutcome = 'OUTCOME_UNSPECIFIED' | 'OUTCOME_COMMITTED' | 'OUTCOME_LOST';

export const DURABILITY_FROM_WIRE: Readonly<Record<string, Durability>> = {
  DURABILITY_UNSPECIFIED: 'sync',
  DURABILITY_SYNC: 'sync',
  DURABILITY_ASYNC: 'async',
};
export const DURABILITY_TO_WIRE: Readonly<Record<Durability, WireDurability>> = {
  sync: 'DURABILITY_SYNC',
  async: 'DURABILITY_ASYNC',
};

export const CONSISTENCY_FROM_WIRE: Readonly<Record<string, Consistency>> = {
  CONSISTENCY_UNSPECIFIED: 'linearizable',
  CONSISTENCY_LINEARIZABLE: 'linearizable',
  CONSISTENCY_LEASE: 'lease',
  CONSISTENCY_FOLLOWER: 'follower',
};
export const CONSISTENCY_TO_WIRE: Readonly<Record<Consistency, WireConsistency>> = {
  linearizable: 'CONSISTENCY_LINEARIZABLE',
  lease: 'CONSISTENCY_LEASE',
  follower: 'CONSISTENCY_FOLLOWER',
};

export const COMPARE_TARGET_FROM_WIRE: Readonly<Record<string, Compare['target']>> = {
  TARGET_VALUE: 'value',
  TARGET_VERSION: 'version',
  TARGET_MOD_INDEX: 'modIndex',
};
export const COMPARE_TARGET_TO_WIRE: Readonly<Record<Compare['target'], WireCompareTarget>> = {
  value: 'TARGET_VALUE',
  version: 'TARGET_VERSION',
  modIndex: 'TARGET_MOD_INDEX',
};

export const COMPARE_RESULT_FROM_WIRE: Readonly<Record<string, Compare['result']>> = {
  RESULT_EQ: 'eq',
  RESULT_NEQ: 'neq',
  RESULT_LT: 'lt',
  RESULT_GT: 'gt',
};
export const COMPARE_RESULT_TO_WIRE: Readonly<Record<Compare['result'], WireCompareResult>> = {
  eq: 'RESULT_EQ',
  neq: 'RESULT_NEQ',
  lt: 'RESULT_LT',
  gt: 'RESULT_GT',
};

export const OUTCOME_TO_WIRE: Readonly<Record<WaitOutcome, WireOutcome>> = {
  committed: 'OUTCOME_COMMITTED',
  lost: 'OUTCOME_LOST',
};

// ---- messages ----

export interface WireSession {
  clientId: string;
  seq: number;
  firstUnacked: number;
  durability: WireEnum<WireDurability>;
}

export interface WirePutRequest extends WireSession {
  key: Uint8Array;
  value: Uint8Array;
  lease: number;
}

export interface WireDeleteRequest extends WireSession {
  key: Uint8Array;
}

export interface WireRange {
  prefix: Uint8Array;
  start: Uint8Array;
  end: Uint8Array;
}

export interface WireDeleteRangeRequest extends WireSession, WireRange {}

export interface WireCompare {
  key: Uint8Array;
  target: WireEnum<WireCompareTarget>;
  result: WireEnum<WireCompareResult>;
  value: Uint8Array;
  number: number;
}

export interface WireTxnOp {
  op?: 'put' | 'delete' | 'deleteRange';
  put?: { key: Uint8Array; value: Uint8Array; lease?: number };
  delete?: { key: Uint8Array };
  deleteRange?: WireRange;
}

export interface WireTxnRequest extends WireSession {
  compares: WireCompare[];
  success: WireTxnOp[];
  failure: WireTxnOp[];
}

export interface WireOpResult {
  result?: 'put' | 'delete' | 'deleteRange' | 'txn' | 'leaseRevoke';
  put?: { prevExisted: boolean };
  delete?: { deleted: number };
  deleteRange?: { deleted: number };
  txn?: { succeeded: boolean; results: WireOpResult[] };
  leaseRevoke?: { deleted: number };
}

export interface WireWriteResponse {
  term: number;
  index: number;
  applied: boolean;
  result?: WireOpResult | null;
  appliedAt: number;
  duplicate: boolean;
}

export interface WireKeyValue {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  createIndex: number;
  modIndex: number;
  lease: number;
}

export interface WireReadOptions {
  consistency: WireEnum<WireConsistency>;
  minIndex: number;
  /** Absent when unset (proto3 optional): no lag bound. */
  maxLagMs?: number;
}

export interface WireGetRequest extends WireReadOptions {
  key: Uint8Array;
}

export interface WireGetResponse {
  found: boolean;
  kv?: WireKeyValue | null;
  servedBy: string;
  appliedIndex: number;
}

export interface WireScanRequest extends WireReadOptions, WireRange {
  limit: number;
  continueFrom: Uint8Array;
}

export interface WireScanResponse {
  items: WireKeyValue[];
  continueFrom: Uint8Array;
  more: boolean;
  servedBy: string;
  appliedIndex: number;
}

export interface WireWaitForRequest {
  term: number;
  index: number;
}

export interface WireWaitForResponse {
  outcome: WireEnum<WireOutcome>;
}

export interface WireMember {
  id: string;
  clientAddress: string;
  voter: boolean;
  raftAddress: string;
}

export interface WireStatusRequest {
  leaderTermAbove?: number;
  waitMs?: number;
}

export interface WireStatusResponse {
  id: string;
  clientAddress: string;
  role: string;
  term: number;
  leaderId: string;
  leaderClientAddress: string;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  members: WireMember[];
  followers: { id: string; match: number; lag: number }[];
}

export interface WireTransferLeadershipRequest {
  to: string;
}

export interface WireAddMemberRequest {
  id: string;
  raftAddress: string;
  clientAddress: string;
  learner: boolean;
}

export interface WireRemoveMemberRequest {
  id: string;
}

export interface WireMembershipResponse {
  members: WireMember[];
}

export type WireEmpty = Record<string, never>;

export interface WireLeaseGrantRequest {
  ttlMs: number;
  clientId: string;
  seq: number;
  firstUnacked: number;
}

export interface WireLeaseGrantResponse {
  id: number;
  ttlMs: number;
  index: number;
}

export interface WireLeaseRevokeRequest {
  id: number;
  clientId: string;
  seq: number;
  firstUnacked: number;
}

export interface WireLeaseKeepAliveResponse {
  id: number;
  ttlMs: number;
}

export interface WireLeaseStatus {
  id: number;
  ttlMs: number;
  remainingMs: number;
  keys: number;
}

export interface WireLeaseListResponse {
  leases: WireLeaseStatus[];
}

export interface WireWatchRequest extends WireRange {
  key: Uint8Array;
  fromIndex: number;
  prevValue: boolean;
}

export interface WireWatchEvent {
  type: WireEnum<'TYPE_UNSPECIFIED' | 'TYPE_PUT' | 'TYPE_DELETE'>;
  key: Uint8Array;
  value: Uint8Array;
  index: number;
  hasPrev: boolean;
  prevValue: Uint8Array;
  lease: number;
}

export interface WireWatchResponse {
  events: WireWatchEvent[];
  progress: number;
}

export interface WireSnapshotRequest {
  anyNode: boolean;
}

export interface WireSnapshotInfo {
  nodeId: string;
  index: number;
  term: number;
  members: WireMember[];
  estimatedBytes: number;
}

export interface WireSnapshotTotals {
  bytes: number;
  crc32: number;
  pairs: number;
  keys: number;
}

/** One of info (first), data, totals (last). */
export interface WireSnapshotResponse {
  info?: WireSnapshotInfo | null;
  data?: Uint8Array;
  totals?: WireSnapshotTotals | null;
}

/** The Snapshot method (server-streaming backup; not in KV_METHODS). */
export function snapshotMethodDefinition(): KvMethodDefinition {
  const m = (kvServiceDefinition() as unknown as Record<string, KvMethodDefinition | undefined>)['Snapshot'];
  if (!m) throw new Error(`${KV_PROTO_PATH}: ${KV_SERVICE_NAME} lacks method Snapshot`);
  return m;
}

/** The Watch method (server-streaming; not in KV_METHODS, the unary table). */
export function watchMethodDefinition(): KvMethodDefinition {
  const m = (kvServiceDefinition() as unknown as Record<string, KvMethodDefinition | undefined>)['Watch'];
  if (!m) throw new Error(`${KV_PROTO_PATH}: ${KV_SERVICE_NAME} lacks method Watch`);
  return m;
}
