// The node's network edge: the client gRPC service and the HTTP endpoints.
export { startKvServer, DEFAULT_KV_LIMITS, type KvServer, type KvServerOptions, type KvServiceLimits } from './kv-service.js';
export { startHttpEndpoints, renderMetrics, type HttpEndpoints } from './http-endpoints.js';
