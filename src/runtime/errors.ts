// Errors a node returns to clients. The client gRPC service maps each to a status code (and sends
// `name` plus typed fields as trailing metadata) in one place: src/api/grpc-status.ts.
import type { NodeId } from '../raft/types.js';

/** This node cannot take the request because it is not the leader. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
  constructor(readonly nodeId: NodeId, readonly leaderId: NodeId, readonly leaderAddress: string) {
    super(
      leaderId
        ? `node ${nodeId} is not the leader; retry on ${leaderId} (${leaderAddress})`
        : `node ${nodeId} is not the leader and no leader is known; retry shortly or on another node`,
    );
  }
}

/** The request is malformed or out of limits; nothing was changed. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
  constructor(readonly field: string, detail: string) {
    super(`invalid ${field}: ${detail}`);
  }
}

/** The request's deadline passed before it completed; a write may or may not have been applied. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor(readonly deadlineMs: number, what: string) {
    super(`${what} did not complete within its ${deadlineMs} ms deadline; a write may still be applied — retry with the same (clientId, seq)`);
  }
}

/** Bounded queue full: back off and retry. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(readonly queue: string, readonly limit: number) {
    super(`node is overloaded: ${queue} holds its limit of ${limit} requests; retry with backoff`);
  }
}

/** A follower read whose node lags more than the caller's maxLagMs. */
export class StaleReadError extends Error {
  override name = 'StaleReadError';
  constructor(readonly nodeId: NodeId, readonly lagMs: number, readonly maxLagMs: number) {
    super(`node ${nodeId} lags the leader by ${lagMs} ms, more than maxLagMs ${maxLagMs}; read from another node or the leader`);
  }
}

/** The node is stopping; retry on another node. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
  constructor(readonly nodeId: NodeId) {
    super(`node ${nodeId} is shutting down; retry on another node`);
  }
}

/** A session seq older than the client's own firstUnacked watermark (a retry arriving far too late). */
export class StaleSequenceError extends Error {
  override name = 'StaleSequenceError';
  constructor(readonly clientId: string, readonly seq: number) {
    super(`client ${clientId} seq ${seq} is older than the session window; the original outcome is no longer known`);
  }
}

/**
 * waitFor on a receipt so old that this node no longer knows which entry occupies its index (the
 * log was compacted past it and the snapshot cannot decide). Added by the runtime.
 */
export class ReceiptTooOldError extends Error {
  override name = 'ReceiptTooOldError';
  constructor(readonly term: number, readonly index: number, readonly snapshotIndex: number) {
    super(
      `receipt {term ${term}, index ${index}} is older than this node's snapshot at index ${snapshotIndex}; ` +
        'its outcome is no longer known here — read the key to check, or ask a node with a longer log',
    );
  }
}
