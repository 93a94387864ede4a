// `quorumkv/server`: run a node inside your own Node.js process, or a whole local cluster, from a
// cluster config file; plus the pieces to assemble a node by hand.
export { runNodeProcess, overridesFromEnv, NodeProcessError, type NodeProcessOverrides } from './node-process.js';
export { runClusterLauncher, type ClusterLauncherOptions } from './cluster-launcher.js';
export { NodeProbe, ProbeCallError, type ProbeStatus, type ProbeGet, type ProbeWrite, type ProbeConsistency } from './node-probe.js';
export { loadConfig, loadClusterConfig, parseConfig, selectNode, clientEndpoints, ConfigError } from './config.js';
export type { ClusterConfig, NodeConfig, RaftSettings } from './config.js';
export * from '../runtime/index.js';
export * from '../server/index.js';
