// The quorumkv SDK: routes each request (leader or round-robin), follows NotLeader hints, re-routes
// on unreachable nodes with bounded backoff until the deadline, and keeps a write's seq across
// retries so the cluster applies it at most once.
import * as grpc from '@grpc/grpc-js';
import { remoteErrorName, statusToError } from '../api/grpc-status.js';
import type { StatusLike } from '../api/grpc-status.js';
import { ProposalDroppedError } from '../api/errors.js';
import type { NodeStatus } from '../api/types.js';
import type { OpResult } from '../api/command.js';
import { toBytes } from './bytes.js';
import type { Bytes } from './bytes.js';
import { EndpointPool } from './endpoint-pool.js';
import { claimedLeader, LeaderWatch } from './leader-watch.js';
import type { LeaderClaim, LeaderClaimWait } from './leader-watch.js';
import {
  ClientUsageError,
  ClusterUnavailableError,
  DeadlineExceededError,
  LostWriteError,
  NotLeaderError,
  OverloadedError,
  RemoteError,
  ReplicaCorruptedError,
  ShuttingDownError,
  StaleReadError,
} from '../api/errors.js';
import { KvItem } from './kv-item.js';
import {
  COMPARE_RESULT_TO_WIRE,
  COMPARE_TARGET_TO_WIRE,
  CONSISTENCY_TO_WIRE,
  DURABILITY_TO_WIRE,
  snapshotMethodDefinition,
  watchMethodDefinition,
} from '../api/kv-proto.js';
import { contend, observeElection, type Contender, type ElectionLeader, type LockOptions } from './concurrency.js';
import { startKeepAlive, type KeepAliveHandle, type KeepAliveOptions } from './keep-alive.js';
import { Watcher, type WatchSpec } from './watch.js';
import { SnapshotDownload, type SnapshotOptions } from './snapshot.js';
import type {
  KvMethodName,
  WireCompare,
  WireGetResponse,
  WireKeyValue,
  WireLeaseGrantResponse,
  WireLeaseKeepAliveResponse,
  WireLeaseListResponse,
  WireMember,
  WireMembershipResponse,
  WireOpResult,
  WireRange,
  WireReadOptions,
  WireScanResponse,
  WireStatusResponse,
  WireTxnOp,
  WireWaitForResponse,
  WireWriteResponse,
} from '../api/kv-proto.js';
import type {
  AddMemberSpec,
  CallOptions,
  CasResult,
  ConnectOptions,
  DeleteResult,
  EndpointStatus,
  GetDetail,
  LeaseStatus,
  Member,
  PutOptions,
  RangeSpec,
  ReadOptions,
  ScanOptions,
  ScanPage,
  TxnOp,
  TxnResult,
  TxnSpec,
  WriteOptions,
  WriteReceipt,
  WriteResult,
} from './types.js';
import { WriteSession } from './write-session.js';

const DEFAULT_DEADLINE_MS = 5_000;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 2_000;
const DISCOVERY_TIMEOUT_MS = 1_000;
const BACKOFF_START_MS = 20;
const BACKOFF_MAX_MS = 500;
/**
 * While no leader is known (an election is running) poll at most this far apart: a NotLeader
 * answer costs a millisecond, and a long sleep here is pure added failover time.
 */
const ELECTION_POLL_MAX_MS = 50;
/** A hint naming an address that refused a connection (or timed out) this recently is ignored. */
const DOWN_WINDOW_MS = 1_000;
/**
 * Default for ConnectOptions.leaderProbeAfterMs: about one election timeout of the shipped timing
 * (tickMs 10 x electionTicks 30). By then a healthy leader has answered; a hung one has not.
 */
const DEFAULT_LEADER_PROBE_AFTER_MS = 300;
/** Later probe rounds of one attempt, this far apart, until the attempt ends. */
const LEADER_PROBE_GAP_MS = 50;
/** How long one probe round waits for the nodes' Status answers. */
const LEADER_PROBE_TIMEOUT_MS = 250;
/**
 * How long a node may hold a probe until it knows a leader newer than the hung one: it answers the
 * moment it learns of the successor, so the move does not wait for the next round.
 */
const LEADER_LONG_POLL_MS = 150;
/** Bound on probe rounds per attempt (the attempt timeout bounds them too). */
const MAX_LEADER_PROBES = 200;

type Route = 'leader' | 'roundRobin';

interface Attempted<Res> {
  response: Res;
  endpoint: string;
}

const EMPTY = new Uint8Array(0);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positiveMs(v: number | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new ClientUsageError(`${what} must be a positive number of ms, got ${v}`);
  return v;
}

/** Connection-level failure of one node: try another one. */
function isUnreachable(err: Error): boolean {
  return (
    err instanceof ShuttingDownError ||
    (err instanceof RemoteError && err.remoteName === '' && (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED))
  );
}

