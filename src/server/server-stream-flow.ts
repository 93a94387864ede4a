// Flow control for a server-streaming call: a write that gRPC cannot take now waits for 'drain',
// and the call's cancellation (or close) aborts a signal that also releases any such wait. What a
// slow reader costs is then one message, not a buffer that grows with its backlog.
import type * as grpc from '@grpc/grpc-js';

export interface ServerStreamFlow<M extends object> {
  /** Aborted once the client cancels or the call closes. */
  readonly signal: AbortSignal;
  /** Writes one message; resolves once gRPC can take the next one (or the call is gone). */
  send(message: M): Promise<void>;
  /** Detaches the cancellation listeners (call once the call is finished). */
  release(): void;
}

export function serverStreamFlow<M extends object>(call: grpc.ServerWritableStream<Buffer, object>): ServerStreamFlow<M> {
  const controller = new AbortController();
  const signal = controller.signal;
  const onCancel = (): void => controller.abort();
  call.once('cancelled', onCancel);
  call.once('close', onCancel);
  const writable = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const done = (): void => {
        call.removeListener('drain', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      call.once('drain', done);
      signal.addEventListener('abort', done, { once: true });
    });
  return {
    signal,
    send: async (message: M): Promise<void> => {
      if (!call.write(message)) await writable();
    },
    release: (): void => {
      call.removeListener('cancelled', onCancel);
      call.removeListener('close', onCancel);
    },
  };
}
