// The error classes of the wire contract. A node throws them and the SDK rebuilds the very same
// classes from a failed call's status (see grpc-status.ts), so `instanceof` and typed fields work
// end to end. This file imports nothing: the runtime, the server, the SDK and the CLI all share it.
// A key that does not exist is not an error: `get` resolves to undefined.

/** This node cannot take the request because it is not the leader. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
  constructor(
    readonly nodeId: string,
    /** '' when no leader is known. */
    readonly leaderId: string,
    /** The leader's client address, '' when unknown. */
    readonly leaderAddress: string,
  ) {
    super(
      leaderId
        ? `node ${nodeId} is not the leader; retry on ${leaderId}${leaderAddress ? ` (${leaderAddress})` : ''}`
        : `node ${nodeId} is not the leader and no leader is known; retry shortly or on another node`,
    );
  }
}

/** The request is malformed or out of limits; nothing was changed. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`invalid ${field}: ${detail}`);
  }
}

/** The request's deadline passed before it completed; a write may or may not have been applied. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor(
    readonly deadlineMs: number,
    what: string,
  ) {
    super(`${what} did not complete within its ${deadlineMs} ms deadline; a write may still be applied — retry with the same (clientId, seq)`);
  }
}

/** The client cancelled the request (or its connection closed) before it completed; what it parked was freed. */
export class RequestCancelledError extends Error {
  override name = 'RequestCancelledError';
  constructor() {
    super('the request was cancelled by the client; a write may still be applied — retry with the same (clientId, seq)');
  }
}

/** The request carried no valid credentials, and this cluster requires them. */
export class UnauthenticatedError extends Error {
  override name = 'UnauthenticatedError';
  constructor(readonly reason: string) {
    super(`authentication required: ${reason}; pass credentials ({ username, password } or { token }) or a client certificate`);
  }
}

/** The authenticated user may not do this; nothing was changed. */
export class PermissionDeniedError extends Error {
  override name = 'PermissionDeniedError';
  constructor(
    readonly user: string,
    /** What was refused, e.g. "write app/x" or "AddMember". */
    readonly action: string,
  ) {
    super(`user ${user} may not ${action}; nothing was changed (ask an admin for a role that allows it)`);
  }
}

/** Bounded queue full: back off and retry. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(
    readonly queue: string,
    readonly limit: number,
  ) {
    super(`node is overloaded: ${queue} holds its limit of ${limit} requests; retry with backoff`);
  }
}

/** A follower read whose node lags more than the caller's maxLagMs. */
export class StaleReadError extends Error {
  override name = 'StaleReadError';
  constructor(
    readonly nodeId: string,
    readonly lagMs: number,
    readonly maxLagMs: number,
  ) {
    super(`node ${nodeId} lags the leader by ${lagMs} ms, more than maxLagMs ${maxLagMs}; read from another node or the leader`);
  }
}

/** The node is stopping; retry on another node. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
  constructor(readonly nodeId: string) {
    super(`node ${nodeId} is shutting down; retry on another node`);
  }
}

/** A session seq older than the client's own firstUnacked watermark (a retry arriving far too late). */
export class StaleSequenceError extends Error {
  override name = 'StaleSequenceError';
  constructor(
    readonly clientId: string,
    readonly seq: number,
  ) {
    super(`client ${clientId} seq ${seq} is older than the session window; the original outcome is no longer known`);
  }
}

/**
 * waitFor on a receipt so old that this node no longer knows which entry occupies its index (the
 * log was compacted past it and the snapshot cannot decide).
 */
export class ReceiptTooOldError extends Error {
  override name = 'ReceiptTooOldError';
  constructor(
    readonly term: number,
    readonly index: number,
    readonly snapshotIndex: number,
  ) {
    super(
      `receipt {term ${term}, index ${index}} is older than this node's snapshot at index ${snapshotIndex}; ` +
        'its outcome is no longer known here — read the key to check, or ask a node with a longer log',
    );
  }
}

