// The one deadline race of the runtime. Everything a request parks (a pending proposal, an
// applied-index waiter, a read-index slot, a transfer waiter) is registered by the caller and
// removed again through `cancel` when the deadline wins, so nothing outlives its deadline.

export interface DeadlineTimers {
  /** Wall-clock ms since epoch: request deadlines are absolute wall-clock times. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: DeadlineTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Settles like `work`, unless `deadline` passes first: then rejects with `timeoutError()` and calls
 * `cancel()` so the caller can unregister what `work` waits on. A late outcome of `work` is ignored.
 */
export function withDeadline<T>(
  work: Promise<T>,
  deadline: number,
  timers: DeadlineTimers,
  timeoutError: () => Error,
  cancel?: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const handle = timers.setTimeout(() => {
      if (done) return;
      done = true;
      cancel?.();
      reject(timeoutError());
    }, Math.max(0, deadline - timers.now()));
    work.then(
      (value) => {
        if (done) return;
        done = true;
        timers.clearTimeout(handle);
        resolve(value);
      },
      (err: unknown) => {
        if (done) return;
        done = true;
        timers.clearTimeout(handle);
        reject(err);
      },
    );
  });
}
