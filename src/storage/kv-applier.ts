// The pure apply logic shared by the LevelDB and in-memory state machines: decode each committed
// entry, enforce exactly-once sessions, execute the op against a write overlay (so later entries in
// the batch see earlier writes), and hand back everything the batch changed. The caller persists the
// outcome atomically and only then merges it, so a failed write leaves the machine unchanged.
import type { Entry } from '../raft/types.js';
import { invariant } from '../raft/errors.js';
import type { Command, CommandResult, Compare, Op, OpResult } from '../api/command.js';
import { decodeCommand } from './codec.js';
import { bytesToKeyString, compareBytes, copyBytes, type AppliedPosition, type StoredValue } from './keyspace.js';
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
  applied: AppliedPosition;
}

export async function applyEntries(entries: readonly Entry[], view: KvReadView, sessions: SessionTable, applied: AppliedPosition): Promise<ApplyOutcome> {
  const overlay = new WriteOverlay(view);
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
  return { results, writes: overlay.writes, sessions: tx, applied: position };
}

async function applyCommand(command: Command, index: number, overlay: WriteOverlay, tx: SessionTx): Promise<CommandResult> {
  if (command.clientId === '') return { index, result: await executeOp(command.op, index, overlay) };
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
      outcome = { index, result: await executeOp(command.op, index, overlay) };
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
      overlay.set(op.key, {
        value: copyBytes(op.value),
        version: prev ? prev.version + 1 : 1,
        createIndex: prev ? prev.createIndex : index,
        modIndex: index,
      });
      return { op: 'put', prevExisted: prev !== undefined };
    }
    case 'delete': {
      const prev = await overlay.get(op.key);
      if (prev) overlay.set(op.key, null);
      return { op: 'delete', deleted: prev ? 1 : 0 };
    }
    case 'deleteRange': {
      const keys = await overlay.keysInRange(op.start, op.end);
      for (const key of keys) overlay.set(key, null);
      return { op: 'deleteRange', deleted: keys.length };
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

class WriteOverlay {
  readonly writes = new Map<string, DataWrite>();

  constructor(private readonly view: KvReadView) {}

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
