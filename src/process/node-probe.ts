// A minimal client for ONE node's KV gRPC service, with no leader routing or retries: the cluster
// launcher polls Status through it, and the integration tests use it to talk to a chosen node
// (e.g. a follower read on n3). Applications should use the SDK (src/client/).
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition, type WireStatusResponse } from '../api/kv-proto.js';

/** A node's Status answer as it comes off the wire. */
export type ProbeStatus = WireStatusResponse;

export interface ProbeWrite {
  term: number;
  index: number;
  applied: boolean;
}

export interface ProbeGet {
  found: boolean;
  value?: string;
  servedBy: string;
  appliedIndex: number;
}

export type ProbeConsistency = 'linearizable' | 'lease' | 'follower';

/** A failed call: gRPC status code plus the server's error name when it sent one. */
export class ProbeCallError extends Error {
  override name = 'ProbeCallError';
  constructor(
    readonly method: string,
    readonly code: number,
    readonly errorName: string,
    details: string,
  ) {
    super(`${method} failed: ${errorName || grpc.status[code] || code}: ${details}`);
  }
}

type UnaryFn = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

let ctor: grpc.ServiceClientConstructor | undefined;

export class NodeProbe {
  private readonly client: grpc.Client;

  constructor(
    readonly address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    ctor ??= grpc.makeClientConstructor(kvServiceDefinition() as unknown as grpc.ServiceDefinition, 'KV');
    this.client = new ctor(address, credentials);
  }

  close(): void {
    this.client.close();
  }

  private call<T>(method: string, req: object, timeoutMs: number): Promise<T> {
    const fn = (this.client as unknown as Record<string, UnaryFn>)[method]!.bind(this.client);
    return new Promise<T>((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) {
          const name = err.metadata?.get('error-name')[0] ?? err.metadata?.get('quorumkv-error')[0] ?? '';
          reject(new ProbeCallError(method, err.code, String(name), err.details || err.message));
        } else resolve(res as T);
      });
    });
  }

  async status(timeoutMs = 1000): Promise<ProbeStatus> {
    const r = await this.call<ProbeStatus>('Status', {}, timeoutMs);
    return { ...r, term: Number(r.term), commitIndex: Number(r.commitIndex), appliedIndex: Number(r.appliedIndex), lastIndex: Number(r.lastIndex) };
  }

  async put(
    key: string,
    value: string,
    options: { clientId?: string; seq?: number; durability?: 'sync' | 'async'; timeoutMs?: number } = {},
  ): Promise<ProbeWrite> {
    const r = await this.call<{ term: number; index: number; applied: boolean }>(
      'Put',
      {
        key: Buffer.from(key),
        value: Buffer.from(value),
        clientId: options.clientId ?? '',
        seq: options.seq ?? 0,
        firstUnacked: options.seq ?? 0,
        durability: options.durability === 'async' ? 'DURABILITY_ASYNC' : 'DURABILITY_SYNC',
      },
      options.timeoutMs ?? 3000,
    );
    return { term: Number(r.term), index: Number(r.index), applied: r.applied };
  }

  async get(key: string, options: { consistency?: ProbeConsistency; minIndex?: number; maxLagMs?: number; timeoutMs?: number } = {}): Promise<ProbeGet> {
    const consistency = { linearizable: 'CONSISTENCY_LINEARIZABLE', lease: 'CONSISTENCY_LEASE', follower: 'CONSISTENCY_FOLLOWER' }[
      options.consistency ?? 'linearizable'
    ];
    const req: Record<string, unknown> = { key: Buffer.from(key), consistency, minIndex: options.minIndex ?? 0 };
    if (options.maxLagMs !== undefined) req.maxLagMs = options.maxLagMs;
    const r = await this.call<{ found: boolean; kv?: { value: Buffer }; servedBy: string; appliedIndex: number }>('Get', req, options.timeoutMs ?? 3000);
    return {
      found: r.found,
      value: r.found && r.kv ? Buffer.from(r.kv.value).toString() : undefined,
      servedBy: r.servedBy,
      appliedIndex: Number(r.appliedIndex),
    };
  }
}
