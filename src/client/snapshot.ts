// kv.snapshot(): a backup as a Node Readable of the backup file's bytes, streamed from the leader
// (or a named node) with HTTP/2 flow control: a consumer that does not read stops the node from
// producing. The SDK keeps a running CRC-32 and checks it against the node's at the end, so a
// stream that completes is the file the node sent; metadata() resolves then.
import type * as grpc from '@grpc/grpc-js';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { NotLeaderError, SnapshotFileError } from '../api/errors.js';
import { statusToError, type StatusLike } from '../api/grpc-status.js';
import type { WireSnapshotInfo, WireSnapshotRequest, WireSnapshotResponse } from '../api/kv-proto.js';

export interface SnapshotOptions {
  /** Take the backup from this node id (at its applied index) instead of the leader. */
  node?: string;
}

export interface SnapshotMetadata {
  /** The node the backup came from. */
  nodeId: string;
  index: number;
  term: number;
  members: { id: string; clientAddress: string; raftAddress: string; voter: boolean }[];
  /** Size and CRC-32 of the whole file. */
  bytes: number;
  crc32: number;
  /** Raw pairs (user keys, leases, sessions) and user keys among them. */
  pairs: number;
  keys: number;
}

export interface SnapshotTransport {
  open(endpoint: string, request: WireSnapshotRequest): grpc.ClientReadableStream<WireSnapshotResponse>;
  /** Where to start: the leader guess or the named node's address. */
  target(): Promise<string>;
}

/** Redirects followed to reach the leader before the first byte. */
const MAX_REDIRECTS = 3;

/** The bytes of one backup; `metadata()` resolves once every byte arrived and its CRC-32 matched. */
export class SnapshotDownload extends Readable {
  private readonly done: Promise<SnapshotMetadata>;
  /** The index, term and members, known before the first byte (undefined until then). */
  info: WireSnapshotInfo | undefined;

  constructor(transport: SnapshotTransport, options: SnapshotOptions) {
    super();
    let settle!: { resolve: (m: SnapshotMetadata) => void; reject: (e: Error) => void };
    this.done = new Promise<SnapshotMetadata>((resolve, reject) => (settle = { resolve, reject }));
    this.done.catch(() => undefined); // a consumer that only reads the stream sees the error there
    const source = this.chunks(transport, options);
    const inner = Readable.from(source, { objectMode: false });
    inner.on('data', (b: Buffer) => {
      if (!this.push(b)) inner.pause();
    });
    this.resumeInner = () => inner.resume();
    inner.once('end', () => this.push(null));
    inner.once('error', (err) => {
      settle.reject(err);
      this.destroy(err);
    });
    this.once('close', () => inner.destroy());
    this.settle = settle;
  }

  private readonly resumeInner: () => void;
  private readonly settle: { resolve: (m: SnapshotMetadata) => void; reject: (e: Error) => void };

  override _read(): void {
    this.resumeInner?.();
  }

  /** Resolves with the backup's metadata once the stream ended with a matching CRC-32; rejects on any failure. */
  metadata(): Promise<SnapshotMetadata> {
    return this.done;
  }

  private async *chunks(transport: SnapshotTransport, options: SnapshotOptions): AsyncGenerator<Buffer> {
    let endpoint = await transport.target();
    const request: WireSnapshotRequest = { anyNode: options.node !== undefined };
    for (let redirects = 0; ; redirects++) {
      const call = transport.open(endpoint, request);
      let received = 0;
      let crc = 0;
      try {
        for await (const msg of call as AsyncIterable<WireSnapshotResponse>) {
          if (msg.info) this.info = msg.info;
          if (msg.data && msg.data.length > 0) {
            received += msg.data.length;
            crc = crc32(msg.data, crc);
            yield Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length);
          }
          if (msg.totals) {
            const t = msg.totals;
            if (!this.info) throw new SnapshotFileError('stream', 'the node sent no backup info');
            if (t.bytes !== received || t.crc32 !== crc) {
              throw new SnapshotFileError('stream', `received ${received} bytes with CRC-32 ${crc}, the node sent ${t.bytes} with ${t.crc32}`);
            }
            const { estimatedBytes: _guess, ...info } = this.info;
            this.settle.resolve({ ...info, members: this.info.members.map((m) => ({ ...m, raftAddress: m.raftAddress ?? '' })), ...t });
            return;
          }
        }
        throw new SnapshotFileError('stream', `the stream ended after ${received} bytes without the node's totals (truncated)`);
      } catch (e) {
        const err = e instanceof SnapshotFileError ? e : statusToError(e as StatusLike);
        // Before the first byte, follow the leader's hint (the SDK's guess was a follower).
        if (err instanceof NotLeaderError && err.leaderAddress && received === 0 && redirects < MAX_REDIRECTS && options.node === undefined) {
          endpoint = err.leaderAddress;
          continue;
        }
        throw err;
      } finally {
        call.cancel();
      }
    }
  }
}
