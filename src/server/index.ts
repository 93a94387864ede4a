// The node's network edge: the client gRPC service and the HTTP endpoints.
export { startKvServer, DEFAULT_KV_LIMITS, type KvServer, type KvServerOptions, type KvServiceLimits } from './kv-service.js';
export { startHttpEndpoints, type HttpEndpoints, type HttpEndpointsOptions, type ClusterMemberView } from './http-endpoints.js';
export { NodePrometheus, type NodeMetricsOptions, type PeerLinkStats, type LeaderChange } from './node-metrics.js';
