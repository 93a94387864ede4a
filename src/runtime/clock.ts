// The runtime's only view of time. Two clocks, for two jobs:
//   now()          wall-clock ms since epoch: request deadlines (they come from clients as such);
//   monotonicMs()  never goes back and keeps running while the process is stopped (SIGSTOP, a
//                  stalled event loop): it judges leases, because a paused process loses timer
//                  callbacks, not time.
// The simulator supplies its own Clock so that it runs this very runtime over simulated time.
import type { DeadlineTimers } from './with-deadline.js';

export interface Clock extends DeadlineTimers {
  monotonicMs(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /**
   * Runs `fn` soon, after the current callback and its promise jobs, like Node's setImmediate.
   * Every deferral the runtime makes goes through here or the timers above (never the globals),
   * so a simulated clock decides the order of everything the runtime does.
   */
  setImmediate(fn: () => void): void;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  setImmediate: (fn) => {
    setImmediate(fn);
  },
};
