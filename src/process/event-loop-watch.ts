// How late the event loop runs, measured once per process. A late loop delays heartbeats exactly
// like a slow network, so an unexpected election can be traced to its cause (GC, a long synchronous
// task, CPU starvation). One timer feeds both the metric and the stall log: every timer a node keeps
// costs it an event-loop wake-up per period (there used to be three monitors of the same thing).

/** The timer's period: how late it fires is the loop's delay. */
export const EVENT_LOOP_WATCH_EVERY_MS = 20;

export interface EventLoopWatchOptions {
  /** Every lateness, in ms (the quorumkv_event_loop_delay_seconds histogram). */
  observe(lateMs: number): void;
  /** A lateness of at least `stallMs`: logged as event_loop_stall. */
  onStall(lateMs: number): void;
  stallMs: number;
  everyMs?: number;
}

/** Starts the watch (its timer does not keep the process alive); returns the function that stops it. */
export function watchEventLoop(options: EventLoopWatchOptions): () => void {
  const everyMs = options.everyMs ?? EVENT_LOOP_WATCH_EVERY_MS;
  if (!(everyMs > 0) || !(options.stallMs > 0))
    throw new RangeError(`event-loop watch: everyMs (${everyMs}) and stallMs (${options.stallMs}) must be positive`);
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = Math.max(0, now - last - everyMs);
    last = now;
    options.observe(late);
    if (late >= options.stallMs) options.onStall(late);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
