// Process exit codes of the `quorumkv` CLI: one table, used by every command, by `--help` and by
// the README (scripts depend on them: keep them stable).
import {
  ClientUsageError,
  ClusterUnavailableError,
  ConfigError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  PermissionDeniedError,
  RemoteError,
  ShuttingDownError,
  SnapshotFileError,
  UnauthenticatedError,
} from '../api/errors.js';

export const EXIT_OK = 0;
/** The key (or range) does not exist. */
export const EXIT_NOT_FOUND = 1;
/** Bad command line, bad config file, or a request the cluster rejected as invalid. */
export const EXIT_USAGE = 2;
/** No node answered, no leader could be found, the deadline passed, or (status, endpoint health) some node did not answer. */
export const EXIT_UNAVAILABLE = 3;
/** Any other failure (e.g. an internal error reported by a node). */
export const EXIT_FAILED = 4;
/** cas / txn: the compare did not hold (nothing was written by cas; txn ran its failure ops). */
export const EXIT_COMPARE_FAILED = 5;
/** Not authenticated, or the user may not do this. */
export const EXIT_DENIED = 6;
/** snapshot save/status/restore: the backup is damaged, truncated or not a backup (nothing was written from it). */
export const EXIT_BAD_SNAPSHOT = 7;

/** The table `--help` prints and the README documents. */
export const EXIT_CODES: readonly { code: number; meaning: string }[] = [
  { code: EXIT_OK, meaning: 'success' },
  { code: EXIT_NOT_FOUND, meaning: 'get: the key does not exist' },
  { code: EXIT_USAGE, meaning: 'bad command line or config file, or a request the cluster rejected as invalid' },
  { code: EXIT_UNAVAILABLE, meaning: 'cluster unavailable: no node answered, no leader, deadline passed; status/endpoint health: a node did not answer' },
  { code: EXIT_FAILED, meaning: 'any other failure (e.g. an internal error on a node)' },
  { code: EXIT_COMPARE_FAILED, meaning: 'cas/txn: the compare did not hold' },
  { code: EXIT_DENIED, meaning: 'not authenticated, or permission denied' },
  { code: EXIT_BAD_SNAPSHOT, meaning: 'snapshot save/status/restore: the backup is damaged, truncated or not a backup' },
];

export function exitCodeTable(): string {
  return ['exit codes:', ...EXIT_CODES.map((e) => `  ${e.code}  ${e.meaning}`)].join('\n');
}

/** gRPC status codes that mean "could not reach a node in time" (UNAVAILABLE, DEADLINE_EXCEEDED). */
const UNREACHABLE_GRPC_CODES = new Set([14, 4]);

export function exitCodeFor(err: unknown): number {
  if (
    (err instanceof Error && err.name === 'UsageError') ||
    err instanceof ConfigError ||
    err instanceof InvalidArgumentError ||
    err instanceof ClientUsageError
  ) {
    return EXIT_USAGE;
  }
  if (err instanceof UnauthenticatedError || err instanceof PermissionDeniedError) return EXIT_DENIED;
  if (err instanceof SnapshotFileError) return EXIT_BAD_SNAPSHOT;
  if (
    err instanceof ClusterUnavailableError ||
    err instanceof DeadlineExceededError ||
    err instanceof NotLeaderError ||
    err instanceof OverloadedError ||
    err instanceof ShuttingDownError ||
    (err instanceof RemoteError && UNREACHABLE_GRPC_CODES.has(err.code))
  ) {
    return EXIT_UNAVAILABLE;
  }
  return EXIT_FAILED;
}
