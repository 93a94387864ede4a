// The RaftTransport gRPC service definition (proto/raft.proto), loaded at runtime, plus the plain
// TypeScript shapes that @grpc/proto-loader produces for its messages with the options below.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

// CommonJS has __filename; ESM has import.meta (the CJS build leaves it empty). The module runs from
// src/, dist/esm/ or dist/cjs/, so the package root is found by walking up (at most 4 levels).
const HERE = path.dirname(typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url));
export const RAFT_PROTO_PATH = ((): string => {
  for (let dir = HERE, level = 0; level <= 4; level++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'proto', 'raft.proto');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`quorumkv package is incomplete: proto/raft.proto not found above ${HERE}; reinstall the package`);
})();

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

export interface SnapshotPiecePb {
  data: Uint8Array;
  crc32: number;
}

export type SnapshotChunkPb =
  | { kind: 'header'; header: SnapshotHeaderPb; data?: undefined; piece?: undefined }
  | { kind: 'data'; data: Uint8Array; header?: undefined; piece?: undefined }
  | { kind: 'piece'; piece: SnapshotPiecePb; header?: undefined; data?: undefined };

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
