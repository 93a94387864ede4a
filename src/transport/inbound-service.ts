// The server side of RaftTransport: turns incoming batches and snapshot transfers into Messages
// for the local Raft node. Everything here is untrusted input: anything malformed is counted,
// logged (throttled) and dropped, and nothing a peer sends can throw out of a handler.
//
// Who may talk: with mutual TLS the sender's member id is the one its verified certificate names
// (see peer-identity.ts), and a batch or snapshot claiming any other sender ends the call. With or
// without TLS, a sender that is not a member (InboundAdmission) is refused before its payload is
// decoded or its snapshot buffered, and every message must come from the stream's sender.
//
// Bounds, all checked before the work: the gRPC receive limit caps one batch (set by the
// transport), a batch holds at most maxBatchMessages messages (read from the msgpack header
// before decoding), and each sender has at most one snapshot transfer at a time, whose announced
// size counts against one budget for all transfers and which is dropped when it goes idle.
import type { TransportObserver } from './observer.js';
import { Metadata, status, type sendUnaryData, type ServerReadableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { decodeMessages, msgpackArrayLength } from './codec.js';
import { crc32 } from './crc32.js';
import type { LogThrottle, TransportLogger } from './log-throttle.js';
import { memberIdOf } from './peer-identity.js';
import type { MessageBatchPb, SnapshotAckPb, SnapshotChunkPb, StreamAckPb } from './raft-service.js';
import type { SnapshotFileSink, SnapshotFiles } from './transport.js';
import { ProgressLog } from './progress-log.js';
import type { InboundAdmission } from './transport.js';

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
  /** Batches and snapshots refused because the sender is not a member of this node's configuration. */
  refusedNonMembers: number;
  /** Calls ended because the sender claimed an id other than its certificate's (mutual TLS). */
  refusedIdentity: number;
  /** Batches dropped unread because they held more messages than maxBatchMessages. */
  oversizedBatches: number;
  snapshotsReceived: number;
  snapshotsRejected: number;
}

export function emptyInboundStats(): InboundStats {
  return {
    batches: 0,
    messages: 0,
    malformedBatches: 0,
    misroutedMessages: 0,
    rejectedStreams: 0,
    refusedNonMembers: 0,
    refusedIdentity: 0,
    oversizedBatches: 0,
    snapshotsReceived: 0,
    snapshotsRejected: 0,
  };
}

export interface InboundOptions {
  selfId: NodeId;
  clusterName: string;
  maxSnapshotBytes: number;
  /** Largest snapshot file accepted (disk, not memory: a file transfer holds one piece in memory). */
  maxSnapshotFileBytes: number;
  /** Announced bytes of all snapshot transfers in progress together. */
  maxIncomingSnapshotBytes: number;
  /** A transfer that receives nothing for this long is dropped. */
  snapshotIdleTimeoutMs: number;
  /** Messages in one batch; a larger batch is dropped without being decoded. */
  maxBatchMessages: number;
  /** true: peers are authenticated by mutual TLS and identified by their certificate. */
  mutualTls: boolean;
  /** Set by the runtime once it starts; until then nobody is refused for membership. */
  admission: () => InboundAdmission | undefined;
  logger: TransportLogger;
  throttle: LogThrottle;
  stats: InboundStats;
  observer?: TransportObserver;
  /** Hand one validated message to Raft (must not throw; the transport guards its handler). */
  deliver: (message: Message) => void;
  /** Snapshot files: an incoming snapshot file is streamed into a new file (never buffered). */
  snapshotFiles: () => SnapshotFiles | undefined;
}

/** An open inbound Stream call, so that close() can end it instead of waiting on the peer. */
export interface InboundStreamHandle {
  end(reason: string): void;
}

interface ActiveTransfer {
  term: number;
  announced: number;
  abort(reason: string): void;
}

/** Refusals never name this node's cluster: a stranger must not learn it by asking. */
const WRONG_CLUSTER = 'the sender does not belong to this cluster (check the peer addresses and cluster name in its config)';

export function createInboundService(options: InboundOptions, open: Set<InboundStreamHandle>): UntypedServiceImplementation {
  const transfers = new Map<NodeId, ActiveTransfer>();
  return {
    Stream: (call: ServerReadableStream<MessageBatchPb, StreamAckPb>, callback: sendUnaryData<StreamAckPb>) => handleStream(options, open, call, callback),
    InstallSnapshot: (call: ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>, callback: sendUnaryData<SnapshotAckPb>) =>
      handleSnapshot(options, transfers, call, callback),
  };
}

