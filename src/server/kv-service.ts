// The client-facing gRPC server (service quorumkv.v1.KV). It is the edge: every request is decoded
// and validated here, and only a well-formed, in-limits request reaches the KvBackend. Anything
// else gets INVALID_ARGUMENT and changes nothing; errors are mapped in src/api/grpc-status.ts.
//
// Bounds, each checked before the work it bounds (see kv-limits.ts for the numbers):
//   - requests started per event-loop turn: beyond it RESOURCE_EXHAUSTED at once, so that a burst
//     of thousands of calls cannot hold the event loop (and the Raft heartbeats) for long;
//   - HTTP/2 streams per connection (max_concurrent_streams), requests in flight per Call stream
//     (beyond it the stream stops being read), requests parked in the node (maxInFlight);
//   - bytes per request, per method, from the raw length before decoding; a Txn's op count from a
//     scan of its top-level fields before decoding;
//   - response bytes buffered for a Call stream whose client does not read: beyond the limit the
//     stream is ended (RESOURCE_EXHAUSTED) rather than buffered;
//   - a cancelled call (or a closed stream) frees its slot at once and aborts what it parked in the
//     runtime, so nothing waits for a client that has gone.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { KvBackend, Durability, ReadOptions, WriteAck, NodeStatus } from '../runtime/kv-backend.js';
import { LEASE_LIMITS, prefixEnd, type Command, type Compare, type OpResult, type Op, type KeyValue } from '../api/command.js';
import { InvalidArgumentError, OverloadedError, RequestCancelledError, StaleSequenceError, UnauthenticatedError } from '../api/errors.js';
import { errorToStatus, type GrpcStatus } from '../api/grpc-status.js';
import { ADMIN_METHODS, PUBLIC_METHODS, requireAdmin, requireKey, requireRange, requireSomeWrite, type Authenticator, type Principal } from './auth.js';
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
  watchMethodDefinition,
  snapshotMethodDefinition,
} from '../api/kv-proto.js';
import { serveWatch, WatchCounter, watchRange } from './watch-stream.js';
import { BackupCounter, serveSnapshot } from './snapshot-stream.js';
import type { KvMethodDefinition } from '../api/kv-proto.js';
import type {
  KvMethodName,
  WireAddMemberRequest,
  WireCompare,
  WireDeleteRangeRequest,
  WireDeleteRequest,
  WireGetRequest,
  WireKeyValue,
  WireLeaseGrantRequest,
  WireLeaseGrantResponse,
  WireLeaseListResponse,
  WireLeaseRevokeRequest,
  WireMembershipResponse,
  WireWatchRequest,
  WireSnapshotRequest,
  WireOpResult,
  WirePutRequest,
  WireRange,
  WireReadOptions,
  WireRemoveMemberRequest,
  WireScanRequest,
  WireScanResponse,
  WireSession,
  WireStatusRequest,
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
  /** Client authentication and authorization; absent = every client may do everything. */
  auth?: Authenticator;
  /** Called once per request with its method, gRPC status code (0 = OK) and seconds taken (metrics). */
  onRequest?: (method: KvMethodName, code: number, seconds: number) => void;
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
/** The longest a long-polling Status call waits for a newer leader (see StatusRequest.wait_ms). */
const MAX_STATUS_WAIT_MS = 1_000;

function checkLimits(l: KvServiceLimits): void {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`KvServiceLimits.${k} must be a positive integer, got ${v}`);
  }
}

type Outcome = { response: object } | { status: GrpcStatus };

/** What a request carries besides its bytes: who sent it, and a signal that fires when it is cancelled. */
export interface RequestContext {
  signal: AbortSignal;
  /** The authenticated caller; undefined when auth is off (or for public methods without credentials). */
  principal?: Principal;
}

/** Methods that may wait in the node (proposals, reads, receipts, membership): they hold an in-flight slot. */
const IMMEDIATE_METHODS: ReadonlySet<KvMethodName> = new Set<KvMethodName>(['Ping', 'Status']);

/** A status to shed load with, built once: shedding must cost far less than serving. */
function sheddingStatus(err: Error): () => GrpcStatus {
  const st = errorToStatus(err);
  return () => ({ code: st.code, details: st.details, metadata: st.metadata?.clone() });
}

