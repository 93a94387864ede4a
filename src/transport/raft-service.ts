// The RaftTransport gRPC service definition (proto/raft.proto), loaded at runtime, plus the plain
// TypeScript shapes that @grpc/proto-loader produces for its messages with the options below.
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

export const RAFT_PROTO_PATH = fileURLToPath(new URL('../../proto/raft.proto', import.meta.url));

export interface MessageBatchPb {
  payload: Uint8Array;
  sender_id: string;
  cluster_name: string;
}

export interface StreamAckPb {
  batches: number;
}

export interface SnapshotHeaderPb {
  sender_id: string;
  cluster_name: string;
  message: Uint8Array;
  total_size: number;
  crc32: number;
}

export type SnapshotChunkPb =
  | { kind: 'header'; header: SnapshotHeaderPb; data?: undefined }
  | { kind: 'data'; data: Uint8Array; header?: undefined };

export interface SnapshotAckPb {
  accepted: boolean;
}

export interface RaftServiceDefinition extends ServiceDefinition {
  Stream: MethodDefinition<MessageBatchPb, StreamAckPb>;
  InstallSnapshot: MethodDefinition<SnapshotChunkPb, SnapshotAckPb>;
}

let cached: RaftServiceDefinition | undefined;

export function raftServiceDefinition(): RaftServiceDefinition {
  if (!cached) {
    const pkg = protoLoader.loadSync(RAFT_PROTO_PATH, {
      keepCase: true,
      longs: Number, // sizes stay far below 2^53
      enums: String,
      defaults: true,
      oneofs: true, // adds the `kind` discriminator to SnapshotChunk
    });
    cached = pkg['quorumkv.raft.v1.RaftTransport'] as unknown as RaftServiceDefinition;
  }
  return cached;
}
