import type { Message, NodeId } from '../raft/types.js';

export interface PeerAddress {
  id: NodeId;
  /** host:port of the peer's Raft gRPC endpoint. */
  raftAddress: string;
}

/** Outcome of shipping a snapshot, to be reported to the core (reportSnapshot). */
export interface SnapshotStatusEvent {
  to: NodeId;
  ok: boolean;
}

/**
 * Moves Raft messages between nodes. `send` never blocks and never throws for network reasons:
 * Raft tolerates loss, so a full queue or a dead peer drops the message (and reports the peer
 * unreachable). Messages to one peer are delivered in order while a stream stays up.
 */
export interface Transport {
  start(): Promise<void>;
  send(messages: Message[]): void;
  onMessage(handler: (message: Message) => void): void;
  /** A peer stopped answering: the core should fall back to probing it. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** A 'snap' message finished streaming (or failed). */
  onSnapshotStatus(handler: (event: SnapshotStatusEvent) => void): void;
  addPeer(peer: PeerAddress): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}
