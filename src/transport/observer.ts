// What the transport reports per peer, for the node's metrics (bytes, snapshot transfers). The
// transport declares it; the server implements it with prom-client.
import type { NodeId } from '../raft/types.js';

export interface TransportObserver {
  /** One Raft message batch of `bytes` written to the stream to `peer`. */
  sent?(peer: NodeId, bytes: number): void;
  /** One Raft message batch of `bytes` accepted from `peer`. */
  received?(peer: NodeId, bytes: number): void;
  /** A snapshot transfer to `peer` ended (ok or not) after `seconds`. */
  snapshotSent?(peer: NodeId, ok: boolean, seconds: number, bytes: number): void;
}
