export { connect, KvClient } from './kv-client.ts';
export { KvItem } from './kv-item.ts';
export type { ServedBy } from './kv-item.ts';
export type { Bytes } from './bytes.ts';
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
} from './errors.ts';
export type {
  ConnectOptions,
  CallOptions,
  WriteOptions,
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
  Durability,
  NodeStatus,
  OpResult,
} from './types.ts';
