// The server side of RaftTransport: turns incoming batches and snapshot transfers into Messages
// for the local Raft node. Everything here is untrusted input: anything malformed is counted,
// logged (throttled) and dropped, and nothing a peer sends can throw out of a handler.
import {
  Metadata,
  status,
  type sendUnaryData,
  type ServerReadableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { decodeMessages } from './codec.js';
import { crc32 } from './crc32.js';
import type { LogThrottle, TransportLogger } from './log-throttle.js';
import type { MessageBatchPb, SnapshotAckPb, SnapshotChunkPb, StreamAckPb } from './raft-service.js';

/** Counters of what arrived, as reported by GrpcTransport.stats(). */
export interface InboundStats {
  batches: number;
  messages: number;
  /** Batches whose payload did not decode to valid messages (dropped whole). */
  malformedBatches: number;
  /** Messages not addressed to this node, or whose `from` differs from the batch's sender. */
  misroutedMessages: number;
  /** Streams refused because the sender belongs to another cluster. */
  rejectedStreams: number;
  snapshotsReceived: number;
  snapshotsRejected: number;
}

export function emptyInboundStats(): InboundStats {
  return { batches: 0, messages: 0, malformedBatches: 0, misroutedMessages: 0, rejectedStreams: 0, snapshotsReceived: 0, snapshotsRejected: 0 };
}

export interface InboundOptions {
  selfId: NodeId;
  clusterName: string;
  maxSnapshotBytes: number;
  logger: TransportLogger;
  throttle: LogThrottle;
  stats: InboundStats;
  /** Hand one validated message to Raft (must not throw; the transport guards its handler). */
  deliver: (message: Message) => void;
}

/** An open inbound Stream call, so that close() can end it instead of waiting on the peer. */
export interface InboundStreamHandle {
  end(reason: string): void;
}

export function createInboundService(options: InboundOptions, open: Set<InboundStreamHandle>): UntypedServiceImplementation {
  return {
    Stream: (call: ServerReadableStream<MessageBatchPb, StreamAckPb>, callback: sendUnaryData<StreamAckPb>) =>
      handleStream(options, open, call, callback),
    InstallSnapshot: (call: ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>, callback: sendUnaryData<SnapshotAckPb>) =>
      handleSnapshot(options, call, callback),
  };
}

function handleStream(
  o: InboundOptions,
  open: Set<InboundStreamHandle>,
  call: ServerReadableStream<MessageBatchPb, StreamAckPb>,
  callback: sendUnaryData<StreamAckPb>,
): void {
  let batches = 0;
  let done = false;
  const handle: InboundStreamHandle = {
    end(reason) {
      finish(() => callback({ code: status.UNAVAILABLE, details: reason }));
    },
  };
  function finish(respond: () => void): void {
    if (done) return;
    done = true;
    open.delete(handle);
    respond();
  }
  open.add(handle);
  // Headers now, not with the final status: they tell the sender the stream is accepted.
  call.sendMetadata(new Metadata());

  call.on('data', (batch: MessageBatchPb) => {
    if (done) return;
    if (batch.cluster_name !== o.clusterName) {
      o.stats.rejectedStreams++;
      o.throttle.warn(
        `cluster:${batch.sender_id}`,
        { peer: batch.sender_id, theirCluster: batch.cluster_name, ourCluster: o.clusterName },
        'refusing raft stream from a node of another cluster (check peer addresses in the config)',
      );
      finish(() =>
        callback({
          code: status.FAILED_PRECONDITION,
          details: `node ${o.selfId} belongs to cluster "${o.clusterName}", not "${batch.cluster_name}"`,
        }),
      );
      return;
    }
    let messages: Message[];
    try {
      messages = decodeMessages(batch.payload);
    } catch (err) {
      o.stats.malformedBatches++;
      o.throttle.warn(`malformed:${batch.sender_id}`, { peer: batch.sender_id, err: (err as Error).message }, 'dropping malformed raft message batch');
      return;
    }
    batches++;
    o.stats.batches++;
    for (const m of messages) {
      if (m.to !== o.selfId || m.from !== batch.sender_id) {
        o.stats.misroutedMessages++;
        o.throttle.warn(
          `misrouted:${batch.sender_id}`,
          { peer: batch.sender_id, from: m.from, to: m.to, type: m.type },
          'dropping raft message not addressed to this node or not from the stream sender',
        );
        continue;
      }
      o.stats.messages++;
      o.deliver(m);
    }
  });
  call.on('end', () => finish(() => callback(null, { batches })));
  // The sender cancelled or the connection died: there is no one left to answer.
  call.on('error', () => finish(() => {}));
  call.on('cancelled', () => finish(() => {}));
}

function handleSnapshot(
  o: InboundOptions,
  call: ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>,
  callback: sendUnaryData<SnapshotAckPb>,
): void {
  let header: { message: Message; total: number; crc: number } | null = null;
  let buffer: Uint8Array | null = null;
  let received = 0;
  let crc = 0;
  let done = false;
  call.sendMetadata(new Metadata()); // tells the sender the transfer is accepted (see its open timeout)

  function reject(code: status, reason: string): void {
    if (done) return;
    done = true;
    buffer = null;
    o.stats.snapshotsRejected++;
    o.logger.warn({ peer: header?.message.from, index: header?.message.snapshot?.meta.index, reason }, 'rejected incoming snapshot');
    callback({ code, details: `snapshot rejected by ${o.selfId}: ${reason}` });
  }

  call.on('data', (chunk: SnapshotChunkPb) => {
    if (done) return;
    if (!header) {
      if (chunk.kind !== 'header') return reject(status.INVALID_ARGUMENT, 'the first chunk must be the header');
      const h = chunk.header;
      if (h.cluster_name !== o.clusterName) {
        return reject(status.FAILED_PRECONDITION, `sender belongs to cluster "${h.cluster_name}", not "${o.clusterName}"`);
      }
      let messages: Message[];
      try {
        messages = decodeMessages(h.message);
      } catch (err) {
        return reject(status.INVALID_ARGUMENT, (err as Error).message);
      }
      const m = messages[0];
      if (messages.length !== 1 || !m || m.type !== 'snap' || !m.snapshot || m.snapshot.data.byteLength !== 0) {
        return reject(status.INVALID_ARGUMENT, 'the header must hold exactly one snap message without data');
      }
      if (m.to !== o.selfId || m.from !== h.sender_id) {
        return reject(status.FAILED_PRECONDITION, `message from ${m.from} to ${m.to} arrived at ${o.selfId} from ${h.sender_id}`);
      }
      if (h.total_size > o.maxSnapshotBytes) {
        return reject(status.RESOURCE_EXHAUSTED, `${h.total_size} bytes exceed this node's maxSnapshotBytes ${o.maxSnapshotBytes}`);
      }
      header = { message: m, total: h.total_size, crc: h.crc32 };
      // Allocated once at the announced (bounded) size: chunks are copied in place, never concatenated.
      buffer = new Uint8Array(h.total_size);
      return;
    }
    if (chunk.kind !== 'data') return reject(status.INVALID_ARGUMENT, 'a second header arrived mid-transfer');
    const data = chunk.data;
    if (received + data.byteLength > header.total) {
      return reject(status.DATA_LOSS, `more data than the announced ${header.total} bytes`);
    }
    buffer!.set(data, received);
    received += data.byteLength;
    crc = crc32(data, crc);
  });

  call.on('end', () => {
    if (done) return;
    if (!header || !buffer) return reject(status.INVALID_ARGUMENT, 'the stream ended before the header');
    if (received !== header.total) return reject(status.DATA_LOSS, `received ${received} of ${header.total} announced bytes`);
    if (crc !== header.crc) return reject(status.DATA_LOSS, `CRC-32 mismatch (got ${crc}, header says ${header.crc})`);
    done = true;
    const m = header.message;
    const snapshot = { meta: m.snapshot!.meta, data: buffer };
    buffer = null;
    o.stats.snapshotsReceived++;
    o.logger.info({ peer: m.from, index: snapshot.meta.index, term: snapshot.meta.term, bytes: snapshot.data.byteLength }, 'received snapshot');
    o.deliver({ ...m, snapshot });
    callback(null, { accepted: true });
  });

  const abandon = (): void => {
    done = true;
    buffer = null; // the sender gave up: free the partial snapshot now
  };
  call.on('error', abandon);
  call.on('cancelled', abandon);
}