function opResultFromWire(r: WireOpResult | null | undefined): OpResult | undefined {
  if (!r) return undefined;
  if (r.put) return { op: 'put', prevExisted: r.put.prevExisted };
  if (r.delete) return { op: 'delete', deleted: r.delete.deleted };
  if (r.deleteRange) return { op: 'deleteRange', deleted: r.deleteRange.deleted };
  if (r.leaseRevoke) return { op: 'leaseRevoke', deleted: r.leaseRevoke.deleted };
  if (r.txn) {
    const results: OpResult[] = [];
    for (const x of r.txn.results) {
      const o = opResultFromWire(x);
      if (o) results.push(o);
    }
    return { op: 'txn', succeeded: r.txn.succeeded, results };
  }
  return undefined;
}

function writeResultFromWire(w: WireWriteResponse): WriteResult {
  const out: WriteResult = { term: w.term, index: w.index, applied: w.applied, duplicate: w.duplicate };
  if (w.applied) {
    const result = opResultFromWire(w.result);
    if (result) out.result = result;
    out.appliedAt = w.appliedAt;
  }
  return out;
}

function itemFromWire(kv: WireKeyValue, servedBy: string, appliedIndex: number): KvItem {
  return new KvItem(kv.key, kv.value, kv.version, kv.createIndex, kv.modIndex, servedBy, appliedIndex, kv.lease ?? 0);
}

function leaseArg(lease: unknown, what: string): number {
  if (typeof lease !== 'number' || !Number.isSafeInteger(lease) || lease <= 0) {
    throw new ClientUsageError(`${what} needs a lease id from grantLease(), got ${String(lease)}`);
  }
  return lease;
}

function rangeToWire(r: Partial<RangeSpec>): WireRange {
  return {
    prefix: r.prefix === undefined ? EMPTY : toBytes(r.prefix, 'prefix'),
    start: r.start === undefined ? EMPTY : toBytes(r.start, 'start'),
    end: r.end === undefined ? EMPTY : toBytes(r.end, 'end'),
  };
}

/** `sessionIndex`: the client's watermark, the floor of a session read's minIndex. */
function readOptionsToWire(o: ReadOptions, sessionIndex: number): WireReadOptions {
  const consistency = o.consistency ?? 'linearizable';
  // A session read is a follower read that must not see a state older than one this client saw.
  const wire = consistency === 'session' ? CONSISTENCY_TO_WIRE.follower : CONSISTENCY_TO_WIRE[consistency];
  if (!wire) throw new ClientUsageError(`consistency must be linearizable, lease, follower or session, got ${String(consistency)}`);
  if (o.minIndex !== undefined && (!Number.isSafeInteger(o.minIndex) || o.minIndex < 0)) {
    throw new ClientUsageError(`minIndex must be a non-negative integer, got ${String(o.minIndex)}`);
  }
  const minIndex = consistency === 'session' ? Math.max(o.minIndex ?? 0, sessionIndex) : (o.minIndex ?? 0);
  const out: WireReadOptions = { consistency: wire, minIndex };
  if (o.maxLagMs !== undefined) out.maxLagMs = o.maxLagMs;
  return out;
}

function txnOpToWire(op: TxnOp): WireTxnOp {
  switch (op.op) {
    case 'put':
      return {
        put: { key: toBytes(op.key, 'key'), value: toBytes(op.value, 'value'), lease: op.lease === undefined ? 0 : leaseArg(op.lease, 'a txn put') },
      };
    case 'delete':
      return { delete: { key: toBytes(op.key, 'key') } };
    case 'deleteRange':
      return { deleteRange: rangeToWire(op) };
    default:
      throw new ClientUsageError(`unknown txn op ${String((op as { op: unknown }).op)}`);
  }
}

function compareToWire(c: TxnSpec['compares'] extends (infer C)[] | undefined ? C : never): WireCompare {
  const target = COMPARE_TARGET_TO_WIRE[c.target];
  const result = COMPARE_RESULT_TO_WIRE[c.result];
  if (!target) throw new ClientUsageError(`compare target must be value, version or modIndex, got ${String(c.target)}`);
  if (!result) throw new ClientUsageError(`compare result must be eq, neq, lt or gt, got ${String(c.result)}`);
  return {
    key: toBytes(c.key, 'compare key'),
    target,
    result,
    value: c.target === 'value' ? toBytes(c.value, 'compare value') : EMPTY,
    number: c.target === 'value' ? 0 : c.number,
  };
}

function membersFromWire(members: WireMember[]): Member[] {
  return members.map((m) => ({ id: m.id, clientAddress: m.clientAddress, voter: m.voter, raftAddress: m.raftAddress ?? '' }));
}

function nodeIdArg(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0) throw new ClientUsageError(`${what} needs a non-empty node id, got ${JSON.stringify(id)}`);
  return id;
}

function statusFromWire(s: WireStatusResponse): NodeStatus {
  const out: NodeStatus = {
    id: s.id,
    clientAddress: s.clientAddress,
    role: s.role as NodeStatus['role'],
    term: s.term,
    leaderId: s.leaderId,
    leaderClientAddress: s.leaderClientAddress,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastIndex: s.lastIndex,
    members: membersFromWire(s.members),
  };
  if (s.role === 'leader') out.followers = s.followers.map((f) => ({ id: f.id, match: f.match, lag: f.lag }));
  return out;
}

