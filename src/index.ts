// The public API of the `quorumkv` package: the client SDK and its types.
export * from './client/index.ts';
export { loadConfig, parseConfig, clientEndpoints, ConfigError } from './node/config.ts';
export type { ClusterConfig, NodeConfig, RaftSettings } from './node/config.ts';