/** Largest request accepted per method, from its raw length (before decoding). */
function requestByteLimits(l: KvServiceLimits): Record<KvMethodName, number> {
  const small = 3 * l.maxKeyBytes + 1024 + l.maxClientIdBytes;
  return {
    Put: l.maxKeyBytes + l.maxValueBytes + 1024 + l.maxClientIdBytes,
    Get: small,
    Delete: small,
    DeleteRange: small,
    Scan: small + l.maxKeyBytes,
    Txn: l.maxRequestBytes,
    WaitFor: 256,
    Status: 256,
    TransferLeadership: 1024,
    AddMember: 2048,
    RemoveMember: 1024,
    Ping: 256,
    LeaseGrant: 256 + l.maxClientIdBytes,
    LeaseRevoke: 256 + l.maxClientIdBytes,
    LeaseKeepAlive: 256,
    LeaseList: 256,
  };
}

/**
 * Counts the top-level repeated op fields of a serialized TxnRequest (compares = 1, success = 2,
 * failure = 8) without decoding it, stopping as soon as the count passes `max`. Returns undefined
 * for bytes that are not valid protobuf framing (the decoder then reports them).
 */
export function countTxnOps(bytes: Uint8Array, max: number): number | undefined {
  let pos = 0;
  let count = 0;
  const varint = (): number | undefined => {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++]!;
      if (shift < 49) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    return undefined;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        if (varint() === undefined) return undefined;
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (len === undefined || pos + len > bytes.length) return undefined;
        pos += len;
        if (field === 1 || field === 2 || field === 8) {
          if (++count > max) return count;
        }
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return undefined;
    }
  }
  return count;
}

function cancelled(): Outcome {
  return { status: errorToStatus(new RequestCancelledError()) };
}