function pem(v: string | Uint8Array | undefined, what: string): Buffer | null {
  if (v === undefined) return null;
  if (typeof v === 'string') return Buffer.from(v);
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new ClientUsageError(`tls.${what} must be PEM text or bytes`);
}

function channelCredentials(tls: ConnectOptions['tls']): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  if (typeof tls !== 'object' || tls === null) throw new ClientUsageError('tls must be { ca?, cert?, key? }');
  const cert = pem(tls.cert, 'cert');
  const key = pem(tls.key, 'key');
  if ((cert === null) !== (key === null)) throw new ClientUsageError('tls.cert and tls.key go together');
  return grpc.credentials.createSsl(pem(tls.ca, 'ca'), key, cert);
}

function authMetadata(credentials: ConnectOptions['credentials']): () => grpc.Metadata {
  let header: string | undefined;
  if (credentials !== undefined) {
    if ('token' in credentials && typeof credentials.token === 'string' && credentials.token.length > 0) header = `Bearer ${credentials.token}`;
    else if (
      'username' in credentials &&
      typeof credentials.username === 'string' &&
      typeof credentials.password === 'string' &&
      credentials.username.length > 0
    ) {
      if (credentials.username.includes(':')) throw new ClientUsageError('credentials.username must not contain ":"');
      header = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    } else throw new ClientUsageError('credentials must be { username, password } or { token }');
  }
  return () => {
    const md = new grpc.Metadata();
    if (header) md.set('authorization', header);
    return md;
  };
}

/** Connect to a cluster. Never fails because nodes are down: requests retry until their deadline. */
export async function connect(options: ConnectOptions): Promise<KvClient> {
  const client = new KvClient(options);
  if (options.discover !== false) await client.discoverLeader(Math.min(client.deadlineMs, DISCOVERY_TIMEOUT_MS));
  return client;
}

export class KvClient {
  readonly deadlineMs: number;
  readonly attemptTimeoutMs: number;
  readonly leaderProbeAfterMs: number;
  private readonly pool: EndpointPool;
  private readonly session: WriteSession;
  private readonly leaderWatch: LeaderWatch;
  /**
   * The session watermark: the highest log index this client has seen committed (acked sync
   * writes, confirmed async receipts, appliedIndex of served reads). Session reads send it as
   * minIndex. invariant: never decreases.
   */
  private observed = 0;
  private hungLeaderMoves = 0;
  private closed = false;

  constructor(options: ConnectOptions) {
    if (!options || !Array.isArray(options.endpoints)) throw new ClientUsageError('connect({ endpoints: ["host:port", ...] }) is required');
    if (options.transport !== undefined && options.transport !== 'stream' && options.transport !== 'unary') {
      throw new ClientUsageError(`transport must be 'stream' or 'unary', got ${String(options.transport)}`);
    }
    this.pool = new EndpointPool(options.endpoints, options.transport ?? 'stream', channelCredentials(options.tls), authMetadata(options.credentials));
    this.deadlineMs = positiveMs(options.deadlineMs, DEFAULT_DEADLINE_MS, 'deadlineMs');
    this.attemptTimeoutMs = positiveMs(options.attemptTimeoutMs, DEFAULT_ATTEMPT_TIMEOUT_MS, 'attemptTimeoutMs');
    this.leaderProbeAfterMs = positiveMs(options.leaderProbeAfterMs, DEFAULT_LEADER_PROBE_AFTER_MS, 'leaderProbeAfterMs');
    this.leaderWatch = new LeaderWatch({
      ask: (address, deadline, wait) => this.leaderClaimOf(address, deadline, wait),
      known: () => this.pool.known(),
      probeTimeoutMs: LEADER_PROBE_TIMEOUT_MS,
      minRoundGapMs: LEADER_PROBE_GAP_MS,
      longPollMs: LEADER_LONG_POLL_MS,
    });
    if (options.clientId !== undefined && (typeof options.clientId !== 'string' || options.clientId.length === 0)) {
      throw new ClientUsageError('clientId must be a non-empty string');
    }
    this.session = new WriteSession(options.clientId);
  }

  get clientId(): string {
    return this.session.clientId;
  }

  /** The configured endpoints. */
  get endpoints(): readonly string[] {
    return this.pool.endpoints;
  }

  /** The current leader guess (client address), if any. */
  leaderHint(): string | undefined {
    return this.pool.leaderAddress();
  }

  /** The session watermark: the highest committed log index this client has observed. */
  get sessionIndex(): number {
    return this.observed;
  }

  /** How many attempts moved off a hung leader to a newer one (see leaderProbeAfterMs). */
  get hungLeaderSwitches(): number {
    return this.hungLeaderMoves;
  }

  // ---- writes ----

  /** Write key = value. Sync (default) resolves once applied; async once in the leader's log. */
  async put(key: Bytes, value: Bytes, options: PutOptions = {}): Promise<WriteResult> {
    const k = toBytes(key, 'key');
    const v = toBytes(value, 'value');
    const lease = options.lease === undefined ? 0 : leaseArg(options.lease, 'put');
    return this.write('Put', { key: k, value: v, lease }, options, 'put');
  }

  // ---- leases ----

