// The wire contract shared by the node and the SDK: command language, plain types, error classes,
// the error <-> gRPC status table and the proto loading.
export type * from './command.js';
export type * from './types.js';
export * from './errors.js';
export { errorToStatus, statusToError, remoteErrorName, ERROR_NAME_KEY, type GrpcStatus, type StatusLike } from './grpc-status.js';
export { kvServiceDefinition, KV_PROTO_PATH, KV_SERVICE_NAME, KV_METHODS } from './kv-proto.js';
