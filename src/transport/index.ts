export type { PeerAddress, SnapshotStatusEvent, Transport } from './transport.js';
export { GrpcTransport, type GrpcTransportOptions, type TransportStats } from './grpc-transport.js';
export type { PeerStats } from './outbound-peer.js';
export type { InboundStats } from './inbound-service.js';
export { MemoryNetwork, MemoryTransport, type MemoryNetworkStats, type MemoryTransportOptions } from './memory-transport.js';
export { decodeMessages, encodeMessages } from './codec.js';
export { MalformedMessageError, TransportClosedError, TransportConfigError } from './errors.js';
export type { TransportLogger } from './log-throttle.js';
export { RAFT_PROTO_PATH } from './raft-service.js';
