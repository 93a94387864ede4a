// The pure apply logic shared by the LevelDB and in-memory state machines: decode each committed
// entry, enforce exactly-once sessions, execute the op against a write overlay (so later entries in
// the batch see earlier writes), and hand back everything the batch changed. The caller persists the
// outcome atomically and only then merges it, so a failed write leaves the machine unchanged.
import type { Entry } from '../raft/types.js';
import { invariant } from '../raft/errors.js';
import { LEASE_LIMITS, type Command, type CommandResult, type Compare, type KvEvent, type Op, type OpResult } from '../api/command.js';
import { decodeCommand } from './codec.js';
import { bytesToKeyString, compareBytes, copyBytes, type AppliedPosition, type StoredValue } from './keyspace.js';
import type { LeaseTable, LeaseTx } from './lease-table.js';
import type { SessionTable, SessionTx } from './session-table.js';

/** The state as of the start of the batch. */
export interface KvReadView {
  get(key: Uint8Array): Promise<StoredValue | undefined>;
  /** Stored user keys in [start, end) in byte order; an empty `end` means no upper bound. */
  keysInRange(start: Uint8Array, end: Uint8Array): Promise<Uint8Array[]>;
}

export interface DataWrite {
  key: Uint8Array;
  /** null = delete. */
  value: StoredValue | null;
}

export interface ApplyOutcome {
  results: (CommandResult | null)[];
  /** Final state of every user key written in the batch, keyed by bytesToKeyString(key). */
  writes: Map<string, DataWrite>;
  sessions: SessionTx;
  leases: LeaseTx;
  /** Every change to a user key, in log order (what watchers are told once the batch is durable). */
  events: KvEvent[];
  applied: AppliedPosition;
}

/** A command refused as a whole: nothing it staged is kept. */
class CommandRefused extends Error {
  constructor(readonly result: OpResult) {
    super('command refused');
  }
}

export async function applyEntries(
  entries: readonly Entry[],
  view: KvReadView,
  sessions: SessionTable,
  leases: LeaseTable,
  applied: AppliedPosition,
): Promise<ApplyOutcome> {
  const overlay = new WriteOverlay(view, leases.begin());
  const tx = sessions.begin();
  const results: (CommandResult | null)[] = [];
  let position = applied;
  for (const entry of entries) {
    if (entry.index <= position.index) {
      // Already applied (redelivered after a restart): applying twice would break exactly-once.
      results.push(null);
      continue;
    }
    invariant(entry.index === position.index + 1, () => `apply gap: entry ${entry.index} follows applied index ${position.index}`);
    position = { index: entry.index, term: entry.term };
    if (entry.type !== 'normal' || entry.data.length === 0) {
      results.push(null); // no-op or membership change: only the applied index moves
      continue;
    }
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (err) {
      results.push({ index: entry.index, result: { op: 'error', name: 'InvalidCommandError', message: (err as Error).message } });
      continue;
    }
    results.push(await applyCommand(command, entry.index, overlay, tx));
  }
  return { results, writes: overlay.writes, sessions: tx, leases: overlay.leases, events: overlay.events, applied: position };
}

/**
 * Whether a command can be refused after it staged writes (a put naming a lease that is unknown or
 * full): only those need a savepoint. Grant and revoke are refused before they stage anything.
 */
function needsSavepoint(op: Op): boolean {
  if (op.op === 'put') return op.lease !== undefined;
  if (op.op === 'txn') return [...op.success, ...op.failure].some(needsSavepoint);
  return false;
}

/** Runs one command's op; a refusal (unknown lease, a bound reached) leaves nothing of it staged. */
async function executeAtomically(op: Op, index: number, overlay: WriteOverlay): Promise<OpResult> {
  const saved = needsSavepoint(op) ? overlay.savepoint() : undefined;
  try {
    return await executeOp(op, index, overlay);
  } catch (err) {
    if (!(err instanceof CommandRefused)) throw err;
    if (saved) overlay.rollback(saved);
    return err.result;
  }
}