  /** A new lease of `ttlMs` (500 ms .. 7 days); resolves with its id. Keys put with it die with it. */
  async grantLease(ttlMs: number, options: CallOptions = {}): Promise<number> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new ClientUsageError(`grantLease needs a TTL in whole ms, got ${ttlMs}`);
    const r = await this.writeRaw<WireLeaseGrantResponse>('LeaseGrant', { ttlMs }, options, 'grantLease');
    return r.id;
  }

  /** Ends the lease now and deletes every key attached to it. LeaseNotFoundError when it is gone. */
  async revokeLease(lease: number, options: CallOptions = {}): Promise<WriteResult> {
    return this.write('LeaseRevoke', { id: leaseArg(lease, 'revokeLease') }, options, 'revokeLease');
  }

  /** Renews the lease once (its full TTL again, by the leader's clock); resolves with the TTL. */
  async keepAliveOnce(lease: number, options: CallOptions = {}): Promise<number> {
    const id = leaseArg(lease, 'keepAliveOnce');
    const { response } = await this.invoke<WireLeaseKeepAliveResponse>('LeaseKeepAlive', () => ({ id }), 'leader', options, 'keepAlive');
    return response.ttlMs;
  }

  /**
   * Renews the lease in the background (every ttl/3) until `stop()`, or until it is found gone
   * (`onLost`). `ttlMs` is the lease's TTL (as granted).
   */
  keepAlive(lease: number, ttlMs: number, options: KeepAliveOptions = {}): KeepAliveHandle {
    this.assertOpen();
    const id = leaseArg(lease, 'keepAlive');
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new ClientUsageError(`keepAlive needs the lease's TTL in ms, got ${ttlMs}`);
    return startKeepAlive(id, ttlMs, (l, deadlineMs) => this.keepAliveOnce(l, { deadlineMs: Math.max(deadlineMs, 500) }), options);
  }

  /** Every live lease (or the one with `lease`) with its remaining time by the leader's clock. */
  async leases(lease?: number, options: CallOptions = {}): Promise<LeaseStatus[]> {
    const id = lease === undefined ? 0 : leaseArg(lease, 'leases');
    const { response } = await this.invoke<WireLeaseListResponse>('LeaseList', () => ({ id }), 'leader', options, 'leases');
    return response.leases.map((l) => ({ id: l.id, ttlMs: l.ttlMs, remainingMs: l.remainingMs, keys: l.keys }));
  }

  // ---- watch, locks, elections ----

  /**
   * The changes to a key, a prefix or a range, in log order, each exactly once, resuming on another
   * node when one fails. `for await (const e of kv.watch({ prefix: 'config/' })) …`; close() ends it.
   */
  watch(spec: WatchSpec): Watcher {
    this.assertOpen();
    const def = watchMethodDefinition();
    return new Watcher(
      {
        open: (endpoint, request) => this.pool.openStream(endpoint, def, request),
        endpoints: () => this.pool.endpoints,
        assertOpen: () => this.assertOpen(),
      },
      spec,
    );
  }

  /**
   * A backup: a Readable of the backup file's bytes (write them to a file as they come), taken
   * from the leader after a read barrier, or from `options.node` at its applied index.
   * `metadata()` resolves with index, term, members, key count, size and CRC-32 once the last byte
   * arrived and the CRC-32 matched. Admin only when auth is on.
   */
  snapshot(options: SnapshotOptions = {}): SnapshotDownload {
    this.assertOpen();
    if (options.node !== undefined && (typeof options.node !== 'string' || options.node === '')) {
      throw new ClientUsageError('snapshot: node must be a node id');
    }
    const def = snapshotMethodDefinition();
    return new SnapshotDownload(
      {
        open: (endpoint, request) => this.pool.openStream(endpoint, def, request),
        target: async () => {
          if (options.node === undefined) return this.pool.leaderAddress() ?? (await this.discoverLeader(this.deadlineMs)) ?? this.pool.leaderTarget();
          if (!this.pool.addressOf(options.node)) await this.status();
          const address = this.pool.addressOf(options.node);
          if (!address) throw new ClientUsageError(`snapshot: no node ${JSON.stringify(options.node)} is known to the cluster (see quorumkv status)`);
          return address;
        },
      },
      options,
    );
  }

  /** Waits for and takes the lock `name` (first come, first served); release() gives it up. */
  lock(name: string, options: LockOptions = {}): Promise<Contender> {
    return contend(this, name, '', options);
  }

  /** Runs for leader of `election` with `value`; resolves once elected. resign() = release(). */
  campaign(election: string, value: Bytes, options: LockOptions = {}): Promise<Contender> {
    return contend(this, election, value, options);
  }

  /** The leader of `election` now and after every change (undefined while there is none). */
  observe(election: string): AsyncGenerator<ElectionLeader | undefined> {
    return observeElection(this, election);
  }

  async delete(key: Bytes, options: WriteOptions = {}): Promise<DeleteResult> {
    const res: DeleteResult = await this.write('Delete', { key: toBytes(key, 'key') }, options, 'delete');
    if (res.result?.op === 'delete') res.deleted = res.result.deleted;
    return res;
  }

  /** Delete every key with `prefix`, or in [start, end). */
  async deleteRange(range: RangeSpec, options: WriteOptions = {}): Promise<DeleteResult> {
    const res: DeleteResult = await this.write('DeleteRange', rangeToWire(range), options, 'deleteRange');
    if (res.result?.op === 'deleteRange') res.deleted = res.result.deleted;
    return res;
  }

  /**
   * Set key to `next` only if its value is `expected` (null: only if the key is absent). `next`
   * null deletes the key. Always sync: the point of a CAS is to learn whether it happened.
   */
  async cas(key: Bytes, expected: Bytes | null, next: Bytes | null, options: CallOptions = {}): Promise<CasResult> {
    const op: TxnOp = next === null ? { op: 'delete', key } : { op: 'put', key, value: next };
    const res = await this.txn(
      {
        compares: [expected === null ? { key, target: 'version', result: 'eq', number: 0 } : { key, target: 'value', result: 'eq', value: expected }],
        success: [op],
      },
      { ...options, durability: 'sync' },
    );
    return { ...res, succeeded: res.succeeded === true };
  }

  /** Atomic compare-then-ops. */
  async txn(spec: TxnSpec, options: WriteOptions = {}): Promise<TxnResult> {
    const request = {
      compares: (spec.compares ?? []).map(compareToWire),
      success: (spec.success ?? []).map(txnOpToWire),
      failure: (spec.failure ?? []).map(txnOpToWire),
    };
    const res: TxnResult = await this.write('Txn', request, options, 'txn');
    if (res.result?.op === 'txn') {
      res.succeeded = res.result.succeeded;
      res.results = res.result.results;
    }
    return res;
  }

  /** Resolves once an async write's entry is committed; rejects LostWriteError if it was dropped. */
  async waitFor(receipt: WriteReceipt, options: CallOptions = {}): Promise<void> {
    const { response } = await this.invoke<WireWaitForResponse>(
      'WaitFor',
      () => ({ term: receipt.term, index: receipt.index }),
      'leader',
      options,
      'waitFor',
      true,
    );
    if (response.outcome === 'OUTCOME_LOST') throw new LostWriteError(receipt.term, receipt.index);
    if (response.outcome !== 'OUTCOME_COMMITTED') {
      throw new RemoteError(grpc.status.UNKNOWN, '', `waitFor got an unknown outcome ${String(response.outcome)}`);
    }
    this.observeIndex(receipt.index);
  }

  // ---- reads ----

  /** The value of `key`, or undefined when it does not exist. */
  async get(key: Bytes, options: ReadOptions = {}): Promise<KvItem | undefined> {
    return (await this.getDetail(key, options)).item;
  }

  /** Like get, but also says who served the read and at which index when the key is absent. */
  async getDetail(key: Bytes, options: ReadOptions = {}): Promise<GetDetail> {
    const request = { key: toBytes(key, 'key'), ...readOptionsToWire(options, this.observed) };
    const { response: r } = await this.invoke<WireGetResponse>('Get', () => request, this.readRoute(options), options, 'get');
    this.observeIndex(r.appliedIndex);
    const detail: GetDetail = { servedBy: r.servedBy, appliedIndex: r.appliedIndex };
    if (r.found && r.kv) detail.item = itemFromWire(r.kv, r.servedBy, r.appliedIndex);
    return detail;
  }

  /** One page of keys in a range (by prefix, or [start, end); neither = the whole keyspace). */
  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    const request = {
      ...rangeToWire(options),
      limit: options.limit ?? 0,
      continueFrom: options.continueFrom ?? EMPTY,
      ...readOptionsToWire(options, this.observed),
    };
    const { response: r } = await this.invoke<WireScanResponse>('Scan', () => request, this.readRoute(options), options, 'scan');
    this.observeIndex(r.appliedIndex);
    const page: ScanPage = {
      items: r.items.map((kv) => itemFromWire(kv, r.servedBy, r.appliedIndex)),
      more: r.more,
      servedBy: r.servedBy,
      appliedIndex: r.appliedIndex,
    };
    if (r.more) page.continueFrom = r.continueFrom;
    return page;
  }

  /** Every key in the range, page by page (each page is its own read). */
  async *scanAll(options: ScanOptions = {}): AsyncGenerator<KvItem> {
    let continueFrom = options.continueFrom;
    for (;;) {
      const page = await this.scan({ ...options, ...(continueFrom ? { continueFrom } : {}) });
      yield* page.items;
      if (!page.more || !page.continueFrom) return;
      continueFrom = page.continueFrom;
    }
  }

  // ---- operations ----

  /** Status of every known node (configured endpoints and members they report), in parallel. */
  async status(options: CallOptions = {}): Promise<EndpointStatus[]> {
    this.assertOpen();
    const deadlineMs = positiveMs(options.deadlineMs, this.deadlineMs, 'deadlineMs');
    const deadline = Date.now() + deadlineMs;
    const results = new Map<string, EndpointStatus>();
    const ask = async (endpoint: string): Promise<void> => {
      try {
        const s = statusFromWire(await this.pool.call<WireStatusResponse>(endpoint, 'Status', {}, deadline));
        this.learnFrom(s);
        results.set(endpoint, { endpoint, status: s });
      } catch (e) {
        results.set(endpoint, { endpoint, error: statusToError(e as StatusLike, deadlineMs) });
      }
    };
    await Promise.all(this.pool.known().map(ask));
    // Members that only the nodes know about (e.g. a learner added later).
    const missing = this.pool.known().filter((a) => !results.has(a));
    await Promise.all(missing.map(ask));
    const order = this.pool.known();
    return order.filter((a) => results.has(a)).map((a) => results.get(a)!);
  }

  /** Hand leadership to node `to` (planned switchover). */
  async transferLeadership(to: string, options: CallOptions = {}): Promise<void> {
    await this.invoke('TransferLeadership', () => ({ to }), 'leader', options, 'transferLeadership');
    this.pool.forgetLeader();
  }

  // ---- membership (one server at a time; leader-routed) ----

  /**
   * Add a node: as a learner (`learner: true`, a non-voting replica to let it catch up), or as a
   * voter. Resolves with the resulting members once the leader applied the change; a change that
   * already holds (same role, same addresses) resolves at once, so retrying is safe. The new node
   * must be running (started with `join: true`) for it to catch up. Rejects with
   * ConfChangeRejectedError when the leader refuses (e.g. another change is still in flight).
   */
  async addMember(spec: AddMemberSpec, options: CallOptions = {}): Promise<Member[]> {
    if (!spec || typeof spec !== 'object') throw new ClientUsageError('addMember({ id, raftAddress, clientAddress, learner? }) is required');
    const request = {
      id: nodeIdArg(spec.id, 'addMember'),
      raftAddress: spec.raftAddress,
      clientAddress: spec.clientAddress,
      learner: spec.learner === true,
    };
    for (const field of ['raftAddress', 'clientAddress'] as const) {
      if (typeof request[field] !== 'string' || request[field] === '') throw new ClientUsageError(`addMember needs ${field} (host:port)`);
    }
    return this.changeMembership('AddMember', request, options, 'addMember');
  }

  /** Make learner `id` a voter (it keeps its addresses). Resolves with the resulting members. */
  async promote(id: string, options: CallOptions = {}): Promise<Member[]> {
    const request = { id: nodeIdArg(id, 'promote'), raftAddress: '', clientAddress: '', learner: false };
    return this.changeMembership('AddMember', request, options, 'promote');
  }

  /**
   * Remove voter or learner `id`. Resolves with the resulting members (at once when `id` is not a
   * member). To remove the leader, transfer leadership away first.
   */
  async removeMember(id: string, options: CallOptions = {}): Promise<Member[]> {
    return this.changeMembership('RemoveMember', { id: nodeIdArg(id, 'removeMember') }, options, 'removeMember');
  }

  /** The members as the leader reports them (any reachable node's view when no leader answers). */
  async members(options: CallOptions = {}): Promise<Member[]> {
    const all = await this.status(options);
    const answered = all.filter((s) => s.status);
    const best = answered.find((s) => s.status!.role === 'leader') ?? answered[0];
    if (!best) throw all[0]?.error ?? new ClusterUnavailableError(this.pool.known(), options.deadlineMs ?? this.deadlineMs);
    return best.status!.members.map((m) => ({ ...m, raftAddress: m.raftAddress ?? '' }));
  }

  /** Empty round trip to one node (the first endpoint unless given). */
  async ping(endpoint?: string, options: CallOptions = {}): Promise<void> {
    this.assertOpen();
    const deadlineMs = positiveMs(options.deadlineMs, this.deadlineMs, 'deadlineMs');
    try {
      await this.pool.call(endpoint ?? this.pool.endpoints[0]!, 'Ping', {}, Date.now() + deadlineMs);
    } catch (e) {
      throw statusToError(e as StatusLike, deadlineMs);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pool.close();
  }

  /** Ask every endpoint for the leader; best effort, bounded by timeoutMs. */
  async discoverLeader(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    await new Promise<void>((resolve) => {
      let pending = this.pool.endpoints.length;
      for (const ep of this.pool.endpoints) {
        this.pool
          .call<WireStatusResponse>(ep, 'Status', {}, deadline)
          .then((s) => {
            this.learnFrom(statusFromWire(s));
            if (this.pool.leaderAddress()) resolve();
          })
          .catch(() => undefined)
          .finally(() => {
            if (--pending === 0) resolve();
          });
      }
    });
    return this.pool.leaderAddress();
  }

  // ---- internals ----

  private readRoute(options: ReadOptions): Route {
    return options.consistency === 'follower' || options.consistency === 'session' ? 'roundRobin' : 'leader';
  }

  private observeIndex(index: number): void {
    if (Number.isSafeInteger(index) && index > this.observed) this.observed = index;
  }

  /** One node's view of leadership, for the hung-leader probe (no leader guess is changed). */
  private async leaderClaimOf(address: string, deadline: number, wait?: LeaderClaimWait): Promise<LeaderClaim> {
    const s = statusFromWire(await this.pool.call<WireStatusResponse>(address, 'Status', wait ?? {}, deadline));
    for (const m of s.members) this.pool.learnAddress(m.id, m.clientAddress);
    const leader = s.leaderClientAddress || (s.leaderId ? (this.pool.addressOf(s.leaderId) ?? '') : '');
    return { from: address, term: s.term, leader, isLeader: s.role === 'leader' };
  }

  /**
   * Await a leader-routed attempt, but once it has waited leaderProbeAfterMs ask the other nodes
   * whether a newer leader exists, and again every LEADER_PROBE_GAP_MS: a hung leader's call never
   * fails by itself before the attempt timeout. Resolves { moveTo } when one was found.
   */
  private async awaitOrMove<Res>(call: Promise<Res>, target: string, attemptDeadline: number): Promise<{ response: Res } | { moveTo: string }> {
    type Settled = { ok: true; value: Res } | { ok: false; error: unknown };
    const settled: Promise<Settled> = call.then(
      (value) => ({ ok: true, value }),
      (error: unknown) => ({ ok: false, error }),
    );
    const unwrap = (r: Settled): { response: Res } => {
      if (r.ok) return { response: r.value };
      throw r.error;
    };
    let waitMs = this.leaderProbeAfterMs;
    for (let round = 0; round < MAX_LEADER_PROBES && Date.now() + waitMs < attemptDeadline; round++) {
      let timer: NodeJS.Timeout | undefined;
      const first = await Promise.race([
        settled,
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), waitMs);
        }),
      ]);
      clearTimeout(timer);
      if (first) return unwrap(first);
      const roundStarted = Date.now();
      const next = await Promise.race([settled, this.leaderWatch.newerLeaderThan(target).then((found) => ({ found }))]);
      if ('ok' in next) return unwrap(next);
      if (next.found) return { moveTo: next.found.address };
      // A long-polled round already waited; one answered at once is followed by a pause.
      waitMs = Math.max(0, LEADER_PROBE_GAP_MS - (Date.now() - roundStarted));
    }
    return unwrap(await settled);
  }

  private learnFrom(s: NodeStatus): void {
    for (const m of s.members) this.pool.learnAddress(m.id, m.clientAddress);
    this.pool.learnAddress(s.id, s.clientAddress);
    if (s.role === 'leader' && s.clientAddress) this.pool.setLeader(s.clientAddress);
    else if (s.leaderClientAddress) this.pool.setLeader(s.leaderClientAddress);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientUsageError('the client is closed; connect() again');
  }

  private async changeMembership(method: KvMethodName, request: object, options: CallOptions, what: string): Promise<Member[]> {
    // One attempt gets the whole deadline: cutting a slow change short and retrying would only
    // meet ConfChangeRejectedError for the change still in flight.
    const { response } = await this.invoke<WireMembershipResponse>(method, () => request, 'leader', options, what, true);
    const members = membersFromWire(response.members);
    for (const m of members) this.pool.learnAddress(m.id, m.clientAddress);
    return members;
  }

  private async write(method: KvMethodName, body: object, options: WriteOptions, what: string): Promise<WriteResult> {
    const result = writeResultFromWire(await this.writeRaw<WireWriteResponse>(method, body, options, what));
    // The session watermark (consistency: 'session') covers what this client's writes applied.
    if (result.applied) this.observeIndex(Math.max(result.index, result.appliedAt ?? 0));
    return result;
  }

  private async writeRaw<Res>(method: KvMethodName, body: object, options: WriteOptions, what: string): Promise<Res> {
    this.assertOpen();
    const durability = options.durability ?? 'sync';
    const wireDurability = DURABILITY_TO_WIRE[durability];
    if (!wireDurability) throw new ClientUsageError(`durability must be sync or async, got ${String(durability)}`);
    // One seq for the write and all its retries: the node applies it at most once.
    const seq = this.session.begin();
    try {
      const { response } = await this.invoke<Res>(
        method,
        () => ({
          ...body,
          clientId: this.session.clientId,
          seq,
          firstUnacked: this.session.firstUnacked(),
          durability: wireDurability,
        }),
        'leader',
        options,
        what,
      );
      return response;
    } finally {
      this.session.end(seq);
    }
  }

  /**
   * Run one request with retries until its deadline. Leader-routed requests follow NotLeader
   * hints; any request moves to another node when one is unreachable or hangs past the attempt
   * timeout. Errors that retrying cannot fix are thrown at once.
   */
  private async invoke<Res>(
    method: KvMethodName,
    request: () => object,
    route: Route,
    options: CallOptions,
    what: string,
    fullAttempts = false,
  ): Promise<Attempted<Res>> {
    this.assertOpen();
    const deadlineMs = positiveMs(options.deadlineMs, this.deadlineMs, 'deadlineMs');
    const deadline = Date.now() + deadlineMs;
    let backoffMs = BACKOFF_START_MS;
    let electionPollMs = 10;
    // Hints followed since the last pause: following one twice means the hints go in circles.
    const followedHints = new Set<string>();
    let unreachableInRow = 0;
    // Whether any node actually took part (answered, or was connected when the attempt timed
    // out). If none did, running out of time means the cluster is unavailable, not slow.
    let reachedNode = false;
    let lastError: Error | undefined;
    const outOfTime = (): Error =>
      reachedNode || !lastError ? new DeadlineExceededError(deadlineMs, what) : new ClusterUnavailableError(this.pool.known(), deadlineMs, lastError);
    const staleNodes = new Set<string>();

    const sleepUpTo = async (ms: number): Promise<void> => {
      const wait = Math.min(ms * (0.5 + Math.random() / 2), deadline - Date.now());
      if (wait > 0) await sleep(wait);
    };
    const backoff = async (): Promise<void> => {
      await sleepUpTo(backoffMs);
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
    };
    const pollForLeader = async (asked: string): Promise<void> => {
      // An election is running. Ask the node that had no leader to answer once it knows one newer
      // than the newest we saw (a long poll), so the retry goes out the moment the winner is known.
      const newest = this.leaderWatch.newestLeaderTerm();
      if (newest > 0 && deadline - Date.now() > LEADER_PROBE_TIMEOUT_MS) {
        const claim = await this.leaderClaimOf(asked, Date.now() + LEADER_PROBE_TIMEOUT_MS, {
          leaderTermAbove: newest,
          waitMs: LEADER_LONG_POLL_MS,
        }).catch(() => undefined);
        const leader = claim ? claimedLeader(claim) : '';
        if (claim && leader && claim.term > newest) {
          this.pool.setLeader(leader);
          return;
        }
      }
      await sleepUpTo(electionPollMs);
      electionPollMs = Math.min(electionPollMs * 2, ELECTION_POLL_MAX_MS);
    };

    for (;;) {
      this.assertOpen();
      const now = Date.now();
      if (now >= deadline) throw outOfTime();
      const target = route === 'leader' ? this.pool.leaderTarget() : this.pool.nextRoundRobin();
      const attemptDeadline = fullAttempts ? deadline : Math.min(deadline, now + this.attemptTimeoutMs);
      try {
        const call = this.pool.call<Res>(target, method, request(), attemptDeadline);
        const watched = route === 'leader' && !fullAttempts;
        const outcome = watched ? await this.awaitOrMove(call, target, attemptDeadline) : { response: await call };
        if ('moveTo' in outcome) {
          // The node we waited on is hung or cut off and a newer leader exists: go there now, and
          // treat hints naming the hung node like hints naming a refusing one.
          reachedNode = true;
          this.hungLeaderMoves++;
          this.pool.forgetLeader(target);
          this.pool.markDown(target);
          this.pool.setLeader(outcome.moveTo);
          followedHints.clear();
          continue;
        }
        const response = outcome.response;
        this.pool.markUp(target);
        if (route === 'leader') this.pool.setLeader(target);
        const term = (response as { term?: unknown }).term;
        if (route === 'leader' && typeof term === 'number') this.leaderWatch.sawLeader(target, term);
        return { response, endpoint: target };
      } catch (e) {
        const err = statusToError(e as StatusLike, deadlineMs);
        lastError = err;
        if (isUnreachable(err)) {
          this.pool.forgetLeader(target);
          this.pool.markDown(target);
          // Try the other nodes at once; back off only after a whole round failed.
          if (++unreachableInRow >= this.pool.endpoints.length) {
            unreachableInRow = 0;
            await backoff();
          }
          continue;
        }
        unreachableInRow = 0;
        if (err instanceof DeadlineExceededError) {
          // A bare timeout on a channel that never connected did not reach the node.
          if (remoteErrorName(e as StatusLike) !== '' || this.pool.isConnected(target)) reachedNode = true;
          if (attemptDeadline >= deadline || Date.now() >= deadline) throw outOfTime();
          // Only this attempt timed out (a hung, partitioned or quorum-less node): look elsewhere,
          // and distrust hints that name it as we distrust hints naming a refusing node.
          this.pool.forgetLeader(target);
          this.pool.markDown(target);
          continue;
        }
        reachedNode = true;
        if (err instanceof NotLeaderError) {
          this.pool.forgetLeader(target);
          this.pool.markUp(target);
          const hinted = err.leaderAddress || (err.leaderId ? this.pool.addressOf(err.leaderId) : undefined);
          // A hint at a node that just refused us is the followers' stale memory of a dead leader.
          if (hinted && hinted !== target && !this.pool.isRecentlyDown(hinted, DOWN_WINDOW_MS)) {
            this.pool.learnAddress(err.leaderId, hinted);
            this.pool.setLeader(hinted);
            if (!followedHints.has(hinted)) {
              followedHints.add(hinted);
              continue;
            }
          }
          await pollForLeader(target); // no usable hint: an election is running
          followedHints.clear();
          continue;
        }
        if (err instanceof OverloadedError || err instanceof ProposalDroppedError) {
          await backoff();
          continue;
        }
        // A node that is too far behind, or whose copy of the data is damaged, cannot serve this
        // follower read; another node may. The leader route has nowhere else to go.
        if ((err instanceof StaleReadError || err instanceof ReplicaCorruptedError) && route === 'roundRobin') {
          staleNodes.add(target);
          if (staleNodes.size >= this.pool.endpoints.length) throw err;
          continue;
        }
        throw err;
      }
    }
  }
}
