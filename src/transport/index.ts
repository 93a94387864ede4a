export type { PeerAddress, SnapshotStatusEvent, Transport } from './transport.ts';
export { GrpcTransport, type GrpcTransportOptions, type TransportStats } from './grpc-transport.ts';
export type { PeerStats } from './outbound-peer.ts';
export type { InboundStats } from './inbound-service.ts';
export { MemoryNetwork, MemoryTransport, type MemoryNetworkStats, type MemoryTransportOptions } from './memory-transport.ts';
export { decodeMessages, encodeMessages } from './codec.ts';
export { MalformedMessageError, TransportClosedError, TransportConfigError } from './errors.ts';
export type { TransportLogger } from './log-throttle.ts';
export { RAFT_PROTO_PATH } from './raft-service.ts';