/** The node could not take a proposal right now (e.g. a leadership transfer is under way); retry. */
export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
  constructor(readonly reason: string) {
    super(`proposal dropped: ${reason}`);
  }
}

/** A membership change the leader refused (another change still in flight, last voter, …); nothing changed. */
export class ConfChangeRejectedError extends Error {
  override name = 'ConfChangeRejectedError';
  constructor(readonly reason: string) {
    super(`membership change rejected: ${reason}`);
  }
}

/**
 * The node found damaged data in its own copy of the state (a stored value failing its checksum)
 * and refuses to serve reads from it until an operator rebuilds it from the leader. Nothing is
 * wrong with the cluster's data: read from another node.
 */
export class ReplicaCorruptedError extends Error {
  override name = 'ReplicaCorruptedError';
  constructor(
    readonly nodeId: string,
    detail: string,
  ) {
    super(`node ${nodeId} refuses to serve reads: its copy of the data is damaged${detail ? ` (${detail})` : ''}; read from another node`);
  }
}

/** An async write's log slot was taken by another entry after a leader change: it was NOT applied. */
export class LostWriteError extends Error {
  override name = 'LostWriteError';
  constructor(
    readonly term: number,
    readonly index: number,
  ) {
    super(
      `the async write at term ${term} index ${index} was lost in a leader change and was not applied; ` +
        'write it again (with a new seq) if it is still wanted',
    );
  }
}

/** No node could be reached (connection refused, unreachable, shutting down) before the deadline. */
export class ClusterUnavailableError extends Error {
  override name = 'ClusterUnavailableError';
  constructor(
    readonly endpoints: readonly string[],
    readonly deadlineMs: number,
    readonly lastError?: Error,
  ) {
    super(
      `no quorumkv node answered within ${deadlineMs} ms (endpoints: ${endpoints.join(', ')})` +
        (lastError ? `; last error: ${lastError.message}` : '') +
        '; check that the cluster is running and the endpoints are right',
      lastError ? { cause: lastError } : undefined,
    );
  }
}

/** A node failed the request with an error the SDK has no class for (e.g. an internal error). */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    /** gRPC status code. */
    readonly code: number,
    /** The node's error name (`quorumkv-error`), '' when the node sent none. */
    readonly remoteName: string,
    message: string,
  ) {
    super(message);
  }
}

/** The SDK was used after close(), or given options it cannot work with. */
export class ClientUsageError extends Error {
  override name = 'ClientUsageError';
}

/** A cluster config file is unreadable or invalid; names the file and the field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${file}: ${field}: ${detail}`);
  }
}

/** The lease does not exist: it was never granted, was revoked, or expired. Nothing was changed. */
export class LeaseNotFoundError extends Error {
  override name = 'LeaseNotFoundError';
  constructor(readonly leaseId: number) {
    super(`lease ${leaseId} does not exist (never granted, revoked, or expired); grant a new lease and attach the keys to it again`);
  }
}

/**
 * A watch asked to resume from an index older than the node still keeps history for. Events from
 * `oldestIndex` on are available: read the current state (scan) and watch from its index + 1.
 */
export class WatchCompactedError extends Error {
  override name = 'WatchCompactedError';
  constructor(
    readonly requestedIndex: number,
    readonly oldestIndex: number,
  ) {
    super(
      `cannot watch from index ${requestedIndex}: this node keeps watch history from index ${oldestIndex} only; ` +
        `re-read the keys (scan) and watch from the index the read reports + 1`,
    );
  }
}

/**
 * A backup file (or a backup stream) is damaged, truncated or not a backup: nothing was written
 * from it. Client-side (the SDK and the CLI check a backup's CRC-32; `snapshot status|restore` check every record).
 */
export class SnapshotFileError extends Error {
  override name = 'SnapshotFileError';
  constructor(
    /** The file, or 'stream' for a backup being received. */
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${detail}; nothing was written from it (take a new backup with quorumkv snapshot save)`);
  }
}