/**
 * With mutual TLS: the member id of the peer's verified certificate (null when the certificate
 * names none). Without TLS: undefined (the sender's claim is all there is).
 */
function certifiedSender(o: InboundOptions, call: ServerReadableStream<unknown, unknown>): string | null | undefined {
  if (!o.mutualTls) return undefined;
  return memberIdOf(call.getAuthContext().sslPeerCertificate) ?? null;
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
    call.removeAllListeners('data');
    respond();
  }
  open.add(handle);
  const certified = certifiedSender(o, call);
  if (certified === null) {
    o.stats.refusedIdentity++;
    o.throttle.warn(`identity:${call.getPeer()}`, { peer: call.getPeer() }, 'refusing raft stream: the peer certificate names no quorumkv member id');
    finish(() => callback({ code: status.PERMISSION_DENIED, details: 'the peer certificate names no quorumkv member (URI quorumkv://member/<id>)' }));
    return;
  }
  // Headers now, not with the final status: they tell the sender the stream is accepted.
  call.sendMetadata(new Metadata());

  call.on('data', (batch: MessageBatchPb) => {
    if (done) return;
    const sender = batch.sender_id;
    if (batch.cluster_name !== o.clusterName) {
      o.stats.rejectedStreams++;
      o.throttle.warn(
        `cluster:${sender}`,
        { peer: String(sender).slice(0, 64), theirCluster: String(batch.cluster_name).slice(0, 64), ourCluster: o.clusterName },
        'refusing raft stream from a node of another cluster (check peer addresses in the config)',
      );
      finish(() => callback({ code: status.FAILED_PRECONDITION, details: WRONG_CLUSTER }));
      return;
    }
    if (certified !== undefined && sender !== certified) {
      o.stats.refusedIdentity++;
      o.throttle.warn(
        `identity:${certified}`,
        { certificate: certified, claimed: String(sender).slice(0, 64) },
        'refusing raft stream: the sender claims another member id than its certificate',
      );
      finish(() =>
        callback({ code: status.PERMISSION_DENIED, details: `the certificate is member ${certified}'s, the batch claims ${String(sender).slice(0, 64)}` }),
      );
      return;
    }
    const admission = o.admission();
    if (admission && !admission.isMember(sender)) {
      // Dropped unread: a non-member costs neither decoding nor the core's attention.
      o.stats.refusedNonMembers++;
      o.throttle.warn(
        `non-member:${String(sender).slice(0, 64)}`,
        { peer: String(sender).slice(0, 64) },
        "dropping raft batch from a node that is not a member of this node's configuration",
      );
      return;
    }
    const count = msgpackArrayLength(batch.payload);
    if (count !== undefined && count > o.maxBatchMessages) {
      o.stats.oversizedBatches++;
      o.throttle.warn(
        `oversized:${sender}`,
        { peer: sender, messages: count, max: o.maxBatchMessages },
        'dropping raft batch with too many messages (not decoded)',
      );
      return;
    }
    let messages: Message[];
    try {
      messages = decodeMessages(batch.payload);
    } catch (err) {
      o.stats.malformedBatches++;
      o.throttle.warn(`malformed:${sender}`, { peer: sender, err: (err as Error).message }, 'dropping malformed raft message batch');
      return;
    }
    batches++;
    o.stats.batches++;
    o.observer?.received?.(sender, batch.payload.byteLength);
    for (const m of messages) {
      if (m.to !== o.selfId || m.from !== sender) {
        o.stats.misroutedMessages++;
        o.throttle.warn(
          `misrouted:${sender}`,
          { peer: sender, from: m.from, to: m.to, type: m.type },
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
  transfers: Map<NodeId, ActiveTransfer>,
  call: ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>,
  callback: sendUnaryData<SnapshotAckPb>,
): void {
  let header: { message: Message; total: number; crc: number } | null = null;
  let buffer: Uint8Array | null = null;
  // File mode: pieces go to `sink` one at a time (the call is paused while one is written).
  let sink: Promise<SnapshotFileSink> | null = null;
  let work: Promise<void> = Promise.resolve();
  let progress: ProgressLog | undefined;
  let received = 0;
  let crc = 0;
  let done = false;
  let sender: NodeId | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const self: ActiveTransfer = { term: 0, announced: 0, abort: (reason) => reject(status.ABORTED, reason) };
  const certified = certifiedSender(o, call);
  if (certified === null) {
    o.stats.refusedIdentity++;
    callback({ code: status.PERMISSION_DENIED, details: 'the peer certificate names no quorumkv member (URI quorumkv://member/<id>)' });
    return;
  }
  call.sendMetadata(new Metadata()); // tells the sender the transfer is accepted (see its open timeout)

  function release(): void {
    done = true;
    buffer = null;
    if (sink) {
      const s = sink;
      // Aborting after a commit is a no-op; otherwise the partial file is deleted: nothing changes.
      void work.then(() => s.then((w) => w.abort())).catch(() => undefined);
    }
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    if (sender !== undefined && transfers.get(sender) === self) transfers.delete(sender);
    call.removeAllListeners('data');
  }

  function reject(code: status, reason: string): void {
    if (done) return;
    release();
    o.stats.snapshotsRejected++;
    o.logger.warn({ peer: header?.message.from ?? sender, index: header?.message.snapshot?.meta.index, reason }, 'rejected incoming snapshot');
    callback({ code, details: `snapshot rejected by ${o.selfId}: ${reason}` });
  }

  function armIdle(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => reject(status.DEADLINE_EXCEEDED, `no data for ${o.snapshotIdleTimeoutMs} ms`), o.snapshotIdleTimeoutMs);
    idleTimer.unref();
  }
  armIdle();

  call.on('data', (chunk: SnapshotChunkPb) => {
    if (done) return;
    armIdle();
    if (!header) {
      if (chunk.kind !== 'header') return reject(status.INVALID_ARGUMENT, 'the first chunk must be the header');
      const h = chunk.header;
      if (h.cluster_name !== o.clusterName) return reject(status.FAILED_PRECONDITION, WRONG_CLUSTER);
      if (certified !== undefined && h.sender_id !== certified) {
        o.stats.refusedIdentity++;
        return reject(status.PERMISSION_DENIED, `the certificate is member ${certified}'s, the header claims ${String(h.sender_id).slice(0, 64)}`);
      }
      const admission = o.admission();
      if (admission && !admission.isMember(h.sender_id)) {
        o.stats.refusedNonMembers++;
        return reject(status.PERMISSION_DENIED, "the sender is not a member of this node's configuration");
      }
      if (h.message.byteLength > 64 * 1024) return reject(status.INVALID_ARGUMENT, 'the header message is too large');
      let messages: Message[];
      try {
        messages = decodeMessages(h.message);
      } catch (err) {
        return reject(status.INVALID_ARGUMENT, (err as Error).message);
      }
      const m = messages[0];
      const file = m?.snapshot && m.snapshot.data.byteLength > 0 ? describeFile(o.snapshotFiles(), m.snapshot.data) : undefined;
      if (file instanceof Error) return reject(status.INVALID_ARGUMENT, file.message);
      if (messages.length !== 1 || !m || m.type !== 'snap' || !m.snapshot || (m.snapshot.data.byteLength !== 0 && !file)) {
        return reject(status.INVALID_ARGUMENT, 'the header must hold exactly one snap message without data (or with a snapshot file reference)');
      }
      if (file && file.bytes !== h.total_size) return reject(status.INVALID_ARGUMENT, `the reference says ${file.bytes} bytes, the header ${h.total_size}`);
      if (m.to !== o.selfId || m.from !== h.sender_id) {
        return reject(status.FAILED_PRECONDITION, `message from ${m.from} to ${m.to} arrived at ${o.selfId} from ${h.sender_id}`);
      }
      // Only the leader of this node's term (or a new leader of a higher one) may send a snapshot.
      if (admission && !admission.admits(m)) return reject(status.PERMISSION_DENIED, `${m.from} is not the leader of term ${m.term} for this node`);
      if (file && h.total_size > o.maxSnapshotFileBytes) {
        return reject(status.RESOURCE_EXHAUSTED, `${h.total_size} bytes exceed this node's maxSnapshotFileBytes ${o.maxSnapshotFileBytes}`);
      }
      if (!file && h.total_size > o.maxSnapshotBytes) {
        return reject(status.RESOURCE_EXHAUSTED, `${h.total_size} bytes exceed this node's maxSnapshotBytes ${o.maxSnapshotBytes}`);
      }
      sender = h.sender_id;
      // At most one transfer per sender: a new one replaces the sender's previous one.
      transfers.get(sender)?.abort('superseded by a newer transfer from the same sender');
      // A transfer from an older term cannot be installed any more: make room for this one.
      let inProgress = 0;
      for (const t of [...transfers.values()]) {
        if (t.term < m.term) t.abort(`superseded by a snapshot of term ${m.term}`);
        else inProgress += t.announced;
      }
      // Only buffered transfers hold memory; a file transfer holds one piece at a time.
      const announced = file ? 0 : h.total_size;
      if (inProgress + announced > o.maxIncomingSnapshotBytes) {
        sender = undefined;
        return reject(status.RESOURCE_EXHAUSTED, `other snapshot transfers hold ${inProgress} of ${o.maxIncomingSnapshotBytes} bytes; retry later`);
      }
      self.term = m.term;
      self.announced = announced;
      transfers.set(sender, self);
      header = { message: m, total: h.total_size, crc: h.crc32 };
      if (file) {
        sink = o.snapshotFiles()!.createWriter({ bytes: h.total_size, crc32: h.crc32 });
        sink.catch((err: Error) => reject(status.INTERNAL, `cannot create the snapshot file: ${err.message}`));
        progress = new ProgressLog(o.logger, 'snapshot_receiving', { from: m.from, index: m.snapshot.meta.index }, h.total_size);
        return;
      }
      // Allocated once at the announced (bounded) size: chunks are copied in place, never concatenated.
      buffer = new Uint8Array(h.total_size);
      return;
    }
    if (sink) {
      if (chunk.kind !== 'piece') return reject(status.INVALID_ARGUMENT, 'a snapshot file transfer sends pieces after its header');
      const piece = chunk.piece;
      if (crc32(piece.data) !== piece.crc32) {
        return reject(status.DATA_LOSS, `piece at byte ${received} fails its CRC-32 (damaged in transit); nothing was installed`);
      }
      if (received + piece.data.byteLength > header.total) return reject(status.DATA_LOSS, `more data than the announced ${header.total} bytes`);
      received += piece.data.byteLength;
      const s = sink;
      const total = received;
      // Back-pressure: one piece in flight to the disk; HTTP/2 flow control holds the sender meanwhile.
      call.pause();
      work = work
        .then(async () => {
          await (await s).append(piece.data);
          progress?.update(total);
          if (!done) call.resume();
        })
        .catch((err: Error) => reject(status.INTERNAL, `cannot write the snapshot file: ${err.message}`));
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
    if (sink) return void finishFile(sink);
    if (!header || !buffer) return reject(status.INVALID_ARGUMENT, 'the stream ended before the header');
    if (received !== header.total) return reject(status.DATA_LOSS, `received ${received} of ${header.total} announced bytes`);
    if (crc !== header.crc) return reject(status.DATA_LOSS, `CRC-32 mismatch (got ${crc}, header says ${header.crc})`);
    const m = header.message;
    const snapshot = { meta: m.snapshot!.meta, data: buffer };
    release();
    o.stats.snapshotsReceived++;
    o.logger.info({ peer: m.from, index: snapshot.meta.index, term: snapshot.meta.term, bytes: snapshot.data.byteLength }, 'received snapshot');
    o.deliver({ ...m, snapshot });
    callback(null, { accepted: true });
  });

  /** All pieces are on disk: check the whole file, make it durable, hand Raft its reference. */
  async function finishFile(s: Promise<SnapshotFileSink>): Promise<void> {
    await work;
    if (done || !header) return;
    const writer = await s;
    if (done) return;
    if (writer.bytes !== header.total) return reject(status.DATA_LOSS, `received ${writer.bytes} of ${header.total} announced bytes`);
    if (writer.checksum !== header.crc) return reject(status.DATA_LOSS, `whole-file CRC-32 mismatch (got ${writer.checksum}, header says ${header.crc})`);
    const m = header.message;
    let data: Uint8Array;
    try {
      data = await writer.commit(m.snapshot!.meta.index, m.snapshot!.meta.term);
    } catch (err) {
      return reject(status.INTERNAL, `cannot make the snapshot file durable: ${(err as Error).message}`);
    }
    if (done) return; // cancelled meanwhile: the committed file is unreferenced and dropped at the next start or compaction
    release();
    progress?.done(header.total);
    o.stats.snapshotsReceived++;
    o.logger.info({ peer: m.from, index: m.snapshot!.meta.index, term: m.snapshot!.meta.term, bytes: header.total }, 'received snapshot file');
    o.deliver({ ...m, snapshot: { meta: m.snapshot!.meta, data } });
    callback(null, { accepted: true });
  }

  // The sender gave up: free the partial snapshot now.
  call.on('error', release);
  call.on('cancelled', release);
}

function describeFile(files: SnapshotFiles | undefined, data: Uint8Array): { bytes: number } | Error | undefined {
  try {
    const file = files?.describe(data);
    if (!file && data.byteLength > 0 && !files) return new Error('a snapshot file reference arrived but this node keeps no snapshot files');
    return file;
  } catch (err) {
    return err as Error;
  }
}
