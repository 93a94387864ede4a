// Public exports of the node layer: the runtime (RaftNode), the process entry points, the client
// service and its contracts.
export { RaftNode, type RaftNodeOptions, type RaftTimings } from '../runtime/raft-node.js';
export { runNodeProcess, overridesFromEnv, renderMetrics, NodeProcessError, type NodeProcessOverrides } from '../process/node-process.js';
export { runClusterLauncher, type ClusterLauncherOptions } from '../process/cluster-launcher.js';
export { NodeProbe, ProbeCallError, type ProbeStatus, type ProbeGet, type ProbeWrite, type ProbeConsistency } from '../process/node-probe.js';
export { MemberTable, encodeConfContext, decodeConfEntry, type MemberAddress, type ConfChangeContext } from '../runtime/membership.js';
export { NodeMetrics, Histogram, Counter } from '../runtime/metrics.js';
export { startKvServer, DEFAULT_KV_LIMITS, type KvServer, type KvServerOptions, type KvServiceLimits } from './kv-service.js';
export { loadConfig, loadClusterConfig, parseConfig, selectNode, clientEndpoints, ConfigError } from '../process/config.js';
export type { ClusterConfig, NodeConfig, RaftSettings } from '../process/config.js';
export * from '../runtime/errors.js';
export type * from './kv-backend.js';
