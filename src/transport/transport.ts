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
 * Whom the receiving node accepts Raft traffic from (the runtime decides; see
 * src/runtime/peer-admission.ts). The transport asks before it decodes a batch or buffers a
 * snapshot, so a non-member costs no decoding and no memory; the runtime checks every message again.
 */
export interface InboundAdmission {
  isMember(id: NodeId): boolean;
  /** Whether `message` (e.g. a snapshot's header, without its data) would be handed to the core. */
  admits(message: Message): boolean;
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
  /** Optional: lets the transport refuse non-members before decoding (the runtime filters anyway). */
  setAdmission?(admission: InboundAdmission): void;
  /** Optional: snapshot files to stream from and into (transports that ship snapshots between processes). */
  setSnapshotFiles?(files: SnapshotFiles): void;
  addPeer(peer: PeerAddress): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}

/**
 * Snapshot files as the transport sees them (the runtime adapts storage's SnapshotStore): a 'snap'
 * message whose data `describe`s a file is streamed from that file in checksummed pieces, and the
 * receiver streams the pieces into a new file, so no snapshot is ever held in memory whole.
 */
export interface SnapshotFiles {
  /** The file `data` refers to, or undefined for in-memory snapshot data. */
  describe(data: Uint8Array): { bytes: number; crc32: number; name: string } | undefined;
  openReader(data: Uint8Array): Promise<{ read(offset: number, length: number): Promise<Uint8Array>; close(): Promise<void> }>;
  /** A new file for an incoming transfer that announced `bytes` bytes of whole-file CRC-32 `crc32`. */
  createWriter(announced: { bytes: number; crc32: number }): Promise<SnapshotFileSink>;
}

export interface SnapshotFileSink {
  append(bytes: Uint8Array): Promise<void>;
  readonly bytes: number;
  /** CRC-32 of everything appended. */
  readonly checksum: number;
  /** Durable under its final name; returns the new file's data (reference) for the message. */
  commit(index: number, term: number): Promise<Uint8Array>;
  abort(): Promise<void>;
}
