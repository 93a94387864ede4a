// Public exports of the node layer: the runtime (RaftNode), the process entry points, the client
// service and its contracts.
export { RaftNode, type RaftNodeOptions, type RaftTimings } from './raft-node.ts';
export { runNodeProcess, overridesFromEnv, renderMetrics, NodeProcessError, type NodeProcessOverrides } from './process.ts';
export { runClusterLauncher, type ClusterLauncherOptions } from './cluster-launcher.ts';
export { NodeProbe, ProbeCallError, type ProbeStatus, type ProbeGet, type ProbeWrite, type ProbeConsistency } from './node-probe.ts';
export { MemberTable, encodeConfContext, decodeConfEntry, type MemberAddress, type ConfChangeContext } from './membership.ts';
export { NodeMetrics, Histogram, Counter } from './metrics.ts';
export { startKvServer, DEFAULT_KV_LIMITS, type KvServer, type KvServerOptions, type KvServiceLimits } from './kv-service.ts';
export { loadConfig, loadClusterConfig, parseConfig, selectNode, clientEndpoints, ConfigError } from './config.ts';
export type { ClusterConfig, NodeConfig, RaftSettings } from './config.ts';
export * from './errors.ts';
export type * from './kv-backend.ts';
