// Commands replicated through the Raft log (entry.data = msgpackr-encoded Command) and their results.
// Keys and values are bytes; the client edge converts strings.

export type Op =
  | { op: 'put'; key: Uint8Array; value: Uint8Array }
  | { op: 'delete'; key: Uint8Array }
  /** Deletes keys in [start, end); end empty = to the end of the keyspace. A prefix becomes [p, prefixEnd(p)). */
  | { op: 'deleteRange'; start: Uint8Array; end: Uint8Array }
  | { op: 'txn'; compares: Compare[]; success: Op[]; failure: Op[] };

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
  /**
   * The command was not applied (deterministically, on every node): its bytes did not decode
   * ('InvalidCommandError'), or its seq is below the session window ('StaleSequenceError').
   */
  | { op: 'error'; name: CommandErrorName; message: string };

export type CommandErrorName = 'InvalidCommandError' | 'StaleSequenceError';

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