/** Start the KV gRPC server; resolves once it listens. */
export async function startKvServer(options: KvServerOptions): Promise<KvServer> {
  const limits: KvServiceLimits = { ...DEFAULT_KV_LIMITS, ...options.limits };
  checkLimits(limits);
  const auth = options.auth;
  const handlers = makeHandlers(options.backend, limits);
  const wire = kvServiceDefinition();
  const byteLimits = requestByteLimits(limits);
  let inFlight = 0;
  let startedThisTurn = 0;
  const shedInFlight = sheddingStatus(new OverloadedError('client requests in flight', limits.maxInFlight));
  const shedTurn = sheddingStatus(new OverloadedError('requests started per event-loop turn', limits.maxRequestsPerTurn));

  // Requests are deserialized inside the handler (the service definition passes raw bytes through)
  // so that undecodable input answers INVALID_ARGUMENT instead of grpc-js's generic INTERNAL.
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};

  /** Who is calling (undefined: no credentials). Throws UnauthenticatedError for bad credentials. */
  const authenticate = async (call: {
    metadata: grpc.Metadata;
    getAuthContext(): { sslPeerCertificate?: PeerCertificate };
  }): Promise<Principal | undefined> => {
    if (!auth) return undefined;
    return auth.authenticate(call.metadata, call.getAuthContext().sslPeerCertificate);
  };

  /**
   * One request of `method`, however it arrived (a unary call or an entry on the Call stream):
   * shed, bound, decode, authorize, run it and map any error to a status — the same path for both
   * transports.
   */
  const runUntimed = async (method: KvMethodName, requestBytes: Buffer, deadline: number, ctx: RequestContext): Promise<Outcome> => {
    // Per event-loop turn: a burst is cut here, before anything is decoded.
    if (startedThisTurn === 0) setImmediate(() => (startedThisTurn = 0));
    if (++startedThisTurn > limits.maxRequestsPerTurn) return { status: shedTurn() };
    const parks = !IMMEDIATE_METHODS.has(method);
    if (parks && inFlight >= limits.maxInFlight) return { status: shedInFlight() };
    if (auth && !ctx.principal && !PUBLIC_METHODS.has(method)) {
      return { status: errorToStatus(new UnauthenticatedError(`${method} needs credentials`)) };
    }
    if (requestBytes.length > byteLimits[method]) {
      return {
        status: errorToStatus(
          new InvalidArgumentError('request', `is ${requestBytes.length} bytes, more than the limit of ${byteLimits[method]} for ${method}`),
        ),
      };
    }
    if (method === 'Txn') {
      const ops = countTxnOps(requestBytes, limits.maxTxnOps);
      if (ops !== undefined && ops > limits.maxTxnOps) {
        return {
          status: errorToStatus(new InvalidArgumentError('txn', `has more than the limit of ${limits.maxTxnOps} compares and ops (refused before decoding)`)),
        };
      }
    }
    if (ctx.signal.aborted) return cancelled();
    const m = wire[method];
    let request: unknown;
    try {
      request = m.requestDeserialize(requestBytes);
    } catch (err) {
      return { status: errorToStatus(new InvalidArgumentError('request', `cannot decode ${method}Request: ${(err as Error).message}`)) };
    }
    const handle = handlers[method] as unknown as (req: unknown, deadline: number, ctx: RequestContext) => Promise<object>;
    if (parks) inFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (parks) inFlight--;
    };
    // A cancelled call gives its slot back at once; the runtime frees what it parked (same signal).
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<Outcome>((resolve) => {
      onAbort = () => {
        release();
        resolve(cancelled());
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    const work = (async (): Promise<Outcome> => {
      try {
        // A synchronous throw (validation) becomes a rejection like any other.
        return { response: await Promise.resolve().then(() => handle(request, deadline, ctx)) };
      } catch (err) {
        const st = errorToStatus(err);
        if (st.code === grpc.status.INTERNAL) {
          options.logger?.error({ method, err: err instanceof Error ? err.stack : String(err) }, 'kv request failed unexpectedly');
        }
        return { status: st };
      } finally {
        release();
        ctx.signal.removeEventListener('abort', onAbort!);
      }
    })();
    return Promise.race([work, aborted]);
  };
  const onRequest = options.onRequest;
  const run = !onRequest
    ? runUntimed
    : async (method: KvMethodName, requestBytes: Buffer, deadline: number, ctx: RequestContext): Promise<Outcome> => {
        const started = performance.now();
        const outcome = await runUntimed(method, requestBytes, deadline, ctx);
        onRequest(method, 'response' in outcome ? 0 : (outcome.status.code ?? grpc.status.UNKNOWN), (performance.now() - started) / 1000);
        return outcome;
      };

  for (const method of KV_METHODS) {
    const m = wire[method];
    definition[method] = { ...m, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
    implementation[method] = (call: grpc.ServerUnaryCall<Buffer, object>, callback: grpc.sendUnaryData<object>) => {
      const controller = new AbortController();
      call.once('cancelled', () => controller.abort());
      void authenticate(call)
        .then((principal) =>
          run(method, call.request, backendDeadline(call.getDeadline(), limits), { signal: controller.signal, ...(principal ? { principal } : {}) }),
        )
        .catch((err: unknown): Outcome => ({ status: errorToStatus(err) }))
        .then((outcome) => {
          if (controller.signal.aborted) return; // nobody is listening
          if ('response' in outcome) callback(null, outcome.response);
          else callback(outcome.status);
        });
    };
  }

  const callStream = (wire as unknown as Record<string, KvMethodDefinition | undefined>)['Call'];
  if (!callStream) throw new Error(`${KV_SERVICE_NAME} in proto/kv.proto lacks Call`);
  definition['Call'] = { ...callStream, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['Call'] = (call: grpc.ServerDuplexStream<Buffer, object>) => {
    // The stream is authenticated once, when it opens: every request on it runs as that principal.
    void authenticate(call).then(
      (principal) =>
        serveCallStream(
          call,
          (buf) => callStream.requestDeserialize(buf),
          (method, payload, timeoutMs, signal) => {
            const deadline = Date.now() + Math.min(timeoutMs > 0 ? timeoutMs : limits.defaultDeadlineMs, limits.maxDeadlineMs);
            return run(method, payload, deadline, { signal, ...(principal ? { principal } : {}) });
          },
          (method, response) => wire[method].responseSerialize(response) as Buffer,
          { maxInFlight: limits.maxStreamInFlight, maxBufferedBytes: limits.maxStreamBufferedBytes },
        ),
      (err: unknown) => call.emit('error', errorToStatus(err)),
    );
  };

  // PingStream is not in KV_METHODS (the SDK's method table, all unary): it is registered here,
  // with the same raw-bytes request passthrough so a bad message answers INVALID_ARGUMENT.
  const pingStream = (wire as unknown as Record<string, KvMethodDefinition | undefined>)['PingStream'];
  if (!pingStream) throw new Error(`${KV_SERVICE_NAME} in proto/kv.proto lacks PingStream`);
  definition['PingStream'] = { ...pingStream, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['PingStream'] = (call: grpc.ServerDuplexStream<Buffer, object>) =>
    servePingStream(call, (buf) => pingStream.requestDeserialize(buf), limits.maxStreamBufferedBytes);

  // Watch: server-streaming, outside the unary method table; flow control is the stream's own.
  const watchDef = watchMethodDefinition();
  const watchers = new WatchCounter(limits);
  definition['Watch'] = { ...watchDef, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['Watch'] = (call: grpc.ServerWritableStream<Buffer, object>) => {
    let release: (() => void) | undefined;
    const fail = (err: unknown): void => {
      release?.();
      call.emit('error', errorToStatus(err));
    };
    void authenticate(call).then(async (principal) => {
      let started: Parameters<typeof serveWatch>;
      try {
        if (auth && !principal) throw new UnauthenticatedError('Watch needs credentials');
        if (call.request.length > 4 * limits.maxKeyBytes + 256) throw new InvalidArgumentError('request', 'is too large for a WatchRequest');
        let request: WireWatchRequest;
        try {
          request = watchDef.requestDeserialize(call.request) as WireWatchRequest;
        } catch (err) {
          throw new InvalidArgumentError('request', `cannot decode WatchRequest: ${(err as Error).message}`);
        }
        const range = watchRange(request, limits, prefixEnd);
        if (principal) requireRange(principal, 'read', range.start, range.end);
        const source = options.backend.watchSource();
        release = watchers.acquire(call.getPeer());
        started = [call, request, range, source, limits];
      } catch (err) {
        fail(err);
        return;
      }
      try {
        await serveWatch(...started);
      } finally {
        release();
      }
    }, fail);
  };

  // Snapshot (a backup): server-streaming like Watch, admin only; flow control is the stream's own.
  const snapshotDef = snapshotMethodDefinition();
  const backups = new BackupCounter();
  definition['Snapshot'] = { ...snapshotDef, requestDeserialize: (buf: Buffer) => buf } as unknown as grpc.MethodDefinition<unknown, unknown>;
  implementation['Snapshot'] = (call: grpc.ServerWritableStream<Buffer, object>) => {
    let release: (() => void) | undefined;
    void authenticate(call)
      .then(async (principal) => {
        if (auth && !principal) throw new UnauthenticatedError('Snapshot needs credentials');
        if (principal) requireAdmin(principal, 'Snapshot');
        if (call.request.length > 64) throw new InvalidArgumentError('request', 'is too large for a SnapshotRequest');
        let request: WireSnapshotRequest;
        try {
          request = snapshotDef.requestDeserialize(call.request) as WireSnapshotRequest;
        } catch (err) {
          throw new InvalidArgumentError('request', `cannot decode SnapshotRequest: ${(err as Error).message}`);
        }
        const backend = options.backend;
        if (!backend.backup) throw new InvalidArgumentError('Snapshot', 'this node cannot stream backups');
        release = backups.acquire();
        await serveSnapshot(call, (o) => backend.backup!(o), { anyNode: request.anyNode === true, deadline: backendDeadline(call.getDeadline(), limits) });
      })
      .catch((err: unknown) => call.emit('error', errorToStatus(err)))
      .finally(() => release?.());
  };

  const server = new grpc.Server({
    'grpc.max_receive_message_length': limits.maxRequestBytes,
    'grpc.max_send_message_length': -1,
    // HTTP/2 streams one connection may have open: a client opening more waits (its own problem).
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
  });
  server.addService(definition as grpc.ServiceDefinition, implementation);
  const credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, credentials, (err, p) =>
      err ? reject(new Error(`cannot listen on ${options.address} for ${KV_SERVICE_NAME}: ${err.message}`)) : resolve(p),
    );
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
 * Answers written to one stream. While the client reads, an answer is written at once; once the
 * stream's buffer is full, answers queue here (one `drain` listener for the whole queue, never one
 * per answer) and the stream stops being read. The queue is bounded in bytes: a client that never
 * reads gets its stream ended with RESOURCE_EXHAUSTED instead of making the node buffer without end.
 */
class Outbox {
  private readonly queue: object[] = [];
  private queuedBytes = 0;
  private waiting = false;
  private dead = false;

  constructor(
    private readonly call: grpc.ServerDuplexStream<Buffer, object>,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: () => void,
    /** Called when the stream can take more (reading may resume). */
    private readonly onDrained: () => void,
  ) {}

  get blocked(): boolean {
    return this.waiting;
  }

  write(message: object, bytes: number): void {
    if (this.dead) return;
    if (!this.waiting) {
      if (!this.call.write(message)) this.wait();
      return;
    }
    if (this.queuedBytes + bytes > this.maxBufferedBytes) {
      this.close();
      this.onOverflow();
      return;
    }
    this.queue.push(message);
    this.queuedBytes += bytes;
    (message as { __bytes?: number }).__bytes = bytes;
  }

  close(): void {
    this.dead = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.call.removeListener('drain', this.flush);
  }

  private wait(): void {
    this.waiting = true;
    this.call.once('drain', this.flush);
  }

  private readonly flush = (): void => {
    this.waiting = false;
    if (this.dead) return;
    while (this.queue.length > 0) {
      const m = this.queue.shift()!;
      this.queuedBytes -= (m as { __bytes?: number }).__bytes ?? 0;
      delete (m as { __bytes?: number }).__bytes;
      if (!this.call.write(m)) {
        this.wait();
        return;
      }
    }
    this.onDrained();
  };
}

/**
 * Answers every PingStream request on the same stream with its id, in arrival order. A request
 * that does not decode (or carries an id that would not round-trip) ends the stream with
 * INVALID_ARGUMENT; the answers already written stay valid. When the client stops reading,
 * reading its requests pauses too, so a client that only writes cannot grow the server's buffers.
 */
export function servePingStream(call: grpc.ServerDuplexStream<Buffer, object>, decode: (buf: Buffer) => unknown, maxBufferedBytes = 16 * 1024 * 1024): void {
  let done = false;
  const finish = (): void => {
    done = true;
    outbox.close();
    call.removeAllListeners('data');
  };
  const outbox = new Outbox(
    call,
    maxBufferedBytes,
    () => {
      finish();
      call.emit('error', errorToStatus(new OverloadedError('unread responses on this stream (bytes)', maxBufferedBytes)));
    },
    () => {
      if (!done) call.resume();
    },
  );
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
    outbox.write({ id }, 16);
    if (outbox.blocked) call.pause();
  });
  call.on('end', () => {
    if (done) return;
    finish();
    call.end();
  });
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(KV_METHODS);

export interface CallStreamLimits {
  /** Requests in flight on this stream; at the limit the stream is not read until one completes. */
  maxInFlight: number;
  /** Answer bytes queued for a client that does not read; beyond it the stream is ended. */
  maxBufferedBytes: number;
}

const DEFAULT_CALL_STREAM_LIMITS: CallStreamLimits = { maxInFlight: 1024, maxBufferedBytes: 16 * 1024 * 1024 };

/**
 * The Call stream: many unary-method requests over one stream, answered in completion order and
 * matched by id. A malformed entry or an unknown method answers that id alone (INVALID_ARGUMENT /
 * UNIMPLEMENTED); only undecodable framing ends the stream. When the stream is cancelled, every
 * request still running on it is aborted (its slot and whatever it parked are freed at once).
 */
export function serveCallStream(
  call: grpc.ServerDuplexStream<Buffer, object>,
  decode: (buf: Buffer) => unknown,
  run: (method: KvMethodName, payload: Buffer, timeoutMs: number, signal: AbortSignal) => Promise<Outcome>,
  serialize: (method: KvMethodName, response: object) => Buffer,
  limits: CallStreamLimits = DEFAULT_CALL_STREAM_LIMITS,
): void {
  let done = false;
  let outstanding = 0;
  let ended = false;
  let paused = false;
  // One controller per request (a shared signal would collect one listener per parked wait).
  const running = new Set<AbortController>();
  const finish = (): void => {
    if (done) return;
    done = true;
    outbox.close();
    call.removeAllListeners('data');
    for (const c of running) c.abort(); // frees everything this stream still has running
    running.clear();
  };
  const outbox = new Outbox(
    call,
    limits.maxBufferedBytes,
    () => {
      finish();
      call.emit('error', errorToStatus(new OverloadedError('unread responses on this stream (bytes)', limits.maxBufferedBytes)));
    },
    () => maybeResume(),
  );
  const maybePause = (): void => {
    if (!paused && (outstanding >= limits.maxInFlight || outbox.blocked)) {
      paused = true;
      call.pause();
    }
  };
  const maybeResume = (): void => {
    if (paused && !done && outstanding < limits.maxInFlight && !outbox.blocked) {
      paused = false;
      call.resume();
    }
  };
  const answer = (message: object, bytes: number): void => {
    if (done) return;
    outbox.write(message, bytes);
    maybePause();
  };
  const maybeEnd = (): void => {
    if (ended && outstanding === 0 && !done) {
      done = true;
      outbox.close();
      call.removeAllListeners('data');
      call.end();
    }
  };
  call.on('cancelled', finish);
  call.on('error', finish);
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
      answer({ id, code: grpc.status.UNIMPLEMENTED, details: `unknown method ${String(method).slice(0, 64)}`, metadata: {} }, 128);
      return;
    }
    const payload =
      entry?.payload instanceof Uint8Array ? Buffer.from(entry.payload.buffer, entry.payload.byteOffset, entry.payload.byteLength) : Buffer.alloc(0);
    const timeoutMs = typeof entry?.timeoutMs === 'number' ? entry.timeoutMs : 0;
    outstanding++;
    maybePause();
    const controller = new AbortController();
    running.add(controller);
    void run(method as KvMethodName, payload, timeoutMs, controller.signal)
      .then((outcome) => {
        if ('response' in outcome) {
          const bytes = serialize(method as KvMethodName, outcome.response);
          answer({ id, code: 0, payload: bytes, details: '', metadata: {} }, bytes.length + 32);
        } else {
          const metadata: Record<string, string> = {};
          for (const [key, value] of Object.entries(outcome.status.metadata?.getMap() ?? {})) metadata[key] = String(value);
          answer(
            { id, code: outcome.status.code ?? grpc.status.UNKNOWN, details: outcome.status.details ?? '', metadata },
            256 + (outcome.status.details?.length ?? 0),
          );
        }
      })
      .finally(() => {
        running.delete(controller);
        outstanding--;
        maybeResume();
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
    case 'put': {
      const put: Op = { op: 'put', key: keyField(o.put?.key, `${field}.put.key`, l), value: valueField(o.put?.value, `${field}.put.value`, l) };
      const lease = leaseField(o.put?.lease, `${field}.put.lease`);
      return lease === undefined ? put : { ...put, lease };
    }
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
  if (!m || port < 1 || port > 65535)
    throw new InvalidArgumentError(field, `${JSON.stringify(v)} is not host:port with a port in 1..65535 (e.g. 127.0.0.1:7001)`);
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
    case 'leaseRevoke':
      return { leaseRevoke: { deleted: r.deleted } };
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
  return { key: kv.key, value: kv.value, version: kv.version, createIndex: kv.createIndex, modIndex: kv.modIndex, lease: kv.lease ?? 0 };
}

function leaseField(v: unknown, field: string): number | undefined {
  const id = uintField(v, field);
  return id === 0 ? undefined : id;
}

function ttlField(v: unknown): number {
  const ttl = uintField(v, 'ttlMs');
  if (ttl < LEASE_LIMITS.minTtlMs || ttl > LEASE_LIMITS.maxTtlMs) {
    throw new InvalidArgumentError('ttlMs', `must be between ${LEASE_LIMITS.minTtlMs} and ${LEASE_LIMITS.maxTtlMs} ms, got ${ttl}`);
  }
  return ttl;
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
    members: s.members.map((m) => ({ id: m.id, clientAddress: m.clientAddress, voter: m.voter, raftAddress: m.raftAddress ?? '' })),
    followers: (s.followers ?? []).map((f) => ({ id: f.id, match: f.match, lag: f.lag })),
  };
}

function membershipToWire(s: NodeStatus): WireMembershipResponse {
  return { members: statusToWire(s).members };
}

// ---------------------------------------------------------------------------------------------

type Handlers = { [M in KvMethodName]: (req: never, deadline: number, ctx: RequestContext) => Promise<object> };

/** The keys an op writes (for authorization). */
function authorizeOp(p: Principal, op: Op): void {
  switch (op.op) {
    case 'put':
    case 'delete':
      requireKey(p, 'write', op.key);
      return;
    case 'deleteRange':
      requireRange(p, 'write', op.start, op.end);
      return;
    case 'txn':
      for (const c of op.compares) requireKey(p, 'read', c.key);
      for (const o of [...op.success, ...op.failure]) authorizeOp(p, o);
      return;
  }
}

/**
 * With auth on, a session id is the user's own: "<user>/<clientId>" in the log, so one user can
 * neither advance nor read the outcome of another user's exactly-once session.
 */
function scopeSession<T extends { clientId: string }>(session: T, p: Principal | undefined): T {
  if (!p || session.clientId === '') return session;
  return { ...session, clientId: `${p.user}/${session.clientId}` };
}

function makeHandlers(backend: KvBackend, l: KvServiceLimits): Handlers {
  const write = async (session: ReturnType<typeof sessionFields>, op: Op, deadline: number, ctx: RequestContext) => {
    if (ctx.principal) authorizeOp(ctx.principal, op);
    const { durability, ...rest } = scopeSession(session, ctx.principal);
    const command: Command = { ...rest, op };
    return writeResponse(await backend.write({ command, durability, deadline, signal: ctx.signal }), command);
  };
  const admin = (ctx: RequestContext, method: KvMethodName): void => {
    if (ctx.principal && ADMIN_METHODS.has(method)) requireAdmin(ctx.principal, method);
  };
  return {
    Put: async (r: WirePutRequest, deadline, ctx) => {
      const lease = leaseField(r.lease, 'lease');
      const op: Op = { op: 'put', key: keyField(r.key, 'key', l), value: valueField(r.value, 'value', l), ...(lease === undefined ? {} : { lease }) };
      return write(sessionFields(r, l), op, deadline, ctx);
    },
    LeaseGrant: async (r: WireLeaseGrantRequest, deadline, ctx): Promise<WireLeaseGrantResponse> => {
      const ttlMs = ttlField(r.ttlMs);
      if (ctx.principal) requireSomeWrite(ctx.principal);
      const { durability: _sync, ...session } = scopeSession(sessionFields({ ...r, durability: 'DURABILITY_SYNC' }, l), ctx.principal);
      const ack = await backend.write({ command: { ...session, op: { op: 'leaseGrant', ttlMs } }, durability: 'sync', deadline, signal: ctx.signal });
      // The lease id is the grant's log index, also when the result reached this node in a snapshot.
      return { id: ack.index, ttlMs, index: ack.index };
    },
    LeaseRevoke: async (r: WireLeaseRevokeRequest, deadline, ctx) => {
      const id = leaseField(r.id, 'id');
      if (id === undefined) throw new InvalidArgumentError('id', 'must name a lease');
      if (ctx.principal) requireSomeWrite(ctx.principal);
      return write(sessionFields({ ...r, durability: 'DURABILITY_SYNC' }, l), { op: 'leaseRevoke', id }, deadline, ctx);
    },
    LeaseKeepAlive: async (r: { id?: unknown }, deadline, ctx) => {
      const id = leaseField(r.id, 'id');
      if (id === undefined) throw new InvalidArgumentError('id', 'must name a lease');
      if (ctx.principal) requireSomeWrite(ctx.principal);
      return { id, ttlMs: await backend.keepAliveLease(id, deadline, ctx.signal) };
    },
    LeaseList: async (r: { id?: unknown }, deadline, ctx): Promise<WireLeaseListResponse> => {
      const id = leaseField(r.id, 'id');
      if (ctx.principal) requireSomeWrite(ctx.principal);
      const leases = await backend.leases(id, deadline, ctx.signal);
      return { leases: leases.map((x) => ({ id: x.id, ttlMs: x.ttlMs, remainingMs: Math.round(x.remainingMs), keys: x.keys })) };
    },
    Delete: async (r: WireDeleteRequest, deadline, ctx) => {
      const op: Op = { op: 'delete', key: keyField(r.key, 'key', l) };
      return write(sessionFields(r, l), op, deadline, ctx);
    },
    DeleteRange: async (r: WireDeleteRangeRequest, deadline, ctx) => {
      const range = rangeField(r, '', l);
      // An empty range spec would wipe the keyspace: make that explicit (start = "\0").
      if (range.start.length === 0) throw new InvalidArgumentError('prefix', 'a prefix or a non-empty start is required');
      return write(sessionFields(r, l), { op: 'deleteRange', ...range }, deadline, ctx);
    },
    Txn: async (r: WireTxnRequest, deadline, ctx) => {
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
      return write(sessionFields(r, l), op, deadline, ctx);
    },
    Get: async (r: WireGetRequest, deadline, ctx) => {
      const key = keyField(r.key, 'key', l);
      if (ctx.principal) requireKey(ctx.principal, 'read', key);
      const res = await backend.get(key, { ...readOptions(r, deadline), signal: ctx.signal });
      return { found: res.kv !== undefined, kv: res.kv ? kvToWire(res.kv) : null, servedBy: res.nodeId, appliedIndex: res.appliedIndex };
    },
    Scan: async (r: WireScanRequest, deadline, ctx) => {
      let { start, end } = rangeField(r, '', l);
      if (ctx.principal) requireRange(ctx.principal, 'read', start, end);
      const limit = uintField(r.limit, 'limit') || l.defaultScanLimit;
      if (limit > l.maxScanLimit) throw new InvalidArgumentError('limit', `${limit} is more than the maximum of ${l.maxScanLimit}`);
      const from = boundField(r.continueFrom, 'continueFrom', l);
      if (from.length > 0) {
        if (compareBytes(from, start) < 0 || (end.length > 0 && compareBytes(from, end) >= 0)) {
          throw new InvalidArgumentError('continueFrom', 'lies outside the requested range');
        }
        start = from;
      }
      const options = { ...readOptions(r, deadline), signal: ctx.signal };
      const res = await backend.scan(start, end, limit, options);
      // One page holds at most maxScanResponseBytes of keys and values: the rest is the next page.
      let items = res.items;
      let continueFrom = res.continueFrom;
      let bytes = 0;
      for (let i = 0; i < items.length; i++) {
        bytes += items[i]!.key.length + items[i]!.value.length + 32;
        if (bytes > l.maxScanResponseBytes && i > 0) {
          continueFrom = items[i]!.key;
          items = items.slice(0, i);
          break;
        }
      }
      const more = continueFrom !== undefined && continueFrom.length > 0;
      const response: WireScanResponse = {
        items: items.map(kvToWire),
        continueFrom: more ? continueFrom! : EMPTY,
        more,
        servedBy: res.nodeId,
        appliedIndex: res.appliedIndex,
      };
      return response;
    },
    WaitFor: async (r: WireWaitForRequest, deadline, ctx) => {
      const term = uintField(r.term, 'term');
      const index = uintField(r.index, 'index');
      if (term === 0) throw new InvalidArgumentError('term', 'must be >= 1 (use the receipt of an async write)');
      if (index === 0) throw new InvalidArgumentError('index', 'must be >= 1 (use the receipt of an async write)');
      if (ctx.principal) requireSomeWrite(ctx.principal);
      const outcome = await backend.waitFor(term, index, deadline, ctx.signal);
      return { outcome: OUTCOME_TO_WIRE[outcome] };
    },
    Status: async (r: WireStatusRequest, deadline, ctx) => {
      const termAbove = uintField(r.leaderTermAbove, 'leader_term_above');
      const waitMs = uintField(r.waitMs, 'wait_ms');
      if (termAbove > 0 && waitMs > 0) {
        await backend.awaitLeaderAbove(termAbove, Math.min(deadline, Date.now() + Math.min(waitMs, MAX_STATUS_WAIT_MS)), ctx.signal);
      }
      return statusToWire(await backend.status());
    },
    TransferLeadership: async (r: WireTransferLeadershipRequest, deadline, ctx) => {
      admin(ctx, 'TransferLeadership');
      const to = r.to;
      if (typeof to !== 'string' || to.length === 0) throw new InvalidArgumentError('to', 'must name the target node id');
      if (to.length > 256) throw new InvalidArgumentError('to', 'is too long to be a node id');
      await backend.transferLeadership(to, deadline, ctx.signal);
      return {};
    },
    AddMember: async (r: WireAddMemberRequest, deadline, ctx) => {
      admin(ctx, 'AddMember');
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
      await backend.addMember(id, raftAddress, clientAddress, { learner, deadline, signal: ctx.signal });
      return membershipToWire(await backend.status());
    },
    RemoveMember: async (r: WireRemoveMemberRequest, deadline, ctx) => {
      admin(ctx, 'RemoveMember');
      const id = nodeIdField(r.id, 'id');
      await backend.removeMember(id, { deadline, signal: ctx.signal });
      return membershipToWire(await backend.status());
    },
    // Echoes the id so that unary and streaming pings carry the same payload in the bench.
    Ping: async (r: { id?: unknown }) => ({ id: uintField(r.id, 'id') }),
  };
}
