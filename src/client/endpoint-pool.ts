// One gRPC channel per node address, the current leader guess, and round-robin for follower reads.
// Calls are multiplexed over each channel; the SDK never opens a channel per request.
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition } from '../api/kv-proto.js';
import type { KvMethodDefinition, KvMethodName } from '../api/kv-proto.js';
import { CallStream } from './call-stream.js';
import { ClientUsageError } from '../api/errors.js';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Reconnect soon after a node restarts; the default backoff grows to two minutes.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  // Retries are the SDK's job (they must keep the seq and follow leader hints).
  'grpc.enable_retries': 0,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

/** `host:port` with a port in 1..65535; IPv6 hosts in brackets. */
export function checkEndpoint(endpoint: unknown): string {
  if (typeof endpoint !== 'string') throw new ClientUsageError(`endpoint must be a "host:port" string, got ${typeof endpoint}`);
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(endpoint.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new ClientUsageError(`endpoint "${endpoint}" is not "host:port" (e.g. 127.0.0.1:7001)`);
  }
  return endpoint.trim();
}

/** How long the leader search avoids an endpoint that refused a connection. */
const DOWN_SKIP_MS = 1_000;

export class EndpointPool {
  private readonly channels = new Map<string, grpc.Client>();
  /** The configured endpoints: follower reads and leader search rotate over these. */
  readonly endpoints: readonly string[];
  private leader: string | undefined;
  private rr = 0;
  private search = 0;
  private readonly addressById = new Map<string, string>();
  /** When each address last refused or dropped a connection (shared by every request). */
  private readonly downSince = new Map<string, number>();
  private closed = false;

  private readonly streams = new Map<string, CallStream>();

  constructor(
    endpoints: readonly string[],
    private readonly transport: 'stream' | 'unary' = 'stream',
    private readonly credentials = grpc.credentials.createInsecure(),
    /** Per-call metadata (e.g. the authorization header); a fresh copy for every call. */
    private readonly metadata: () => grpc.Metadata = () => new grpc.Metadata(),
  ) {
    if (endpoints.length === 0) throw new ClientUsageError('at least one endpoint is required');
    this.endpoints = [...new Set(endpoints.map(checkEndpoint))];
  }

  /** Every address known: configured ones first, then ones learned from leader hints and Status. */
  known(): string[] {
    const all = new Set(this.endpoints);
    for (const a of this.addressById.values()) all.add(a);
    if (this.leader) all.add(this.leader);
    return [...all];
  }

  leaderAddress(): string | undefined {
    return this.leader;
  }

  setLeader(address: string): void {
    if (address) this.leader = address;
  }

  /** Forget the leader guess if it is `address` (it failed or said it is not the leader). */
  forgetLeader(address?: string): void {
    if (address === undefined || this.leader === address) this.leader = undefined;
  }

  /** `address` just failed at the connection level: distrust leader hints that name it for a while. */
  markDown(address: string, now = Date.now()): void {
    this.downSince.set(address, now);
  }

  markUp(address: string): void {
    this.downSince.delete(address);
  }

  /**
   * Whether `address` failed within the last `windowMs`. After a leader dies, followers keep
   * naming it until their election timeout; following those hints only burns the deadline.
   */
  isRecentlyDown(address: string, windowMs: number, now = Date.now()): boolean {
    const since = this.downSince.get(address);
    return since !== undefined && now - since < windowMs;
  }

  learnAddress(id: string, address: string): void {
    if (id && address) this.addressById.set(id, address);
  }

  addressOf(id: string): string | undefined {
    return this.addressById.get(id);
  }

  /** Where a leader-only request goes: the leader if known, else the next endpoint in turn. */
  leaderTarget(): string {
    if (this.leader) return this.leader;
    return this.nextForSearch();
  }

  /**
   * Next endpoint while searching for the leader (independent of the follower-read rotation),
   * skipping endpoints that refused a connection within `DOWN_SKIP_MS` while any other remains.
   */
  nextForSearch(now = Date.now()): string {
    for (let tried = 0; tried < this.endpoints.length; tried++) {
      const ep = this.endpoints[this.search % this.endpoints.length]!;
      this.search = (this.search + 1) % this.endpoints.length;
      if (!this.isRecentlyDown(ep, DOWN_SKIP_MS, now)) return ep;
    }
    const ep = this.endpoints[this.search % this.endpoints.length]!;
    this.search = (this.search + 1) % this.endpoints.length;
    return ep;
  }

  /** Follower reads: rotate over the configured endpoints. */
  nextRoundRobin(): string {
    const ep = this.endpoints[this.rr % this.endpoints.length]!;
    this.rr = (this.rr + 1) % this.endpoints.length;
    return ep;
  }

  private channel(address: string): grpc.Client {
    if (this.closed) throw new ClientUsageError('the client is closed');
    let ch = this.channels.get(address);
    if (!ch) {
      ch = new grpc.Client(address, this.credentials, CHANNEL_OPTIONS);
      this.channels.set(address, ch);
    }
    return ch;
  }

  /** Whether the channel to `address` is connected right now (a call could have reached the node). */
  isConnected(address: string): boolean {
    const ch = this.channels.get(address);
    return ch !== undefined && ch.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
  }

  /** One unary call; rejects with the raw grpc ServiceError (the caller maps it). */
  call<Res>(address: string, method: KvMethodName, request: object, deadline: number): Promise<Res> {
    const ch = this.channel(address);
    if (this.transport === 'stream') {
      let stream = this.streams.get(address);
      if (!stream) {
        const methods = kvServiceDefinition();
        const callDefinition = (methods as unknown as Record<string, KvMethodDefinition>)['Call']!;
        stream = new CallStream(ch, callDefinition, methods, this.metadata);
        this.streams.set(address, stream);
      }
      return stream.call<Res>(method, request, deadline);
    }
    const def = kvServiceDefinition()[method];
    return new Promise<Res>((resolve, reject) => {
      ch.makeUnaryRequest<object, Res>(
        def.path,
        def.requestSerialize as (r: object) => Buffer,
        def.responseDeserialize as (b: Buffer) => Res,
        request,
        this.metadata(),
        { deadline },
        (err, res) => (err ? reject(err) : resolve(res as Res)),
      );
    });
  }

  /** A server-streaming call (Watch); the caller cancels it. */
  openStream<Res>(address: string, def: KvMethodDefinition, request: object): grpc.ClientReadableStream<Res> {
    const ch = this.channel(address);
    return ch.makeServerStreamRequest<object, Res>(
      def.path,
      def.requestSerialize as (r: object) => Buffer,
      def.responseDeserialize as (b: Buffer) => Res,
      request,
      this.metadata(),
      {},
    );
  }

  close(): void {
    this.closed = true;
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
  }
}
