// kv.keepAlive(lease): renews a lease in the background (every third of its TTL) until stopped or
// until the lease is found gone. A failed renewal is retried at the next beat; the lease only ends
// if no renewal reaches a leader for a whole TTL.
import { LeaseNotFoundError } from '../api/errors.js';

export interface KeepAliveOptions {
  /** Renew this often (default ttl/3, at least 100 ms). */
  intervalMs?: number;
  /** Called once when the lease is found gone (expired or revoked): renewing has stopped. */
  onLost?: (err: LeaseNotFoundError) => void;
  /** Called when a renewal fails for another reason (it is retried at the next beat). */
  onError?: (err: Error) => void;
}

export interface KeepAliveHandle {
  readonly lease: number;
  /** Stops renewing (the lease then expires after its TTL unless revoked). */
  stop(): void;
  /** Resolves when renewing has stopped: stop() was called or the lease was lost. */
  readonly done: Promise<void>;
}

export function startKeepAlive(
  lease: number,
  ttlMs: number,
  renew: (lease: number, deadlineMs: number) => Promise<number>,
  options: KeepAliveOptions = {},
): KeepAliveHandle {
  const interval = Math.max(100, options.intervalMs ?? Math.floor(ttlMs / 3));
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer) clearTimeout(timer);
    finish();
  };
  const beat = async (): Promise<void> => {
    if (stopped) return;
    try {
      await renew(lease, interval);
    } catch (err) {
      if (stopped) return;
      if (err instanceof LeaseNotFoundError) {
        stop();
        options.onLost?.(err);
        return;
      }
      options.onError?.(err as Error);
    }
    if (!stopped) timer = setTimeout(() => void beat(), interval);
  };
  void beat();
  return { lease, stop, done };
}