async function applyCommand(command: Command, index: number, overlay: WriteOverlay, tx: SessionTx): Promise<CommandResult> {
  if (command.clientId === '') return { index, result: await executeAtomically(command.op, index, overlay) };
  const session = tx.sessionFor(command.clientId);
  if (command.firstUnacked > session.firstUnacked) {
    session.firstUnacked = command.firstUnacked;
    for (const seq of [...session.results.keys()]) if (seq < session.firstUnacked) session.results.delete(seq);
  }
  let outcome: CommandResult;
  if (command.seq < session.firstUnacked) {
    outcome = {
      index,
      result: {
        op: 'error',
        name: 'StaleSequenceError',
        message: `client ${command.clientId} seq ${command.seq} is older than the session window (first unacked ${session.firstUnacked}); the original outcome is no longer known`,
      },
    };
  } else {
    const earlier = session.results.get(command.seq);
    if (earlier) {
      outcome = { ...earlier, duplicate: true };
    } else {
      outcome = { index, result: await executeAtomically(command.op, index, overlay) };
      session.results.set(command.seq, outcome);
    }
  }
  tx.touch(command.clientId, session, index);
  return outcome;
}

async function executeOp(op: Op, index: number, overlay: WriteOverlay): Promise<OpResult> {
  switch (op.op) {
    case 'put': {
      const prev = await overlay.get(op.key);
      const next: StoredValue = {
        value: copyBytes(op.value),
        version: prev ? prev.version + 1 : 1,
        createIndex: prev ? prev.createIndex : index,
        modIndex: index,
      };
      if (op.lease !== undefined) next.lease = op.lease;
      overlay.write(op.key, prev, next, index);
      return { op: 'put', prevExisted: prev !== undefined };
    }
    case 'delete': {
      const prev = await overlay.get(op.key);
      if (prev) overlay.write(op.key, prev, null, index);
      return { op: 'delete', deleted: prev ? 1 : 0 };
    }
    case 'deleteRange': {
      const keys = await overlay.keysInRange(op.start, op.end);
      for (const key of keys) overlay.write(key, await overlay.get(key), null, index);
      return { op: 'deleteRange', deleted: keys.length };
    }
    case 'leaseGrant': {
      if (overlay.leases.count() >= LEASE_LIMITS.maxLeases) {
        throw new CommandRefused({ op: 'error', name: 'LeaseLimitError', message: `${LEASE_LIMITS.maxLeases} leases are alive (the limit)` });
      }
      overlay.leases.set(index, { ttlMs: op.ttlMs, keys: new Map() });
      return { op: 'leaseGrant', id: index, ttlMs: op.ttlMs };
    }
    case 'leaseRevoke': {
      const deleted = await overlay.dropLease(op.id, index);
      if (deleted === undefined) throw new CommandRefused(leaseNotFound(op.id));
      return { op: 'leaseRevoke', deleted };
    }
    case 'leaseExpire': {
      let expired = 0;
      let deleted = 0;
      for (const id of op.ids) {
        const n = await overlay.dropLease(id, index);
        if (n === undefined) continue; // revoked or expired already
        expired++;
        deleted += n;
      }
      return { op: 'leaseExpire', expired, deleted };
    }
    case 'txn': {
      let succeeded = true;
      for (const compare of op.compares) {
        if (!evaluate(compare, await overlay.get(compare.key))) {
          succeeded = false;
          break;
        }
      }
      const results: OpResult[] = [];
      for (const child of succeeded ? op.success : op.failure) results.push(await executeOp(child, index, overlay));
      return { op: 'txn', succeeded, results };
    }
  }
}

