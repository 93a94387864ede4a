// msgpackr encoding of what travels inside Raft entries. Decoding validates the whole shape because
// entry bytes come from peers: garbage must become a typed error, never a crash or a half-read value.
import { Packr } from 'msgpackr';
import { LEASE_LIMITS, type Command, type Compare, type Op } from '../api/command.js';
import { InvalidCommandError } from './errors.js';

// Plain maps/arrays only (no record extension): the bytes must decode the same on every node and
// every version, with no shared structure table.
export const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** Deepest txn nesting accepted, so a hostile command cannot exhaust the stack. */
export const MAX_TXN_DEPTH = 8;

export function encodeCommand(command: Command): Uint8Array {
  validateCommand(command); // never put a command into the log that every node would reject
  // A copy of exactly its size: packr.pack returns a view into the packer's shared buffer, which
  // also holds every record packed after it (log records, batches), so a log entry kept for its
  // lifetime would pin megabytes of garbage with it (measured: ~4x the entry's own size).
  return Uint8Array.prototype.slice.call(packr.pack(command));
}

export function decodeCommand(bytes: Uint8Array): Command {
  const value = unpackOrThrow(bytes, 'command');
  validateCommand(value);
  return value;
}

function unpackOrThrow(bytes: Uint8Array, what: string): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new InvalidCommandError(`empty ${what} bytes`);
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new InvalidCommandError(`${what} bytes are not valid msgpack (${(err as Error).message})`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function bytesField(obj: Record<string, unknown>, field: string, path: string, allowEmpty: boolean): Uint8Array {
  const v = obj[field];
  if (!(v instanceof Uint8Array)) throw new InvalidCommandError(`${path}.${field} must be bytes`);
  if (!allowEmpty && v.length === 0) throw new InvalidCommandError(`${path}.${field} must not be empty`);
  return v;
}

export function validateCommand(value: unknown): asserts value is Command {
  if (!isRecord(value)) throw new InvalidCommandError('command must be a map');
  if (typeof value.clientId !== 'string') throw new InvalidCommandError('command.clientId must be a string');
  if (!isIndex(value.seq)) throw new InvalidCommandError('command.seq must be a non-negative integer');
  if (!isIndex(value.firstUnacked)) throw new InvalidCommandError('command.firstUnacked must be a non-negative integer');
  validateOp(value.op, 'command.op', 0);
}

function validateOp(value: unknown, path: string, depth: number): asserts value is Op {
  if (!isRecord(value)) throw new InvalidCommandError(`${path} must be a map`);
  switch (value.op) {
    case 'put':
      bytesField(value, 'key', path, false);
      bytesField(value, 'value', path, true);
      if (value.lease !== undefined && (!isIndex(value.lease) || value.lease === 0)) {
        throw new InvalidCommandError(`${path}.lease must be a positive lease id`);
      }
      return;
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'leaseExpire':
      if (depth > 0) throw new InvalidCommandError(`${path}: ${value.op} cannot be part of a txn`);
      validateLeaseOp(value, path);
      return;
    case 'delete':
      bytesField(value, 'key', path, false);
      return;
    case 'deleteRange':
      bytesField(value, 'start', path, true);
      bytesField(value, 'end', path, true);
      return;
    case 'txn': {
      if (depth >= MAX_TXN_DEPTH) throw new InvalidCommandError(`${path}: txn nested deeper than ${MAX_TXN_DEPTH}`);
      for (const field of ['compares', 'success', 'failure'] as const) {
        if (!Array.isArray(value[field])) throw new InvalidCommandError(`${path}.${field} must be an array`);
      }
      for (const [i, c] of (value.compares as unknown[]).entries()) validateCompare(c, `${path}.compares[${i}]`);
      for (const [i, o] of (value.success as unknown[]).entries()) validateOp(o, `${path}.success[${i}]`, depth + 1);
      for (const [i, o] of (value.failure as unknown[]).entries()) validateOp(o, `${path}.failure[${i}]`, depth + 1);
      return;
    }
    default:
      throw new InvalidCommandError(`${path}.op must be put, delete, deleteRange, txn, leaseGrant, leaseRevoke or leaseExpire`);
  }
}

function validateLeaseOp(value: Record<string, unknown>, path: string): void {
  if (value.op === 'leaseGrant') {
    const ttl = value.ttlMs;
    if (!isIndex(ttl) || ttl < LEASE_LIMITS.minTtlMs || ttl > LEASE_LIMITS.maxTtlMs) {
      throw new InvalidCommandError(`${path}.ttlMs must be an integer in ${LEASE_LIMITS.minTtlMs}..${LEASE_LIMITS.maxTtlMs} ms, got ${String(ttl)}`);
    }
  } else if (value.op === 'leaseRevoke') {
    if (!isIndex(value.id) || value.id === 0) throw new InvalidCommandError(`${path}.id must be a positive lease id`);
  } else {
    const ids = value.ids;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > LEASE_LIMITS.maxExpirePerCommand) {
      throw new InvalidCommandError(`${path}.ids must list 1..${LEASE_LIMITS.maxExpirePerCommand} lease ids`);
    }
    for (const id of ids) if (!isIndex(id) || id === 0) throw new InvalidCommandError(`${path}.ids must hold positive lease ids`);
  }
}

function validateCompare(value: unknown, path: string): asserts value is Compare {
  if (!isRecord(value)) throw new InvalidCommandError(`${path} must be a map`);
  bytesField(value, 'key', path, false);
  const { target, result } = value;
  if (result !== 'eq' && result !== 'neq' && result !== 'lt' && result !== 'gt') {
    throw new InvalidCommandError(`${path}.result must be eq, neq, lt or gt`);
  }
  if (target === 'value') {
    if (result !== 'eq' && result !== 'neq') throw new InvalidCommandError(`${path}: a value compare supports only eq and neq`);
    bytesField(value, 'value', path, true);
  } else if (target === 'version' || target === 'modIndex') {
    if (!isIndex(value.number)) throw new InvalidCommandError(`${path}.number must be a non-negative integer`);
  } else {
    throw new InvalidCommandError(`${path}.target must be value, version or modIndex`);
  }
}
