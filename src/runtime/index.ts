// The node runtime: one Ready driver over the Raft core, storage and transport.
export { RaftNode, type RaftNodeOptions, type RaftTimings } from './raft-node.js';
export { MemberTable, encodeConfContext, decodeConfEntry, type MemberAddress, type ConfChangeContext } from './membership.js';
export { type NodeMetrics, type MetricCounter, type MetricHistogram, noopNodeMetrics } from './metrics.js';
export type * from './kv-backend.js';
