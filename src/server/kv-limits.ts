// Bounds the client service enforces at the edge, and their defaults (the config file's `limits`).

export interface KvServiceLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Requests being served at once; beyond it: RESOURCE_EXHAUSTED (OverloadedError). */
  maxInFlight: number;
  /** Backend deadline when the call carries no gRPC deadline. */
  defaultDeadlineMs: number;
  /** Longer gRPC deadlines are cut to this. */
  maxDeadlineMs: number;
  defaultScanLimit: number;
  maxScanLimit: number;
  /** Compares plus ops (both branches) in one Txn. */
  maxTxnOps: number;
  /** gRPC receive limit for one request message. */
  maxRequestBytes: number;
  maxClientIdBytes: number;
  /**
   * Requests started in one turn of the event loop (all connections together); beyond it they are
   * refused at once (RESOURCE_EXHAUSTED) so that a burst cannot hold up the Raft heartbeats.
   */
  maxRequestsPerTurn: number;
  /** HTTP/2 streams one client connection may have open at once (unary calls in flight). */
  maxConcurrentStreams: number;
  /** Requests in flight on one Call stream; at the limit the stream is not read until one completes. */
  maxStreamInFlight: number;
  /** Answer bytes queued for a Call stream whose client does not read; beyond it the stream is ended. */
  maxStreamBufferedBytes: number;
  /** A Scan page stops once its keys and values reach this many bytes (more = true). */
  maxScanResponseBytes: number;
  /** Watch streams open at once on this node. */
  maxWatchers: number;
  /** Watch streams open at once on one client connection. */
  maxWatchersPerConnection: number;
  /** Key and value bytes in one watch message. */
  maxWatchMessageBytes: number;
}

export const DEFAULT_KV_LIMITS: Readonly<KvServiceLimits> = Object.freeze({
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
  maxInFlight: 10_000,
  defaultDeadlineMs: 5_000,
  maxDeadlineMs: 300_000,
  defaultScanLimit: 1_000,
  maxScanLimit: 10_000,
  maxTxnOps: 128,
  maxRequestBytes: 8 * 1024 * 1024,
  maxClientIdBytes: 128,
  maxRequestsPerTurn: 256,
  maxConcurrentStreams: 256,
  maxStreamInFlight: 256,
  maxStreamBufferedBytes: 16 * 1024 * 1024,
  maxScanResponseBytes: 4 * 1024 * 1024,
  maxWatchers: 10_000,
  maxWatchersPerConnection: 64,
  maxWatchMessageBytes: 1024 * 1024,
});
