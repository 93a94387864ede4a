// The client-facing gRPC server (service quorumkv.v1.KV). It is the edge: every request is decoded
// and validated here, and only a well-formed, in-limits request reaches the KvBackend. Anything
// else gets INVALID_ARGUMENT and changes nothing; errors are mapped in src/api/grpc-status.ts.
import * as grpc from '@grpc/grpc-js';
import type { KvBackend, Durability, ReadOptions, WriteAck, NodeStatus } from '../runtime/kv-backend.js';
import { prefixEnd, type Command, type Compare, type OpResult, type Op, type KeyValue } from '../api/command.js';
import { InvalidArgumentError, OverloadedError, StaleSequenceError } from '../api/errors.js';
import { errorToStatus } from '../api/grpc-status.js';
import { DEFAULT_KV_LIMITS, type KvServiceLimits } from './kv-limits.js';
import {
  COMPARE_RESULT_FROM_WIRE,
  COMPARE_TARGET_FROM_WIRE,
  CONSISTENCY_FROM_WIRE,
  DURABILITY_FROM_WIRE,
  KV_METHODS,
  KV_SERVICE_NAME,
  OUTCOME_TO_WIRE,
  kvServiceDefinition,
} from '../api/kv-proto.js';
import type { KvMethodDefinition } from '../api/kv-proto.js';
import type {
  KvMethodName,
  WireAddMemberRequest,
  WireCompare,
  WireDeleteRangeRequest,
  WireDeleteRequest,
  WireGetRequest,
  WireKeyValue,
  WireMembershipResponse,
  WireOpResult,
  WirePutRequest,
  WireRange,
  WireReadOptions,
  WireRemoveMemberRequest,
  WireScanRequest,
  WireScanResponse,
  WireSession,
  WireStatusResponse,
  WireTransferLeadershipRequest,
  WireTxnOp,
  WireTxnRequest,
  WireWaitForRequest,
  WireWriteResponse,
} from '../api/kv-proto.js';

export { DEFAULT_KV_LIMITS, type KvServiceLimits } from './kv-limits.js';

/** pino-compatible; only unexpected (internal) errors are logged — they are bugs. */
export interface KvServiceLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

export interface KvServerOptions {
  backend: KvBackend;
  /** host:port to listen on; port 0 picks a free port (see address()). */
  address: string;
  limits?: Partial<KvServiceLimits>;
  logger?: KvServiceLogger;
  credentials?: grpc.ServerCredentials;
}

export interface KvServer {
  /** host:port actually bound. */
  address(): string;
  /** Requests currently being served. */
  inFlight(): number;
  /** Stop accepting calls; in-flight calls get up to graceMs to finish, then are cancelled. */
  close(graceMs?: number): Promise<void>;
}

const EMPTY = new Uint8Array(0);

function checkLimits(l: KvServiceLimits): void {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`KvServiceLimits.${k} must be a positive integer, got ${v}`);
  }
}

