// An attacker's view of the Raft port: a raw gRPC client that speaks proto/raft.proto exactly as a
// node's transport does (MessageBatch with a msgpack payload, InstallSnapshot chunks), so tests can
// send forged traffic from any id to a real node.
import { Client, credentials, Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import type { Message, NodeId, Snapshot } from '../../src/raft/types.js';
import { emptyMessage } from '../../src/raft/types.js';
import { encodeMessages } from '../../src/transport/codec.js';
import { crc32 } from '../../src/transport/crc32.js';
import { raftServiceDefinition, type MessageBatchPb, type SnapshotChunkPb } from '../../src/transport/raft-service.js';

export interface CallOutcome {
  code: number;
  details: string;
}

export function message(type: Message['type'], from: NodeId, to: NodeId, term: number, fields: Partial<Message> = {}): Message {
  return { ...emptyMessage(type, from, to, term), ...fields };
}

export class RaftForger {
  private readonly client: Client;

  constructor(
    readonly address: string,
    readonly clusterName: string,
    creds: ChannelCredentials = credentials.createInsecure(),
  ) {
    this.client = new Client(address, creds, { 'grpc.use_local_subchannel_pool': 1 });
  }

  /** Opens one Stream, writes `batches` (sender `senderId`), ends it; resolves with the call's status. */
  stream(senderId: string, batches: Message[][], timeoutMs = 5000): Promise<CallOutcome> {
    const def = raftServiceDefinition().Stream;
    return new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? '' }),
      );
      call.on('error', () => {});
      for (const b of batches) {
        call.write({ payload: encodeMessages(b), sender_id: senderId, cluster_name: this.clusterName } satisfies MessageBatchPb);
      }
      call.end();
    });
  }

  /** Sends one InstallSnapshot transfer with a correct size and CRC; resolves with the call's status. */
  installSnapshot(senderId: string, m: Message, snapshot: Snapshot, timeoutMs = 5000): Promise<CallOutcome> {
    const def = raftServiceDefinition().InstallSnapshot;
    return new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? '' }),
      );
      call.on('error', () => {});
      const header: SnapshotChunkPb = {
        kind: 'header',
        header: {
          sender_id: senderId,
          cluster_name: this.clusterName,
          message: encodeMessages([{ ...m, snapshot: { meta: snapshot.meta, data: new Uint8Array(0) } }]),
          total_size: snapshot.data.byteLength,
          crc32: crc32(snapshot.data),
        },
      };
      call.write(header);
      for (let off = 0; off < snapshot.data.byteLength; off += 64 * 1024) {
        call.write({ kind: 'data', data: snapshot.data.subarray(off, off + 64 * 1024) } satisfies SnapshotChunkPb);
      }
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}
