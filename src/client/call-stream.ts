// The SDK's default transport: one long-lived Call stream per node carrying many requests at once,
// matched by id (the bench measured it about 6x cheaper per call than grpc-js unary calls). Each
// request keeps its own deadline; failures look exactly like a unary call's (a StatusLike with
// code, details and the typed-error metadata), so retries and error mapping do not change.
import * as grpc from '@grpc/grpc-js';
import type { KvMethodDefinition, KvMethodName } from '../api/kv-proto.js';

interface Pending {
  resolve: (response: unknown) => void;
  reject: (status: { code: number; details: string; metadata: grpc.Metadata }) => void;
  method: KvMethodName;
  timer: NodeJS.Timeout;
}

interface WireCallResponse {
  id: number;
  code: number;
  payload: Buffer;
  details: string;
  metadata: Record<string, string>;
}

function status(code: number, details: string, metadata = new grpc.Metadata()) {
  return { code, details, metadata };
}

export class CallStream {
  private stream: grpc.ClientDuplexStream<object, WireCallResponse> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly channel: grpc.Client,
    private readonly callDefinition: KvMethodDefinition,
    private readonly methods: Record<KvMethodName, KvMethodDefinition>,
    /** Sent when the stream opens (credentials): every call on it runs as that caller. */
    private readonly metadata: () => grpc.Metadata = () => new grpc.Metadata(),
  ) {}

  call<Res>(method: KvMethodName, request: object, deadline: number): Promise<Res> {
    const def = this.methods[method];
    return new Promise<Res>((resolve, reject) => {
      const timeoutMs = Math.max(0, deadline - Date.now());
      if (timeoutMs === 0) {
        reject(status(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(status(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject, method, timer });
      let payload: Buffer;
      try {
        payload = (def.requestSerialize as (r: object) => Buffer)(request);
      } catch (err) {
        this.settle(id)?.reject(status(grpc.status.INTERNAL, `cannot encode ${method}Request: ${(err as Error).message}`));
        return;
      }
      this.open().write({ id, method, payload, timeoutMs });
    });
  }

  private open(): grpc.ClientDuplexStream<object, WireCallResponse> {
    if (this.stream) return this.stream;
    const def = this.callDefinition;
    const stream = this.channel.makeBidiStreamRequest<object, WireCallResponse>(
      def.path,
      def.requestSerialize as (r: object) => Buffer,
      def.responseDeserialize as (b: Buffer) => WireCallResponse,
      this.metadata(),
    );
    this.stream = stream;
    stream.on('data', (message: WireCallResponse) => this.onResponse(message));
    const broken = (err?: grpc.ServiceError): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      // Everything still waiting on this stream failed in transit, like a unary call on a broken
      // connection: UNAVAILABLE (or the stream's own status) so the SDK retries elsewhere.
      const code = err?.code !== undefined && err.code !== grpc.status.OK ? err.code : grpc.status.UNAVAILABLE;
      const details = err?.details || 'the call stream to this node ended';
      // The stream's own status keeps its typed-error metadata (e.g. UnauthenticatedError at open).
      const metadata = err?.metadata instanceof grpc.Metadata ? err.metadata : new grpc.Metadata();
      for (const id of [...this.pending.keys()]) this.settle(id)?.reject(status(code, details, metadata));
    };
    stream.on('error', (err: grpc.ServiceError) => broken(err));
    stream.on('end', () => broken());
    return stream;
  }

  private onResponse(message: WireCallResponse): void {
    const pending = this.settle(message.id);
    if (!pending) return; // timed out already
    if (message.code === grpc.status.OK) {
      try {
        pending.resolve(this.methods[pending.method].responseDeserialize(message.payload));
      } catch (err) {
        pending.reject(status(grpc.status.INTERNAL, `cannot decode ${pending.method}Response: ${(err as Error).message}`));
      }
      return;
    }
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(message.metadata ?? {})) metadata.set(key, value);
    pending.reject(status(message.code, message.details, metadata));
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }

  close(): void {
    const stream = this.stream;
    this.stream = undefined;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(status(grpc.status.CANCELLED, 'the client was closed'));
    stream?.cancel();
  }
}
