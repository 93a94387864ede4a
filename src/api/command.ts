// Commands replicated through the Raft log (entry.data = msgpackr-encoded Command) and their results.
// Keys and values are bytes; the client edge converts strings.

export type Op =
  /** `lease` (optional) attaches the key to a lease: revoking or expiring the lease deletes the key. */
  | { op: 'put'; key: Uint8Array; value: Uint8Array; lease?: number }
  | { op: 'delete'; key: Uint8Array }
  /** Deletes keys in [start, end); end empty = to the end of the keyspace. A prefix becomes [p, prefixEnd(p)). */
  | { op: 'deleteRange'; start: Uint8Array; end: Uint8Array }
  | { op: 'txn'; compares: Compare[]; success: Op[]; failure: Op[] }
  /** A new lease; its id is the log index of this entry (unique, and the same on every replica). */
  | { op: 'leaseGrant'; ttlMs: number }
  /** Deletes the lease and every key attached to it; refused (LeaseNotFoundError) when unknown. */
  | { op: 'leaseRevoke'; id: number }
  /**
   * Proposed by the leader when its clock says these leases ran out: like revoke, but ids that are
   * already gone are skipped (a revoke or an earlier expiry got there first).
   */
  | { op: 'leaseExpire'; ids: number[] };

/** Bounds of the lease language, checked by the codec (so every replica refuses the same commands). */
export const LEASE_LIMITS = Object.freeze({
  minTtlMs: 500,
  maxTtlMs: 7 * 24 * 3600 * 1000,
  /** Leases alive at once; a grant beyond it is refused (LeaseLimitError). */
  maxLeases: 10_000,
  /** Keys attached to one lease; a put beyond it is refused (LeaseLimitError). */
  maxKeysPerLease: 1_000,
  /** Ids in one leaseExpire command. */
  maxExpirePerCommand: 256,
});

/**
 * A guard in a transaction. target 'value' compares bytes (eq/neq only); 'version' (number of
 * writes since creation, 0 = absent) and 'modIndex' (log index of the last write, 0 = absent)
 * compare numbers with eq/neq/lt/gt.
 */
export interface Compare {
  key: Uint8Array;
  target: 'value' | 'version' | 'modIndex';
  result: 'eq' | 'neq' | 'lt' | 'gt';
  value?: Uint8Array;
  number?: number;
}

/**
 * `clientId`/`seq` make retries exactly-once: the state machine remembers the result of every seq
 * >= `firstUnacked` per client and returns it instead of applying twice. clientId '' = no session.
 */
export interface Command {
  clientId: string;
  seq: number;
  /** The client promises it will never retry a seq below this; results below it can be forgotten. */
  firstUnacked: number;
  op: Op;
}

export type OpResult =
  | { op: 'put'; prevExisted: boolean }
  | { op: 'delete'; deleted: number }
  | { op: 'deleteRange'; deleted: number }
  | { op: 'txn'; succeeded: boolean; results: OpResult[] }
  | { op: 'leaseGrant'; id: number; ttlMs: number }
  /** `deleted`: keys deleted with the lease(s). */
  | { op: 'leaseRevoke'; deleted: number }
  | { op: 'leaseExpire'; expired: number; deleted: number }
  /**
   * The command was not applied (deterministically, on every node): its bytes did not decode
   * ('InvalidCommandError'), its seq is below the session window ('StaleSequenceError'), it names
   * a lease that does not exist ('LeaseNotFoundError', `lease` set), or a lease bound is full
   * ('LeaseLimitError'). Nothing of the command was applied.
   */
  | { op: 'error'; name: CommandErrorName; message: string; lease?: number };

export type CommandErrorName = 'InvalidCommandError' | 'StaleSequenceError' | 'LeaseNotFoundError' | 'LeaseLimitError';

/** One change to a key, as watchers see it: produced by apply, in log order. */
export interface KvEvent {
  type: 'put' | 'delete';
  key: Uint8Array;
  /** The new value (empty for a delete). */
  value: Uint8Array;
  /** Log index of the entry that made the change. */
  index: number;
  /** The key's value before the change; undefined when the key did not exist. */
  prevValue?: Uint8Array;
  /** Lease the key is attached to after a put (0 = none). */
  lease: number;
}

/** A lease as the state machine holds it. */
export interface LeaseInfo {
  id: number;
  ttlMs: number;
  /** Number of keys attached. */
  keys: number;
}

export interface CommandResult {
  /** Log index at which the command was applied (the new modIndex of keys it wrote). */
  index: number;
  result: OpResult;
  /** True when this was a retry answered from the session table, not applied again. */
  duplicate?: boolean;
}

/** A stored key. version counts writes since the key was (re)created; indexes are log indexes. */
export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  createIndex: number;
  modIndex: number;
  /** Lease the key is attached to (0 = none). */
  lease?: number;
}

/**
 * The smallest key greater than every key starting with `prefix`, so a prefix becomes the range
 * [prefix, prefixEnd(prefix)). Returns an empty array (= no upper bound) when no such key exists
 * (empty prefix or all 0xff bytes).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      // A copy: on a Node Buffer (what gRPC hands us) slice() is a view, and the += would
      // silently change the caller's prefix.
      const end = Uint8Array.from(prefix.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return new Uint8Array(0);
}
