// The ONE place where node errors become gRPC statuses (server side) and back (SDK side).
// A status carries the error's name in trailing metadata `quorumkv-error` and each typed field as
// `quorumkv-<field>`, so the SDK rebuilds the very class the node threw, with its fields.
import { Metadata, status } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import {
  DeadlineExceededError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  ReceiptTooOldError,
  ShuttingDownError,
  StaleReadError,
  StaleSequenceError,
} from '../runtime/errors.js';
import {
  ConfChangeRejectedError,
  NotLeaderError as CoreNotLeaderError,
  ProposalDroppedError,
} from '../raft/errors.js';
import { RemoteError } from './errors.js';

export const ERROR_NAME_KEY = 'quorumkv-error';
const FIELD_PREFIX = 'quorumkv-';

export type GrpcStatus = Pick<StatusObject, 'code' | 'details' | 'metadata'>;

/** Anything that looks like a failed grpc-js call (ServiceError) or a status object. */
export interface StatusLike {
  code?: number;
  details?: string;
  message?: string;
  metadata?: Metadata;
}

function statusWith(code: status, err: Error, fields: Record<string, string | number>): GrpcStatus {
  const metadata = new Metadata();
  metadata.set(ERROR_NAME_KEY, err.name);
  // Values are URI-encoded: metadata values must be printable ASCII, ids and reasons may not be.
  for (const [k, v] of Object.entries(fields)) metadata.set(FIELD_PREFIX + k, encodeURIComponent(String(v)));
  return { code, details: err.message, metadata };
}

/**
 * Server side: the status a failed request answers with. Unknown errors become INTERNAL (their
 * message kept, their stack not sent) — the caller should log them, they are bugs.
 */
export function errorToStatus(err: unknown): GrpcStatus {
  if (err instanceof NotLeaderError) {
    return statusWith(status.FAILED_PRECONDITION, err, {
      'node-id': err.nodeId,
      'leader-id': err.leaderId,
      'leader-address': err.leaderAddress,
    });
  }
  if (err instanceof CoreNotLeaderError) {
    // The runtime should translate this (it knows addresses); if it leaks, the hint still helps.
    const e = new NotLeaderError(err.nodeId, err.leaderHint, '');
    return statusWith(status.FAILED_PRECONDITION, e, { 'node-id': e.nodeId, 'leader-id': e.leaderId, 'leader-address': '' });
  }
  if (err instanceof InvalidArgumentError) return statusWith(status.INVALID_ARGUMENT, err, { field: err.field });
  if (err instanceof DeadlineExceededError) {
    return statusWith(status.DEADLINE_EXCEEDED, err, { 'deadline-ms': err.deadlineMs });
  }
  if (err instanceof OverloadedError) {
    return statusWith(status.RESOURCE_EXHAUSTED, err, { queue: err.queue, limit: err.limit });
  }
  if (err instanceof StaleReadError) {
    return statusWith(status.FAILED_PRECONDITION, err, {
      'node-id': err.nodeId,
      'lag-ms': err.lagMs,
      'max-lag-ms': err.maxLagMs,
    });
  }
  if (err instanceof ShuttingDownError) return statusWith(status.UNAVAILABLE, err, { 'node-id': err.nodeId });
  if (err instanceof StaleSequenceError) {
    return statusWith(status.ABORTED, err, { 'client-id': err.clientId, seq: err.seq });
  }
  if (err instanceof ReceiptTooOldError) {
    return statusWith(status.OUT_OF_RANGE, err, { term: err.term, index: err.index, 'snapshot-index': err.snapshotIndex });
  }
  if (err instanceof ProposalDroppedError) return statusWith(status.UNAVAILABLE, err, { reason: err.reason });
  if (err instanceof ConfChangeRejectedError) {
    return statusWith(status.FAILED_PRECONDITION, err, { reason: err.reason });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const internal = new Error(`internal error in quorumkv node: ${e.message}`);
  internal.name = e.name || 'Error';
  return statusWith(status.INTERNAL, internal, {});
}

function field(md: Metadata | undefined, key: string): string {
  const raw = md?.get(FIELD_PREFIX + key)[0];
  if (raw === undefined) return '';
  const s = typeof raw === 'string' ? raw : raw.toString('utf8');
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function numField(md: Metadata | undefined, key: string): number {
  const n = Number(field(md, key));
  return Number.isFinite(n) ? n : 0;
}

/** The node's error name from a failed call's trailers ('' when the status did not come from a node). */
export function remoteErrorName(err: StatusLike): string {
  const raw = err.metadata?.get(ERROR_NAME_KEY)[0];
  return raw === undefined ? '' : typeof raw === 'string' ? raw : raw.toString('utf8');
}

function withMessage<E extends Error>(e: E, message: string | undefined): E {
  if (message) e.message = message;
  return e;
}

/**
 * SDK side: rebuild the typed error a node sent. Statuses that did not come from a quorumkv node
 * (connection failures, grpc's own deadline, …) become RemoteError with their gRPC code, except a
 * bare DEADLINE_EXCEEDED, which becomes DeadlineExceededError(deadlineMs).
 */
export function statusToError(err: StatusLike, deadlineMs = 0): Error {
  const md = err.metadata;
  const details = err.details || err.message || '';
  const code = typeof err.code === 'number' ? err.code : status.UNKNOWN;
  switch (remoteErrorName(err)) {
    case 'NotLeaderError':
      return withMessage(
        new NotLeaderError(field(md, 'node-id'), field(md, 'leader-id'), field(md, 'leader-address')),
        details,
      );
    case 'InvalidArgumentError':
      return withMessage(new InvalidArgumentError(field(md, 'field'), details), details);
    case 'DeadlineExceededError':
      return withMessage(new DeadlineExceededError(numField(md, 'deadline-ms'), 'request'), details);
    case 'OverloadedError':
      return withMessage(new OverloadedError(field(md, 'queue'), numField(md, 'limit')), details);
    case 'StaleReadError':
      return withMessage(
        new StaleReadError(field(md, 'node-id'), numField(md, 'lag-ms'), numField(md, 'max-lag-ms')),
        details,
      );
    case 'ShuttingDownError':
      return withMessage(new ShuttingDownError(field(md, 'node-id')), details);
    case 'StaleSequenceError':
      return withMessage(new StaleSequenceError(field(md, 'client-id'), numField(md, 'seq')), details);
    case 'ReceiptTooOldError':
      return withMessage(new ReceiptTooOldError(numField(md, 'term'), numField(md, 'index'), numField(md, 'snapshot-index')), details);
    case 'ProposalDroppedError':
      return withMessage(new ProposalDroppedError(field(md, 'reason')), details);
    case 'ConfChangeRejectedError':
      return withMessage(new ConfChangeRejectedError(field(md, 'reason')), details);
    case '':
      if (code === status.DEADLINE_EXCEEDED) return new DeadlineExceededError(deadlineMs, 'request');
      return new RemoteError(code, '', details || `gRPC status ${status[code] ?? code}`);
    default:
      return new RemoteError(code, remoteErrorName(err), details);
  }
}
