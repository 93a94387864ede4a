// Errors the SDK throws. Errors a node reports are rebuilt as the same classes the node threw
// (src/runtime/errors.ts, via src/api/grpc-status.ts), so `instanceof` and typed fields work end to end.
// A key that does not exist is not an error: `get` resolves to undefined.
export {
  NotLeaderError,
  InvalidArgumentError,
  DeadlineExceededError,
  OverloadedError,
  StaleReadError,
  ShuttingDownError,
  StaleSequenceError,
  ReceiptTooOldError,
} from '../runtime/errors.js';
/** A membership change the leader refused (another change still in flight, last voter, …); nothing changed. */
export { ConfChangeRejectedError } from '../raft/errors.js';

/** An async write's log slot was taken by another entry after a leader change: it was NOT applied. */
export class LostWriteError extends Error {
  override name = 'LostWriteError';
  constructor(readonly term: number, readonly index: number) {
    super(
      `the async write at term ${term} index ${index} was lost in a leader change and was not applied; ` +
        'write it again (with a new seq) if it is still wanted',
    );
  }
}

/** No node could be reached (connection refused, unreachable, shutting down) before the deadline. */
export class ClusterUnavailableError extends Error {
  override name = 'ClusterUnavailableError';
  constructor(readonly endpoints: readonly string[], readonly deadlineMs: number, readonly lastError?: Error) {
    super(
      `no quorumkv node answered within ${deadlineMs} ms (endpoints: ${endpoints.join(', ')})` +
        (lastError ? `; last error: ${lastError.message}` : '') +
        '; check that the cluster is running and the endpoints are right',
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
