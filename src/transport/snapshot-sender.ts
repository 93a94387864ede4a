// Streams one 'snap' message over InstallSnapshot: a header chunk (the message without its data,
// plus the data's size and CRC-32), then the data in fixed-size chunks, pausing whenever the call's
// write buffer is full so that a multi-GiB snapshot never sits in memory twice.
//
// A snapshot *file* (its data a reference that `files` describes) is read a chunk at a time from the
// file: only the chunk being written is in memory, each piece carries its own CRC-32, and the
// header announces the whole file's size and CRC-32. A progress line is logged every few seconds.
import { Metadata, type Client } from '@grpc/grpc-js';
import type { Message } from '../raft/types.js';
import { encodeMessages } from './codec.js';
import { crc32 } from './crc32.js';
import { invariant } from '../raft/errors.js';
import type { RaftServiceDefinition, SnapshotChunkPb } from './raft-service.js';
import type { SnapshotFiles } from './transport.js';
import type { TransportLogger } from './log-throttle.js';
import { ProgressLog } from './progress-log.js';

export interface SnapshotSendResult {
  ok: boolean;
  /** Why it failed (gRPC status details), for the log. */
  error?: string;
}

export interface SnapshotSendOptions {
  client: Client;
  service: RaftServiceDefinition;
  senderId: string;
  clusterName: string;
  message: Message;
  chunkBytes: number;
  /** Cancel when the receiver has not accepted the call (sent headers) by then. */
  openTimeoutMs: number;
  /** Test hook: return true to flip a byte in data chunk `chunkIndex` after the CRC was computed. */
  corruptChunk?: (chunkIndex: number) => boolean;
  /** Test hook: pause this long between file pieces (a slow link), so a test can kill a transfer mid-way. */
  pieceDelayMs?: number;
  /** Snapshot files: data that refers to one is streamed from the file. */
  files?: SnapshotFiles;
  logger?: TransportLogger;
}

export interface SnapshotTransfer {
  readonly done: Promise<SnapshotSendResult>;
  /** Abort the transfer; `done` then resolves not ok. */
  cancel(): void;
}

const EMPTY = new Uint8Array(0);

export function sendSnapshot(options: SnapshotSendOptions): SnapshotTransfer {
  const { message, chunkBytes } = options;
  const snapshot = message.snapshot;
  invariant(message.type === 'snap' && snapshot !== undefined, 'sendSnapshot needs a snap message with a snapshot');
  invariant(chunkBytes > 0, 'snapshot chunk size must be positive');
  const data = snapshot.data;
  const file = options.files?.describe(data);
  const header: SnapshotChunkPb = {
    kind: 'header',
    header: {
      sender_id: options.senderId,
      cluster_name: options.clusterName,
      // A file's reference (a few dozen bytes) rides in the header; the receiver writes its own file.
      message: encodeMessages([{ ...message, snapshot: { meta: snapshot.meta, data: file ? data : EMPTY } }]),
      total_size: file ? file.bytes : data.byteLength,
      crc32: file ? file.crc32 : crc32(data),
    },
  };

  let finished = false;
  let resolveDone!: (r: SnapshotSendResult) => void;
  const done = new Promise<SnapshotSendResult>((resolve) => (resolveDone = resolve));
  const method = options.service.InstallSnapshot;
  const call = options.client.makeClientStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new Metadata(), {}, (err, ack) => {
    finished = true;
    clearTimeout(openTimer);
    call.removeListener('drain', pump);
    if (err) resolveDone({ ok: false, error: `${err.code} ${err.details || err.message}` });
    else if (!ack?.accepted) resolveDone({ ok: false, error: 'receiver answered without accepting the snapshot' });
    else resolveDone({ ok: true });
  });
  // Failures arrive through the callback; an 'error' event without a listener would crash the node.
  call.on('error', () => {});
  // Without this a peer that accepts TCP but never answers would hold the transfer (and Raft's
  // snapshot state for that follower) until grpc's 20 s connect timeout.
  const openTimer = setTimeout(() => {
    if (!finished) call.cancel();
  }, options.openTimeoutMs);
  openTimer.unref();
  call.on('metadata', () => clearTimeout(openTimer));

  let offset = 0;
  let chunkIndex = 0;
  function pump(): void {
    while (!finished && offset < data.byteLength) {
      let chunk = data.subarray(offset, offset + chunkBytes);
      if (options.corruptChunk?.(chunkIndex)) {
        chunk = Uint8Array.from(chunk);
        chunk[0] = chunk[0]! ^ 0xff;
      }
      offset += chunk.byteLength;
      chunkIndex++;
      if (!call.write({ kind: 'data', data: chunk } satisfies SnapshotChunkPb)) {
        call.once('drain', pump);
        return;
      }
    }
    if (!finished) call.end();
  }
  call.write(header);
  if (file) void pumpFile(file.bytes);
  else pump();

  function drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const onDrain = () => {
        clearInterval(poll);
        resolve();
      };
      call.once('drain', onDrain);
      // The callback may end the call while it waits: stop waiting then.
      const poll = setInterval(() => {
        if (!finished) return;
        call.removeListener('drain', onDrain);
        clearInterval(poll);
        resolve();
      }, 200);
      poll.unref();
    });
  }

  async function pumpFile(total: number): Promise<void> {
    const progress = new ProgressLog(options.logger, 'snapshot_sending', { to: message.to, index: snapshot!.meta.index }, total);
    let reader: Awaited<ReturnType<SnapshotFiles['openReader']>> | undefined;
    try {
      reader = await options.files!.openReader(data);
      while (!finished && offset < total) {
        let piece = await reader.read(offset, chunkBytes);
        const sum = crc32(piece);
        if (options.corruptChunk?.(chunkIndex)) {
          piece = Uint8Array.from(piece);
          piece[0] = piece[0]! ^ 0xff;
        }
        offset += piece.byteLength;
        chunkIndex++;
        progress.update(offset);
        if (options.pieceDelayMs) await new Promise((resolve) => setTimeout(resolve, options.pieceDelayMs));
        if (finished) break;
        if (!call.write({ kind: 'piece', piece: { data: piece, crc32: sum } } satisfies SnapshotChunkPb)) await drained();
      }
      if (!finished) {
        progress.done(offset);
        call.end();
      }
    } catch (err) {
      options.logger?.warn({ to: message.to, err: (err as Error).message }, 'cannot read the snapshot file to send');
      if (!finished) call.cancel();
    } finally {
      await reader?.close().catch(() => undefined);
    }
  }

  return {
    done,
    cancel() {
      if (!finished) call.cancel();
    },
  };
}
