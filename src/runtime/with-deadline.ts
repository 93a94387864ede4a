// The one deadline race of the runtime. Everything a request parks (a pending proposal, an
// applied-index waiter, a read-index slot, a transfer waiter) is registered by the caller and
// removed again through `cancel` when the deadline wins or the request is cancelled, so nothing
// outlives its deadline or its client.
import { RequestCancelledError } from '../api/errors.js';

export interface DeadlineTimers {
  /** Wall-clock ms since epoch: request deadlines are absolute wall-clock times. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Settles like `work`, unless `deadline` passes first or `signal` aborts (the client cancelled or
 * went away): then rejects with `timeoutError()` (or RequestCancelledError) and calls `cancel()` so
 * the caller can unregister what `work` waits on. A late outcome of `work` is ignored.
 */
export function withDeadline<T>(
  work: Promise<T>,
  deadline: number,
  timers: DeadlineTimers,
  timeoutError: () => Error,
  cancel?: () => void,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const settle = (): boolean => {
      if (done) return false;
      done = true;
      timers.clearTimeout(handle);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!settle()) return;
      cancel?.();
      reject(new RequestCancelledError());
    };
    const handle = timers.setTimeout(
      () => {
        if (!settle()) return;
        cancel?.();
        reject(timeoutError());
      },
      Math.max(0, deadline - timers.now()),
    );
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        if (settle()) resolve(value);
      },
      (err: unknown) => {
        if (settle()) reject(err);
      },
    );
  });
}
