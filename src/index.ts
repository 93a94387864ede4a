// The public API of the `quorumkv` package: the client SDK and its types.
export * from './client/index.js';
export { loadConfig, parseConfig, clientEndpoints, ConfigError } from './process/config.js';
export type { ClusterConfig, NodeConfig, RaftSettings } from './process/config.js';