/** Start the KV gRPC server; resolves once it listens. */
export async function startKvServer(options: KvServerOptions): Promise<KvServer> {
  const limits: KvServiceLimits = { ...DEFAULT_KV_LIMITS, ...options.limits };
  checkLimits(limits);
  const handlers = makeHandlers(options.backend, limits);
  const wire = kvServiceDefinition();
  let inFlight = 0;

  // Requests are deserialized inside the handler (the service definition passes raw bytes through)
  // so that undecodable input answers INVALID_ARGUMENT instead of grpc-js's generic INTERNAL.
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  /**
   * One request of `method`, however it arrived (a unary call or an entry on the Call stream):
   * decode, bound the in-flight count, validate and run it, and map any error to a status — the
   * same path for both transports.
   */
  const run = async (method: KvMethodName, requestBytes: Buffer, deadline: number): Promise<{ response: object } | { status: ReturnType<typeof errorToStatus> }> => {
    if (inFlight >= limits.maxInFlight) return { status: errorToStatus(new OverloadedError('client requests', limits.maxInFlight)) };
    const m = wire[method];
    let request: unknown;
    try {
      request = m.requestDeserialize(requestBytes);
    } catch (err) {
      return { status: errorToStatus(new InvalidArgumentError('request', `cannot decode ${method}Request: ${(err as Error).message}`)) };
    }
    const handle = handlers[method] as (req: unknown, deadline: number) => Promise<object>;
    inFlight++;
    try {
      // A synchronous throw (validation) becomes a rejection like any other.
      return { response: await Promise.resolve().then(() => handle(request, deadline)) };
    } catch (err) {
      const st = errorToStatus(err);
      if (st.code === grpc.status.INTERNAL) {
        options.logger?.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'kv request failed unexpectedly');
      }
      return { status: st };
    } finally {
      inFlight--;
    }
  };

  for (const method of KV_METHODS) {
    const m = wire[method];
    definition[method] = { ...m, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
    implementation[method] = (call: grpc.ServerUnaryCall<Buffer, object>, callback: grpc.sendUnaryData<object>) => {
      void run(method, call.request, backendDeadline(call.getDeadline(), limits)).then((outcome) =>
        'response' in outcome ? callback(null, outcome.response) : callback(outcome.status),
      );
    };
  }

  const callStream = (wire as unknown as Record<string, KvMethodDefinition | undefined>)['Call'];
  if (!callStream) throw new Error(`${KV_SERVICE_NAME} in proto/kv.proto lacks Call`);
  definition['Call'] = { ...callStream, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['Call'] = (call: grpc.ServerDuplexStream<Buffer, object>) =>
    serveCallStream(call, (buf) => callStream.requestDeserialize(buf), (method, payload, timeoutMs) => {
      const deadline = Date.now() + Math.min(timeoutMs > 0 ? timeoutMs : limits.defaultDeadlineMs, limits.maxDeadlineMs);
      return run(method, payload, deadline);
    }, (method, response) => wire[method].responseSerialize(response) as Buffer);

  // PingStream is not in KV_METHODS (the SDK's method table, all unary): it is registered here,
  // with the same raw-bytes request passthrough so a bad message answers INVALID_ARGUMENT.
  const pingStream = (wire as unknown as Record<string, KvMethodDefinition | undefined>)['PingStream'];
  if (!pingStream) throw new Error(`${KV_SERVICE_NAME} in proto/kv.proto lacks PingStream`);
  definition['PingStream'] = { ...pingStream, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['PingStream'] = (call: grpc.ServerDuplexStream<Buffer, object>) => servePingStream(call, (buf) => pingStream.requestDeserialize(buf));

  const server = new grpc.Server({
    'grpc.max_receive_message_length': limits.maxRequestBytes,
    'grpc.max_send_message_length': -1,
  });
  server.addService(definition as grpc.ServiceDefinition, implementation);
  const credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, credentials, (err, p) => (err ? reject(new Error(`cannot listen on ${options.address} for ${KV_SERVICE_NAME}: ${err.message}`)) : resolve(p)));
  });
  const host = options.address.slice(0, options.address.lastIndexOf(':'));
  const bound = `${host}:${port}`;

  return {
    address: () => bound,
    inFlight: () => inFlight,
    close: (graceMs = 2_000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/**
 * Write an answer; when the client stops reading, stop reading its requests until it drains, so a
 * client cannot make the server buffer answers without limit.
 */
function writeOrPause(call: grpc.ServerDuplexStream<Buffer, object>, message: object, done: () => boolean): void {
  if (call.write(message)) return;
  call.pause();
  call.once('drain', () => {
    if (!done()) call.resume();
  });
}

/**
 * Answers every PingStream request on the same stream with its id, in arrival order. A request
 * that does not decode (or carries an id that would not round-trip) ends the stream with
 * INVALID_ARGUMENT; the answers already written stay valid. When the client stops reading,
 * reading its requests pauses too, so a client that only writes cannot grow the server's buffers.
 */
export function servePingStream(call: grpc.ServerDuplexStream<Buffer, object>, decode: (buf: Buffer) => unknown): void {
  let done = false;
  const finish = (): void => {
    done = true;
    call.removeAllListeners('data');
  };
  call.on('cancelled', finish);
  call.on('data', (buf: Buffer) => {
    if (done) return;
    let id: number;
    try {
      const req = decode(buf) as { id?: unknown } | null;
      id = uintField(req?.id, 'id');
    } catch (err) {
      finish();
      const e = err instanceof InvalidArgumentError ? err : new InvalidArgumentError('request', `cannot decode PingRequest: ${(err as Error).message}`);
      call.emit('error', errorToStatus(e));
      return;
    }
    writeOrPause(call, { id }, () => done);
  });
  call.on('end', () => {
    if (done) return;
    finish();
    call.end();
  });
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(KV_METHODS);

/**
 * The Call stream: many unary-method requests over one stream, answered in completion order and
 * matched by id. A malformed entry or an unknown method answers that id alone (INVALID_ARGUMENT /
 * UNIMPLEMENTED); only undecodable framing ends the stream.
 */
export function serveCallStream(
  call: grpc.ServerDuplexStream<Buffer, object>,
  decode: (buf: Buffer) => unknown,
  run: (method: KvMethodName, payload: Buffer, timeoutMs: number) => Promise<{ response: object } | { status: ReturnType<typeof errorToStatus> }>,
  serialize: (method: KvMethodName, response: object) => Buffer,
): void {
  let done = false;
  let outstanding = 0;
  let ended = false;
  const finish = (): void => {
    done = true;
    call.removeAllListeners('data');
  };
  const answer = (message: object): void => {
    if (!done) writeOrPause(call, message, () => done);
  };
  const maybeEnd = (): void => {
    if (ended && outstanding === 0 && !done) {
      finish();
      call.end();
    }
  };
  call.on('cancelled', finish);
  call.on('data', (buf: Buffer) => {
    if (done) return;
    let entry: { id?: unknown; method?: unknown; payload?: unknown; timeoutMs?: unknown } | null;
    let id: number;
    try {
      entry = decode(buf) as typeof entry;
      id = uintField(entry?.id, 'id');
    } catch (err) {
      finish();
      const e = err instanceof InvalidArgumentError ? err : new InvalidArgumentError('request', `cannot decode CallRequest: ${(err as Error).message}`);
      call.emit('error', errorToStatus(e));
      return;
    }
    const method = entry?.method;
    if (typeof method !== 'string' || !KNOWN_METHODS.has(method)) {
      answer({ id, code: grpc.status.UNIMPLEMENTED, details: `unknown method ${String(method)}`, metadata: {} });
      return;
    }
    const payload = entry?.payload instanceof Uint8Array ? Buffer.from(entry.payload) : Buffer.alloc(0);
    const timeoutMs = typeof entry?.timeoutMs === 'number' ? entry.timeoutMs : 0;
    outstanding++;
    void run(method as KvMethodName, payload, timeoutMs)
      .then((outcome) => {
        if ('response' in outcome) {
          answer({ id, code: 0, payload: serialize(method as KvMethodName, outcome.response), details: '', metadata: {} });
        } else {
          const metadata: Record<string, string> = {};
          for (const [key, value] of Object.entries(outcome.status.metadata?.getMap() ?? {})) metadata[key] = String(value);
          answer({ id, code: outcome.status.code ?? grpc.status.UNKNOWN, details: outcome.status.details ?? '', metadata });
        }
      })
      .finally(() => {
        outstanding--;
        maybeEnd();
      });
  });
  call.on('end', () => {
    ended = true;
    maybeEnd();
  });
}

function backendDeadline(callDeadline: grpc.Deadline, limits: KvServiceLimits): number {
  const now = Date.now();
  const d = callDeadline instanceof Date ? callDeadline.getTime() : callDeadline;
  if (!Number.isFinite(d)) return now + limits.defaultDeadlineMs;
  return Math.min(d, now + limits.maxDeadlineMs);
}

// ---------------------------------------------------------------------------------------------
// Validation: every function throws InvalidArgumentError naming the offending field.

function bytesField(v: unknown, field: string): Uint8Array {
  if (v === undefined || v === null) return EMPTY;
  if (!(v instanceof Uint8Array)) throw new InvalidArgumentError(field, 'must be bytes');
  return v;
}

function keyField(v: unknown, field: string, l: KvServiceLimits): Uint8Array {
  const key = bytesField(v, field);
  if (key.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (key.length > l.maxKeyBytes) throw new InvalidArgumentError(field, `is ${key.length} bytes, more than the limit of ${l.maxKeyBytes}`);
  return key;
}

function boundField(v: unknown, field: string, l: KvServiceLimits): Uint8Array {
  const b = bytesField(v, field);
  if (b.length > l.maxKeyBytes) throw new InvalidArgumentError(field, `is ${b.length} bytes, more than the key limit of ${l.maxKeyBytes}`);
  return b;
}

function valueField(v: unknown, field: string, l: KvServiceLimits): Uint8Array {
  const value = bytesField(v, field);
  if (value.length > l.maxValueBytes) {
    throw new InvalidArgumentError(field, `is ${value.length} bytes, more than the limit of ${l.maxValueBytes}`);
  }
  return value;
}

function uintField(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(field, `must be a non-negative integer below 2^53, got ${String(v)}`);
  }
  return v;
}

function enumField<T>(v: unknown, table: Readonly<Record<string, T>>, field: string): T {
  const known = typeof v === 'string' ? table[v] : undefined;
  if (known === undefined) {
    throw new InvalidArgumentError(field, `unknown value ${String(v)} (expected one of ${Object.keys(table).join(', ')})`);
  }
  return known;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** [start, end) from either a prefix or explicit bounds. */
function rangeField(r: Partial<WireRange>, field: string, l: KvServiceLimits): { start: Uint8Array; end: Uint8Array } {
  const prefix = boundField(r.prefix, `${field}prefix`, l);
  const start = boundField(r.start, `${field}start`, l);
  const end = boundField(r.end, `${field}end`, l);
  if (prefix.length > 0) {
    if (start.length > 0 || end.length > 0) {
      throw new InvalidArgumentError(`${field}prefix`, 'give either a prefix or start/end, not both');
    }
    return { start: prefix, end: prefixEnd(prefix) };
  }
  if (end.length > 0 && compareBytes(start, end) >= 0) {
    throw new InvalidArgumentError(`${field}end`, 'must be greater than start (or empty for no upper bound)');
  }
  return { start, end };
}

function sessionFields(r: Partial<WireSession>, l: KvServiceLimits): Omit<Command, 'op'> & { durability: Durability } {
  const durability = enumField(r.durability ?? 'DURABILITY_UNSPECIFIED', DURABILITY_FROM_WIRE, 'durability');
  const clientId = r.clientId ?? '';
  if (typeof clientId !== 'string') throw new InvalidArgumentError('clientId', 'must be a string');
  if (Buffer.byteLength(clientId) > l.maxClientIdBytes) {
    throw new InvalidArgumentError('clientId', `is longer than ${l.maxClientIdBytes} bytes`);
  }
  const seq = uintField(r.seq, 'seq');
  const firstUnacked = uintField(r.firstUnacked, 'firstUnacked');
  if (clientId === '') return { clientId, seq: 0, firstUnacked: 0, durability };
  if (seq === 0) throw new InvalidArgumentError('seq', 'must be >= 1 when clientId is set');
  if (firstUnacked > seq) throw new InvalidArgumentError('firstUnacked', `(${firstUnacked}) must not exceed seq (${seq})`);
  return { clientId, seq, firstUnacked, durability };
}

function readOptions(r: Partial<WireReadOptions>, deadline: number): ReadOptions {
  const options: ReadOptions = {
    consistency: enumField(r.consistency ?? 'CONSISTENCY_UNSPECIFIED', CONSISTENCY_FROM_WIRE, 'consistency'),
    deadline,
  };
  const minIndex = uintField(r.minIndex, 'minIndex');
  if (minIndex > 0) options.minIndex = minIndex;
  if (r.maxLagMs !== undefined && r.maxLagMs !== null) options.maxLagMs = uintField(r.maxLagMs, 'maxLagMs');
  return options;
}

function txnOp(o: WireTxnOp | null | undefined, field: string, l: KvServiceLimits): Op {
  if (!o || typeof o !== 'object') throw new InvalidArgumentError(field, 'must be an operation');
  switch (o.op) {
    case 'put':
      return { op: 'put', key: keyField(o.put?.key, `${field}.put.key`, l), value: valueField(o.put?.value, `${field}.put.value`, l) };
    case 'delete':
      return { op: 'delete', key: keyField(o.delete?.key, `${field}.delete.key`, l) };
    case 'deleteRange': {
      const range = rangeField(o.deleteRange ?? {}, `${field}.deleteRange.`, l);
      if (range.start.length === 0) {
        throw new InvalidArgumentError(`${field}.deleteRange.prefix`, 'a prefix or a non-empty start is required');
      }
      return { op: 'deleteRange', ...range };
    }
    default:
      throw new InvalidArgumentError(field, 'no operation set (put, delete or deleteRange)');
  }
}

function compareField(c: WireCompare | null | undefined, field: string, l: KvServiceLimits): Compare {
  if (!c || typeof c !== 'object') throw new InvalidArgumentError(field, 'must be a compare');
  const key = keyField(c.key, `${field}.key`, l);
  const target = enumField(c.target, COMPARE_TARGET_FROM_WIRE, `${field}.target`);
  const result = enumField(c.result, COMPARE_RESULT_FROM_WIRE, `${field}.result`);
  if (target === 'value') {
    if (result !== 'eq' && result !== 'neq') throw new InvalidArgumentError(`${field}.result`, 'a value compare supports only EQ and NEQ');
    return { key, target, result, value: valueField(c.value, `${field}.value`, l) };
  }
  return { key, target, result, number: uintField(c.number, `${field}.number`) };
}

const MAX_NODE_ID_LENGTH = 256;

function nodeIdField(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(field, 'must name the node id');
  if (v.length > MAX_NODE_ID_LENGTH) throw new InvalidArgumentError(field, `is longer than ${MAX_NODE_ID_LENGTH} characters`);
  if (!/^[^\s\p{Cc}]+$/u.test(v)) throw new InvalidArgumentError(field, `must not contain spaces or control characters, got ${JSON.stringify(v)}`);
  return v;
}

/** host:port with a port in 1..65535; hosts are names, IPv4, or bracketed IPv6 (as in the config file). */
function addressField(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(field, 'must be a host:port string');
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError(field, `${JSON.stringify(v)} is not host:port with a port in 1..65535 (e.g. 127.0.0.1:7001)`);
  return v;
}

function list<T>(v: unknown, field: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(field, 'must be a list');
  return v as T[];
}

// ---------------------------------------------------------------------------------------------
// Responses.

function opResultToWire(r: OpResult): WireOpResult {
  switch (r.op) {
    case 'put':
      return { put: { prevExisted: r.prevExisted } };
    case 'delete':
      return { delete: { deleted: r.deleted } };
    case 'deleteRange':
      return { deleteRange: { deleted: r.deleted } };
    case 'txn':
      return { txn: { succeeded: r.succeeded, results: r.results.map(opResultToWire) } };
    default:
      throw new Error(`backend returned an unknown op result ${JSON.stringify((r as { op?: unknown }).op)}`);
  }
}

function writeResponse(ack: WriteAck, command: Command): WireWriteResponse {
  const r = ack.result?.result;
  // The runtime normally throws these itself; never encode a non-applied command as a success.
  if (r?.op === 'error') {
    if (r.name === 'StaleSequenceError') throw new StaleSequenceError(command.clientId, command.seq);
    throw new InvalidArgumentError('command', r.message);
  }
  return {
    term: ack.term,
    index: ack.index,
    applied: ack.result !== undefined,
    result: ack.result ? opResultToWire(ack.result.result) : null,
    appliedAt: ack.result?.index ?? 0,
    duplicate: ack.result?.duplicate ?? false,
  };
}

function kvToWire(kv: KeyValue): WireKeyValue {
  return { key: kv.key, value: kv.value, version: kv.version, createIndex: kv.createIndex, modIndex: kv.modIndex };
}

function statusToWire(s: NodeStatus): WireStatusResponse {
  return {
    id: s.id,
    clientAddress: s.clientAddress,
    role: s.role,
    term: s.term,
    leaderId: s.leaderId,
    leaderClientAddress: s.leaderClientAddress,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastIndex: s.lastIndex,
    members: s.members.map((m) => ({ id: m.id, clientAddress: m.clientAddress, voter: m.voter })),
    followers: (s.followers ?? []).map((f) => ({ id: f.id, match: f.match, lag: f.lag })),
  };
}

function membershipToWire(s: NodeStatus): WireMembershipResponse {
  return { members: statusToWire(s).members };
}

// ---------------------------------------------------------------------------------------------

type Handlers = { [M in KvMethodName]: (req: never, deadline: number) => Promise<object> };

function makeHandlers(backend: KvBackend, l: KvServiceLimits): Handlers {
  const write = async (session: ReturnType<typeof sessionFields>, op: Op, deadline: number) => {
    const { durability, ...rest } = session;
    const command: Command = { ...rest, op };
    return writeResponse(await backend.write({ command, durability, deadline }), command);
  };
  return {
    Put: async (r: WirePutRequest, deadline) => {
      const op: Op = { op: 'put', key: keyField(r.key, 'key', l), value: valueField(r.value, 'value', l) };
      return write(sessionFields(r, l), op, deadline);
    },
    Delete: async (r: WireDeleteRequest, deadline) => {
      const op: Op = { op: 'delete', key: keyField(r.key, 'key', l) };
      return write(sessionFields(r, l), op, deadline);
    },
    DeleteRange: async (r: WireDeleteRangeRequest, deadline) => {
      const range = rangeField(r, '', l);
      // An empty range spec would wipe the keyspace: make that explicit (start = "\0").
      if (range.start.length === 0) throw new InvalidArgumentError('prefix', 'a prefix or a non-empty start is required');
      return write(sessionFields(r, l), { op: 'deleteRange', ...range }, deadline);
    },
    Txn: async (r: WireTxnRequest, deadline) => {
      const compares = list<WireCompare>(r.compares, 'compares');
      const success = list<WireTxnOp>(r.success, 'success');
      const failure = list<WireTxnOp>(r.failure, 'failure');
      const total = compares.length + success.length + failure.length;
      if (total > l.maxTxnOps) throw new InvalidArgumentError('txn', `has ${total} compares and ops, more than the limit of ${l.maxTxnOps}`);
      const op: Op = {
        op: 'txn',
        compares: compares.map((c, i) => compareField(c, `compares[${i}]`, l)),
        success: success.map((o, i) => txnOp(o, `success[${i}]`, l)),
        failure: failure.map((o, i) => txnOp(o, `failure[${i}]`, l)),
      };
      return write(sessionFields(r, l), op, deadline);
    },
    Get: async (r: WireGetRequest, deadline) => {
      const key = keyField(r.key, 'key', l);
      const res = await backend.get(key, readOptions(r, deadline));
      return { found: res.kv !== undefined, kv: res.kv ? kvToWire(res.kv) : null, servedBy: res.nodeId, appliedIndex: res.appliedIndex };
    },
    Scan: async (r: WireScanRequest, deadline) => {
      let { start, end } = rangeField(r, '', l);
      const limit = uintField(r.limit, 'limit') || l.defaultScanLimit;
      if (limit > l.maxScanLimit) throw new InvalidArgumentError('limit', `${limit} is more than the maximum of ${l.maxScanLimit}`);
      const from = boundField(r.continueFrom, 'continueFrom', l);
      if (from.length > 0) {
        if (compareBytes(from, start) < 0 || (end.length > 0 && compareBytes(from, end) >= 0)) {
          throw new InvalidArgumentError('continueFrom', 'lies outside the requested range');
        }
        start = from;
      }
      const options = readOptions(r, deadline);
      const res = await backend.scan(start, end, limit, options);
      const more = res.continueFrom !== undefined && res.continueFrom.length > 0;
      const response: WireScanResponse = {
        items: res.items.map(kvToWire),
        continueFrom: more ? res.continueFrom! : EMPTY,
        more,
        servedBy: res.nodeId,
        appliedIndex: res.appliedIndex,
      };
      return response;
    },
    WaitFor: async (r: WireWaitForRequest, deadline) => {
      const term = uintField(r.term, 'term');
      const index = uintField(r.index, 'index');
      if (term === 0) throw new InvalidArgumentError('term', 'must be >= 1 (use the receipt of an async write)');
      if (index === 0) throw new InvalidArgumentError('index', 'must be >= 1 (use the receipt of an async write)');
      const outcome = await backend.waitFor(term, index, deadline);
      return { outcome: OUTCOME_TO_WIRE[outcome] };
    },
    Status: async () => statusToWire(await backend.status()),
    TransferLeadership: async (r: WireTransferLeadershipRequest, deadline) => {
      const to = r.to;
      if (typeof to !== 'string' || to.length === 0) throw new InvalidArgumentError('to', 'must name the target node id');
      if (to.length > 256) throw new InvalidArgumentError('to', 'is too long to be a node id');
      await backend.transferLeadership(to, deadline);
      return {};
    },
    AddMember: async (r: WireAddMemberRequest, deadline) => {
      const id = nodeIdField(r.id, 'id');
      if (r.learner !== undefined && r.learner !== null && typeof r.learner !== 'boolean') throw new InvalidArgumentError('learner', 'must be a boolean');
      const learner = r.learner === true;
      const raftAddress = r.raftAddress ?? '';
      const clientAddress = r.clientAddress ?? '';
      // Both empty = promote a learner by id (the leader knows its addresses); otherwise both are required.
      const promotion = !learner && raftAddress === '' && clientAddress === '';
      if (!promotion) {
        addressField(raftAddress, 'raftAddress');
        addressField(clientAddress, 'clientAddress');
      }
      await backend.addMember(id, raftAddress, clientAddress, { learner, deadline });
      return membershipToWire(await backend.status());
    },
    RemoveMember: async (r: WireRemoveMemberRequest, deadline) => {
      const id = nodeIdField(r.id, 'id');
      await backend.removeMember(id, { deadline });
      return membershipToWire(await backend.status());
    },
    // Echoes the id so that unary and streaming pings carry the same payload in the bench.
    Ping: async (r: { id?: unknown }) => ({ id: uintField(r.id, 'id') }),
  };
}
