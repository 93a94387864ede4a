// How late the event loop runs, measured once per process. A late loop delays heartbeats exactly
// like a slow network, so an unexpected election can be traced to its cause (GC, a long synchronous
// task, CPU starvation). One timer feeds both the metric and the stall log: every timer a node keeps
// costs it an event-loop wake-up per period (there used to be three monitors of the same thing).
//
// A stall is attributed from the main thread's scheduler statistics (/proc/thread-self/schedstat,
// Linux): the time it ran on a CPU and the time it waited, runnable, for one. A loop that was late
// because other processes held every core (waitingForCpuMs) is a different problem from one that
// was late because the node itself ran a long task (onCpuMs): the first is the machine's, the
// second the code's.
import { closeSync, openSync, readSync } from 'node:fs';

/** The timer's period: how late it fires is the loop's delay. */
export const EVENT_LOOP_WATCH_EVERY_MS = 20;

/** Where the main thread's time went over a stall's window, when the platform says. */
export interface StallAttribution {
  /** Time it ran on a CPU (JavaScript, GC, synchronous native calls). */
  onCpuMs: number;
  /** Time it was runnable but waited for a CPU (other threads or processes held them). */
  waitingForCpuMs: number;
}

export interface EventLoopWatchOptions {
  /** Every lateness, in ms (the quorumkv_event_loop_delay_seconds histogram). */
  observe(lateMs: number): void;
  /** A lateness of at least `stallMs`: logged as event_loop_stall, with where the time went if known. */
  onStall(lateMs: number, attribution: StallAttribution | undefined): void;
  stallMs: number;
  everyMs?: number;
  /** The thread's cumulative [on-CPU ns, waiting ns] (default: /proc/thread-self/schedstat, or none off Linux). */
  schedClock?: () => [number, number] | undefined;
}

/** Reads the calling thread's schedstat through one open descriptor (one pread per call); undefined where it does not exist. */
export function procSchedClock(): { read: () => [number, number] | undefined; close: () => void } {
  let fd: number | undefined;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return { read: () => undefined, close: () => undefined };
  }
  const buf = Buffer.alloc(128);
  return {
    read: () => {
      if (fd === undefined) return undefined;
      try {
        const n = readSync(fd, buf, 0, buf.length, 0);
        const [run, wait] = buf.toString('latin1', 0, n).split(' ');
        const r = Number(run);
        const w = Number(wait);
        return Number.isFinite(r) && Number.isFinite(w) ? [r, w] : undefined;
      } catch {
        return undefined;
      }
    },
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** Starts the watch (its timer does not keep the process alive); returns the function that stops it. */
export function watchEventLoop(options: EventLoopWatchOptions): () => void {
  const everyMs = options.everyMs ?? EVENT_LOOP_WATCH_EVERY_MS;
  if (!(everyMs > 0) || !(options.stallMs > 0))
    throw new RangeError(`event-loop watch: everyMs (${everyMs}) and stallMs (${options.stallMs}) must be positive`);
  const own = options.schedClock ? undefined : procSchedClock();
  const sched = options.schedClock ?? own!.read;
  let last = performance.now();
  let lastSched = sched();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = Math.max(0, now - last - everyMs);
    last = now;
    const s = sched();
    const attribution =
      s && lastSched ? { onCpuMs: Math.round((s[0] - lastSched[0]) / 1e5) / 10, waitingForCpuMs: Math.round((s[1] - lastSched[1]) / 1e5) / 10 } : undefined;
    lastSched = s;
    options.observe(late);
    if (late >= options.stallMs) options.onStall(late, attribution);
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    own?.close();
  };
}
