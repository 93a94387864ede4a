// The Snapshot stream (a backup): one server-streaming call that sends the node's point-in-time
// view as a backup file's bytes. The next record is produced only once gRPC has taken the previous
// message (write() returned true or 'drain' fired), so a slow client is slowed down by HTTP/2 flow
// control and the node holds one record (about a MiB) per backup, never the state.
import type * as grpc from '@grpc/grpc-js';
import { OverloadedError } from '../api/errors.js';
import { errorToStatus } from '../api/grpc-status.js';
import type { WireSnapshotResponse } from '../api/kv-proto.js';
import type { BackupOptions, BackupStream } from '../runtime/kv-backend.js';
import { serverStreamFlow } from './server-stream-flow.js';

/** Backups streaming at once on this node (each pins a LevelDB view). */
export const MAX_BACKUPS = 2;

export class BackupCounter {
  private open = 0;

  acquire(): () => void {
    if (this.open >= MAX_BACKUPS) throw new OverloadedError('backups streaming from this node', MAX_BACKUPS);
    this.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
    };
  }
}

/** Serves one Snapshot call until the file is sent, the client cancels or the node fails. */
export async function serveSnapshot(
  call: grpc.ServerWritableStream<Buffer, object>,
  take: (options: BackupOptions) => Promise<BackupStream>,
  options: Omit<BackupOptions, 'signal'>,
): Promise<void> {
  const { signal, send, release } = serverStreamFlow<WireSnapshotResponse>(call);
  let stream: BackupStream | undefined;
  try {
    stream = await take({ ...options, signal });
    const { info } = stream;
    const voter = new Set(info.voters);
    await send({
      info: {
        nodeId: info.nodeId,
        index: info.index,
        term: info.term,
        estimatedBytes: info.estimatedBytes,
        members: info.members.map((m) => ({ id: m.id, clientAddress: m.clientAddress, raftAddress: m.raftAddress, voter: voter.has(m.id) })),
      },
    });
    for await (const data of stream.bytes) {
      if (signal.aborted) break;
      await send({ data });
    }
    if (signal.aborted) return;
    const totals = stream.totals();
    if (!totals) throw new Error('backup stream ended without totals');
    await send({ totals });
  } catch (err) {
    if (!signal.aborted) call.emit('error', errorToStatus(err));
    return;
  } finally {
    // An abandoned backup releases its view now, not when the generator is collected.
    await stream?.bytes.return(undefined).catch(() => undefined);
    release();
  }
  call.end();
}
