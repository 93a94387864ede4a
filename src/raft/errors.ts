import type { NodeId } from './types.js';

/** A proposal this node cannot accept right now (no leader, leadership transfer, pending conf change). */
export class ProposalDroppedError extends Error {
  override name = 'ProposalDroppedError';
  constructor(readonly reason: string) {
    super(`proposal dropped: ${reason}`);
  }
}

/** The leader holds its limit of appended-but-uncommitted entries (followers are slow or gone). */
export class UncommittedLimitError extends ProposalDroppedError {
  override name = 'UncommittedLimitError';
  constructor(readonly limit: number) {
    super(`the leader already holds ${limit} uncommitted entries; retry with backoff once followers catch up`);
  }
}

/** The operation needs the leader and this node is not it. `leaderHint` is '' when unknown. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
  constructor(
    readonly nodeId: NodeId,
    readonly leaderHint: NodeId,
  ) {
    super(
      leaderHint
        ? `node ${nodeId} is not the leader; retry on ${leaderHint}`
        : `node ${nodeId} is not the leader and knows no leader yet; retry after an election`,
    );
  }
}

/** A membership change was refused (another change pending, unknown node, removing the last voter…). */
export class ConfChangeRejectedError extends Error {
  override name = 'ConfChangeRejectedError';
  /**
   * @param transient true when the refusal clears by itself within a few ticks (the previous change
   * is still being applied; a new leader's first entry is still committing), so retrying is right.
   */
  constructor(
    readonly reason: string,
    readonly transient = false,
  ) {
    super(`membership change rejected: ${reason}`);
  }
}

/** An internal invariant was violated: always a bug in quorumkv, never a user error. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'string' ? message : message());
}
