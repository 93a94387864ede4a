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
});
