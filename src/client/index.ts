export { connect, KvClient } from './kv-client.js';
export { KvItem } from './kv-item.js';
export type { ServedBy } from './kv-item.js';
export type { Bytes } from './bytes.js';
export { endpointsFromClusterFile } from './cluster-file.js';
export {
  NotLeaderError,
  InvalidArgumentError,
  DeadlineExceededError,
  OverloadedError,
  StaleReadError,
  ShuttingDownError,
  StaleSequenceError,
  ReceiptTooOldError,
  LostWriteError,
  ClusterUnavailableError,
  RemoteError,
  ClientUsageError,
  ConfChangeRejectedError,
  ProposalDroppedError,
  ReplicaCorruptedError,
  ConfigError,
  UnauthenticatedError,
  PermissionDeniedError,
  RequestCancelledError,
  LeaseNotFoundError,
  WatchCompactedError,
  SnapshotFileError,
} from '../api/errors.js';
export { SnapshotDownload, type SnapshotMetadata, type SnapshotOptions } from './snapshot.js';
export { Watcher, WatchEvent, type WatchSpec } from './watch.js';
export type { KeepAliveHandle, KeepAliveOptions } from './keep-alive.js';
export type { Contender, ElectionLeader, LockOptions } from './concurrency.js';
export type {
  ConnectOptions,
  TlsOptions,
  Credentials,
  CallOptions,
  WriteOptions,
  PutOptions,
  LeaseStatus,
  ReadOptions,
  WriteReceipt,
  WriteResult,
  DeleteResult,
  CasResult,
  TxnResult,
  RangeSpec,
  ScanOptions,
  ScanPage,
  GetDetail,
  TxnCompare,
  TxnOp,
  TxnSpec,
  EndpointStatus,
  Member,
  AddMemberSpec,
  Consistency,
  ReadConsistency,
  Durability,
  NodeStatus,
  OpResult,
} from './types.js';
