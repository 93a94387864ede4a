// The read path: what a read must wait for before it may be served from the local state machine,
// per consistency mode.
//   linearizable  a ReadIndex round (batched) confirms leadership; then wait to apply that index.
//   lease         the leader serves at its commit index while its lease holds; else linearizable.
//   follower      any node, optionally after applying minIndex and within maxLagMs of the leader.
import { DeadlineExceededError, InvalidArgumentError, OverloadedError, StaleReadError } from '../api/errors.js';
import type { ReadOptions } from './kv-backend.js';
import { ReadIndexBatcher } from './read-index-batcher.js';
import { type DeadlineTimers, withDeadline } from './with-deadline.js';

export interface ReadPathOptions {
  nodeId: string;
  timers: DeadlineTimers;
  /** Linearizable reads waiting for a read index; beyond it: OverloadedError. */
  maxPendingReads: number;
  /** Prefix for ReadIndex contexts, unique per node incarnation. */
  contextPrefix: string;
  /** An unanswered ReadIndex round is re-issued after this long. */
  retryAfterMs: number;
  isLeader(): boolean;
  notLeader(): Error;
  /** The core's lease read index, or null when the lease does not hold. */
  leaseReadIndex(): number | null;
  /** Asks the core for a read index (throws when impossible). */
  issueReadIndex(context: string): void;
  waitApplied(index: number, deadline: number, started: number, what: string, signal?: AbortSignal): Promise<void>;
  followerLagMs(): number;
}

export class ReadPath {
  private readonly batcher: ReadIndexBatcher;

  constructor(private readonly options: ReadPathOptions) {
    this.batcher = new ReadIndexBatcher({
      issue: options.issueReadIndex,
      contextPrefix: options.contextPrefix,
      retryAfterMs: options.retryAfterMs,
      now: options.timers.now,
    });
  }

  /** Reads waiting for a read index. */
  get pending(): number {
    return this.batcher.pending;
  }

  /** Resolves once a read with `options` may be served from the local state machine. */
  async barrier(options: ReadOptions, started: number): Promise<void> {
    switch (options.consistency) {
      case 'linearizable':
        return this.linearizable(options.deadline, started, options.signal);
      case 'lease': {
        if (!this.options.isLeader()) throw this.options.notLeader();
        const index = this.options.leaseReadIndex();
        if (index === null) return this.linearizable(options.deadline, started, options.signal);
        return this.options.waitApplied(index, options.deadline, started, 'lease read', options.signal);
      }
      case 'follower': {
        if (options.minIndex !== undefined) {
          if (!Number.isInteger(options.minIndex) || options.minIndex < 0)
            throw new InvalidArgumentError('minIndex', `must be a non-negative integer, got ${options.minIndex}`);
          await this.options.waitApplied(options.minIndex, options.deadline, started, 'follower read (minIndex)', options.signal);
        }
        if (options.maxLagMs !== undefined) {
          if (typeof options.maxLagMs !== 'number' || !(options.maxLagMs >= 0))
            throw new InvalidArgumentError('maxLagMs', `must be a non-negative number, got ${options.maxLagMs}`);
          const lag = this.options.followerLagMs();
          if (lag > options.maxLagMs) throw new StaleReadError(this.options.nodeId, lag, options.maxLagMs);
        }
        return;
      }
      default:
        throw new InvalidArgumentError('consistency', `must be 'linearizable', 'lease' or 'follower', got ${String(options.consistency)}`);
    }
  }

  /** The core released a ReadState. */
  onReadState(context: string, index: number): void {
    this.batcher.onReadState(context, index);
  }

  /** Every tick: re-issue rounds that went unanswered. */
  tick(): void {
    this.batcher.tick();
  }

  failAll(err: Error): void {
    this.batcher.failAll(err);
  }

  private async linearizable(deadline: number, started: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.batcher.pending >= this.options.maxPendingReads) throw new OverloadedError('pending reads', this.options.maxPendingReads);
    const slot = this.batcher.request();
    const index = await withDeadline(
      slot.index,
      deadline,
      this.options.timers,
      () => new DeadlineExceededError(deadline - started, 'linearizable read'),
      slot.cancel,
      signal,
    );
    await this.options.waitApplied(index, deadline, started, 'linearizable read', signal);
  }
}
