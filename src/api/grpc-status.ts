// The ONE place where quorumkv errors become gRPC statuses (server side) and back (SDK side).
// A status carries the error's name in trailing metadata `quorumkv-error` and each typed field as
// `quorumkv-<field>`, so the SDK rebuilds the very class the node threw, with its fields. One table
// row per error class serves both directions.
import { Metadata, status } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import {
  ConfChangeRejectedError,
  DeadlineExceededError,
  InvalidArgumentError,
  LeaseNotFoundError,
  NotLeaderError,
  OverloadedError,
  PermissionDeniedError,
  ProposalDroppedError,
  ReceiptTooOldError,
  RemoteError,
  ReplicaCorruptedError,
  RequestCancelledError,
  ShuttingDownError,
  StaleReadError,
  StaleSequenceError,
  UnauthenticatedError,
  WatchCompactedError,
} from './errors.js';

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

/** Reads the typed fields of a received status. */
interface Fields {
  text(key: string): string;
  num(key: string): number;
}

interface ErrorRow<E extends Error> {
  type: abstract new (...args: never[]) => E;
  code: status;
  /** The typed fields sent as `quorumkv-<key>` metadata. */
  fields(e: E): Record<string, string | number>;
  /** Rebuilds the error from the fields (the message is then replaced by the node's). */
  rebuild(f: Fields): E;
}

function row<E extends Error>(r: ErrorRow<E>): ErrorRow<Error> {
  return r as unknown as ErrorRow<Error>;
}

/** Order matters only for subclasses (none today): the first row whose type matches wins. */
const ERROR_TABLE: readonly ErrorRow<Error>[] = [
  row({
    type: NotLeaderError,
    code: status.FAILED_PRECONDITION,
    fields: (e) => ({ 'node-id': e.nodeId, 'leader-id': e.leaderId, 'leader-address': e.leaderAddress }),
    rebuild: (f) => new NotLeaderError(f.text('node-id'), f.text('leader-id'), f.text('leader-address')),
  }),
  row({
    type: InvalidArgumentError,
    code: status.INVALID_ARGUMENT,
    fields: (e) => ({ field: e.field }),
    rebuild: (f) => new InvalidArgumentError(f.text('field'), ''),
  }),
  row({
    type: DeadlineExceededError,
    code: status.DEADLINE_EXCEEDED,
    fields: (e) => ({ 'deadline-ms': e.deadlineMs }),
    rebuild: (f) => new DeadlineExceededError(f.num('deadline-ms'), 'request'),
  }),
  row({
    type: OverloadedError,
    code: status.RESOURCE_EXHAUSTED,
    fields: (e) => ({ queue: e.queue, limit: e.limit }),
    rebuild: (f) => new OverloadedError(f.text('queue'), f.num('limit')),
  }),
  row({
    type: StaleReadError,
    code: status.FAILED_PRECONDITION,
    fields: (e) => ({ 'node-id': e.nodeId, 'lag-ms': e.lagMs, 'max-lag-ms': e.maxLagMs }),
    rebuild: (f) => new StaleReadError(f.text('node-id'), f.num('lag-ms'), f.num('max-lag-ms')),
  }),
  row({
    type: ShuttingDownError,
    code: status.UNAVAILABLE,
    fields: (e) => ({ 'node-id': e.nodeId }),
    rebuild: (f) => new ShuttingDownError(f.text('node-id')),
  }),
  row({
    type: StaleSequenceError,
    code: status.ABORTED,
    fields: (e) => ({ 'client-id': e.clientId, seq: e.seq }),
    rebuild: (f) => new StaleSequenceError(f.text('client-id'), f.num('seq')),
  }),
  row({
    type: ReceiptTooOldError,
    code: status.OUT_OF_RANGE,
    fields: (e) => ({ term: e.term, index: e.index, 'snapshot-index': e.snapshotIndex }),
    rebuild: (f) => new ReceiptTooOldError(f.num('term'), f.num('index'), f.num('snapshot-index')),
  }),
  row({
    type: ProposalDroppedError,
    code: status.UNAVAILABLE,
    fields: (e) => ({ reason: e.reason }),
    rebuild: (f) => new ProposalDroppedError(f.text('reason')),
  }),
  row({
    type: ConfChangeRejectedError,
    code: status.FAILED_PRECONDITION,
    fields: (e) => ({ reason: e.reason }),
    rebuild: (f) => new ConfChangeRejectedError(f.text('reason')),
  }),
  row({
    type: UnauthenticatedError,
    code: status.UNAUTHENTICATED,
    fields: (e) => ({ reason: e.reason }),
    rebuild: (f) => new UnauthenticatedError(f.text('reason')),
  }),
  row({
    type: PermissionDeniedError,
    code: status.PERMISSION_DENIED,
    fields: (e) => ({ user: e.user, action: e.action }),
    rebuild: (f) => new PermissionDeniedError(f.text('user'), f.text('action')),
  }),
  row({
    type: RequestCancelledError,
    code: status.CANCELLED,
    fields: () => ({}),
    rebuild: () => new RequestCancelledError(),
  }),
  row({
    type: ReplicaCorruptedError,
    code: status.DATA_LOSS,
    fields: (e) => ({ 'node-id': e.nodeId }),
    rebuild: (f) => new ReplicaCorruptedError(f.text('node-id'), ''),
  }),
  row({
    type: LeaseNotFoundError,
    code: status.NOT_FOUND,
    fields: (e) => ({ 'lease-id': e.leaseId }),
    rebuild: (f) => new LeaseNotFoundError(f.num('lease-id')),
  }),
  row({
    type: WatchCompactedError,
    code: status.OUT_OF_RANGE,
    fields: (e) => ({ 'requested-index': e.requestedIndex, 'oldest-index': e.oldestIndex }),
    rebuild: (f) => new WatchCompactedError(f.num('requested-index'), f.num('oldest-index')),
  }),
];