function evaluate(compare: Compare, current: StoredValue | undefined): boolean {
  if (compare.target === 'value') {
    const equal = current !== undefined && compareBytes(current.value, compare.value ?? new Uint8Array(0)) === 0;
    return compare.result === 'eq' ? equal : compare.result === 'neq' ? !equal : false;
  }
  const actual = current === undefined ? 0 : compare.target === 'version' ? current.version : current.modIndex;
  const expected = compare.number ?? 0;
  switch (compare.result) {
    case 'eq':
      return actual === expected;
    case 'neq':
      return actual !== expected;
    case 'lt':
      return actual < expected;
    case 'gt':
      return actual > expected;
  }
}

function leaseNotFound(id: number): OpResult {
  return { op: 'error', name: 'LeaseNotFoundError', message: `lease ${id} does not exist`, lease: id };
}

class WriteOverlay {
  writes = new Map<string, DataWrite>();
  readonly events: KvEvent[] = [];

  constructor(
    private readonly view: KvReadView,
    readonly leases: LeaseTx,
  ) {}

  /**
   * Writes one user key (null = delete), keeps the lease table's key lists in step and records the
   * event. Throws CommandRefused when the new value names a lease that does not exist or is full.
   */
  write(key: Uint8Array, prev: StoredValue | undefined, next: StoredValue | null, index: number): void {
    const k = bytesToKeyString(key);
    const before = prev?.lease;
    const after = next?.lease;
    if (after !== undefined && after !== before) {
      const lease = this.leases.mutable(after);
      if (!lease) throw new CommandRefused(leaseNotFound(after));
      if (lease.keys.size >= LEASE_LIMITS.maxKeysPerLease) {
        throw new CommandRefused({
          op: 'error',
          name: 'LeaseLimitError',
          message: `lease ${after} already has ${LEASE_LIMITS.maxKeysPerLease} keys attached (the limit)`,
        });
      }
      lease.keys.set(k, copyBytes(key));
    }
    if (before !== undefined && before !== after) this.leases.mutable(before)?.keys.delete(k);
    this.set(key, next);
    this.events.push({
      type: next ? 'put' : 'delete',
      key: copyBytes(key),
      value: next ? next.value : new Uint8Array(0),
      index,
      ...(prev ? { prevValue: prev.value } : {}),
      lease: after ?? 0,
    });
  }

  /** Deletes a lease and its keys; the number of keys deleted, or undefined when it does not exist. */
  async dropLease(id: number, index: number): Promise<number | undefined> {
    const lease = this.leases.get(id);
    if (!lease) return undefined;
    const keys = [...lease.keys.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, key]) => key);
    let deleted = 0;
    for (const key of keys) {
      const prev = await this.get(key);
      invariant(prev?.lease === id, () => `lease ${id} lists a key that is not attached to it`);
      this.write(key, prev, null, index);
      deleted++;
    }
    this.leases.set(id, null);
    return deleted;
  }

  savepoint(): { writes: Map<string, DataWrite>; events: number; leases: ReturnType<LeaseTx['savepoint']> } {
    return { writes: new Map(this.writes), events: this.events.length, leases: this.leases.savepoint() };
  }

  rollback(saved: ReturnType<WriteOverlay['savepoint']>): void {
    this.writes = saved.writes;
    this.events.length = saved.events;
    this.leases.rollback(saved.leases);
  }

  async get(key: Uint8Array): Promise<StoredValue | undefined> {
    const staged = this.writes.get(bytesToKeyString(key));
    if (staged) return staged.value ?? undefined;
    return this.view.get(key);
  }

  set(key: Uint8Array, value: StoredValue | null): void {
    const k = copyBytes(key);
    this.writes.set(bytesToKeyString(k), { key: k, value });
  }

  async keysInRange(start: Uint8Array, end: Uint8Array): Promise<Uint8Array[]> {
    const live = new Map<string, Uint8Array>();
    for (const key of await this.view.keysInRange(start, end)) live.set(bytesToKeyString(key), key);
    for (const [k, w] of this.writes) {
      if (compareBytes(w.key, start) < 0 || (end.length > 0 && compareBytes(w.key, end) >= 0)) continue;
      if (w.value) live.set(k, w.key);
      else live.delete(k);
    }
    return [...live.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, key]) => key);
  }
}