const ROW_BY_NAME = new Map<string, ErrorRow<Error>>(ERROR_TABLE.map((r) => [(r.type as unknown as { name: string }).name, r]));

function statusWith(code: status, name: string, message: string, fields: Record<string, string | number>): GrpcStatus {
  const metadata = new Metadata();
  metadata.set(ERROR_NAME_KEY, name);
  // Values are URI-encoded: metadata values must be printable ASCII, ids and reasons may not be.
  for (const [k, v] of Object.entries(fields)) metadata.set(FIELD_PREFIX + k, encodeURIComponent(String(v)));
  return { code, details: message, metadata };
}

/**
 * Server side: the status a failed request answers with. Unknown errors become INTERNAL (their
 * message kept, their stack not sent) — the caller should log them, they are bugs.
 */
export function errorToStatus(err: unknown): GrpcStatus {
  for (const r of ERROR_TABLE) {
    if (err instanceof r.type) return statusWith(r.code, err.name, err.message, r.fields(err));
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return statusWith(status.INTERNAL, e.name || 'Error', `internal error in quorumkv node: ${e.message}`, {});
}

function fieldsOf(md: Metadata | undefined): Fields {
  const text = (key: string): string => {
    const raw = md?.get(FIELD_PREFIX + key)[0];
    if (raw === undefined) return '';
    const s = typeof raw === 'string' ? raw : raw.toString('utf8');
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const num = (key: string): number => {
    const n = Number(text(key));
    return Number.isFinite(n) ? n : 0;
  };
  return { text, num };
}

/** The node's error name from a failed call's trailers ('' when the status did not come from a node). */
export function remoteErrorName(err: StatusLike): string {
  const raw = err.metadata?.get(ERROR_NAME_KEY)[0];
  return raw === undefined ? '' : typeof raw === 'string' ? raw : raw.toString('utf8');
}

/**
 * SDK side: rebuild the typed error a node sent. Statuses that did not come from a quorumkv node
 * (connection failures, grpc's own deadline, …) become RemoteError with their gRPC code, except a
 * bare DEADLINE_EXCEEDED, which becomes DeadlineExceededError(deadlineMs).
 */
export function statusToError(err: StatusLike, deadlineMs = 0): Error {
  const details = err.details || err.message || '';
  const code = typeof err.code === 'number' ? err.code : status.UNKNOWN;
  const name = remoteErrorName(err);
  if (name === '') {
    if (code === status.DEADLINE_EXCEEDED) return new DeadlineExceededError(deadlineMs, 'request');
    return new RemoteError(code, '', details || `gRPC status ${status[code] ?? code}`);
  }
  const r = ROW_BY_NAME.get(name);
  if (!r) return new RemoteError(code, name, details);
  const e = r.rebuild(fieldsOf(err.metadata));
  if (details) e.message = details;
  return e;
}
