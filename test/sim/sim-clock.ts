// Simulated time for the real runtime. One SimScheduler holds every pending event of a run (timers,
// immediates, network deliveries, disk completions, client requests) in one queue ordered by
// (time, insertion); it runs them one at a time and lets the promise jobs each one started finish
// before the next (see drain()), so the interleaving of everything the runtimes do is a function
// of the seed alone.
//
// Each node process has a SimProcess (its event loop: alive, or frozen like a SIGSTOPped process)
// and a NodeClock (the runtime's Clock): local time runs at the node's own rate and keeps running
// while the process is frozen; timers and immediates only fire while it runs. A frozen process's
// due events are parked and released, in a seeded order, when it resumes — as a stopped process
// finds its expired timers and readable sockets all at once after SIGCONT.
import type { Clock } from '../../src/runtime/clock.js';

export type EventKind = 'timer' | 'immediate' | 'io' | 'sim';

interface SimEvent {
  time: number;
  seq: number;
  kind: EventKind;
  /** Events of one source (a peer's stream, one client) keep their order when a frozen process resumes. */
  source: string | undefined;
  owner: SimProcess | undefined;
  fn: () => void;
  cancelled: boolean;
}

/** How a frozen process's parked events are released when it resumes. */
export interface ResumeOrder {
  /** Expired timers before the I/O that arrived meanwhile, or after it. */
  timersFirst: boolean;
  /** Picks one of n ready sources: I/O from different sources (sockets) is interleaved at random. */
  pick(n: number): number;
}

export class SimProcess {
  alive = true;
  frozenUntil = -1;
  parked: SimEvent[] = [];

  constructor(
    readonly name: string,
    readonly incarnation: number,
  ) {}

  get frozen(): boolean {
    return this.frozenUntil >= 0;
  }
}

export class SimScheduler {
  /** Global simulated time in ms. */
  now = 0;
  private heap: SimEvent[] = [];
  private seq = 0;
  /** Events run so far. */
  executed = 0;

  at(time: number, kind: EventKind, owner: SimProcess | undefined, fn: () => void, source?: string): SimEvent {
    const ev: SimEvent = { time: Math.max(time, this.now), seq: this.seq++, kind, source, owner, fn, cancelled: false };
    this.push(ev);
    return ev;
  }

  cancel(ev: SimEvent | undefined): void {
    if (ev) ev.cancelled = true;
  }

  /** Freeze `proc` (SIGSTOP) until global time `until`. */
  freeze(proc: SimProcess, until: number, order: () => ResumeOrder): void {
    proc.frozenUntil = until;
    this.at(until, 'sim', undefined, () => {
      if (proc.frozen && proc.alive) this.resume(proc, order());
    });
  }

  /** SIGCONT: release what came due while it was stopped (timers and I/O in the order given). */
  resume(proc: SimProcess, order: ResumeOrder): void {
    if (!proc.frozen) return;
    proc.frozenUntil = -1;
    const parked = proc.parked;
    proc.parked = [];
    const timers = parked.filter((e) => e.kind === 'timer');
    // I/O: per source in arrival order, sources interleaved at random (as epoll reports sockets).
    const queues = new Map<string, SimEvent[]>();
    for (const e of parked) {
      if (e.kind === 'timer') continue;
      const key = e.source ?? `#${e.seq}`;
      const q = queues.get(key);
      if (q) q.push(e);
      else queues.set(key, [e]);
    }
    const ready = [...queues.values()];
    const io: SimEvent[] = [];
    while (ready.length > 0) {
      const i = order.pick(ready.length);
      const q = ready[i]!;
      io.push(q.shift()!);
      if (q.length === 0) ready.splice(i, 1);
    }
    for (const ev of order.timersFirst ? [...timers, ...io] : [...io, ...timers]) {
      if (ev.cancelled) continue;
      ev.time = this.now;
      ev.seq = this.seq++;
      this.push(ev);
    }
  }

  /**
   * Runs events in order until `stop()` holds (checked after each) or none is left. After each
   * event the promise jobs it queued run to completion (drain), so an event's effects are whole
   * before the next one starts. Returns false when the queue ran dry.
   */
  async run(stop: () => boolean): Promise<boolean> {
    for (;;) {
      const ev = this.pop();
      if (!ev) return false;
      if (ev.cancelled) continue;
      const owner = ev.owner;
      if (owner && !owner.alive) continue;
      if (owner?.frozen) {
        owner.parked.push(ev);
        continue;
      }
      this.now = ev.time;
      this.executed++;
      ev.fn();
      await drain();
      if (stop()) return true;
    }
  }

  get pending(): number {
    return this.heap.length;
  }

  // ---- binary heap on (time, seq) --------------------------------------------------------------

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/**
 * Lets every promise job queued so far, and every job those queue, run: a macrotask (the real
 * setImmediate) only starts once the microtask queue is empty. Nothing else in a simulation uses
 * real timers or I/O, so no outside callback can interleave.
 */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Wall clock of simulated time zero (any fixed value: deadlines are absolute wall-clock ms). */
export const SIM_EPOCH_MS = 1_700_000_000_000;

export interface NodeClockOptions {
  /** Local time runs this many ms per global ms (clock-rate drift; 1 = exact). */
  rate: number;
  /**
   * Mutation check: the monotonic clock stops while the process is frozen — what a lease judged
   * on a clock that loses time during SIGSTOP would see. Never true outside that check.
   */
  monotonicStopsWhenFrozen?: boolean;
}

/** The runtime's Clock for one process incarnation, over the scheduler's global time. */
export class NodeClock implements Clock {
  /** Local time at global time `baseGlobal`. */
  private readonly baseLocal: number;
  private readonly baseGlobal: number;
  /** Global ms the process spent frozen (for the monotonicStopsWhenFrozen mutation only). */
  private frozenMs = 0;
  private frozenSince = -1;

  constructor(
    private readonly sched: SimScheduler,
    readonly proc: SimProcess,
    private readonly options: NodeClockOptions,
    /** Local time this incarnation starts at (a restarted node's clock does not go back). */
    startLocal: number,
  ) {
    this.baseLocal = startLocal;
    this.baseGlobal = sched.now;
  }

  /** Local ms now. */
  local(): number {
    return this.baseLocal + (this.sched.now - this.baseGlobal) * this.options.rate;
  }

  private globalAt(local: number): number {
    return this.baseGlobal + Math.ceil((local - this.baseLocal) / this.options.rate);
  }

  noteFrozen(frozen: boolean): void {
    if (frozen && this.frozenSince < 0) this.frozenSince = this.sched.now;
    if (!frozen && this.frozenSince >= 0) {
      this.frozenMs += this.sched.now - this.frozenSince;
      this.frozenSince = -1;
    }
  }

  // Own properties (arrow functions), not prototype methods: callers may spread a Clock.
  now = (): number => SIM_EPOCH_MS + Math.floor(this.local());

  monotonicMs = (): number => {
    if (!this.options.monotonicStopsWhenFrozen) return this.local();
    const frozen = this.frozenMs + (this.frozenSince >= 0 ? this.sched.now - this.frozenSince : 0);
    return this.local() - frozen * this.options.rate;
  };

  setTimeout = (fn: () => void, ms: number): unknown => {
    return this.sched.at(this.globalAt(this.local() + Math.max(1, ms)), 'timer', this.proc, fn);
  };

  clearTimeout = (handle: unknown): void => {
    this.sched.cancel(handle as SimEvent | undefined);
  };

  setInterval = (fn: () => void, ms: number): unknown => {
    const period = Math.max(1, ms);
    const handle: { ev: SimEvent | undefined; cleared: boolean } = { ev: undefined, cleared: false };
    const arm = () => {
      handle.ev = this.sched.at(this.globalAt(this.local() + period), 'timer', this.proc, () => {
        if (handle.cleared) return;
        // Like Node: the next run is one period after this one started, however late it fired.
        arm();
        fn();
      });
    };
    arm();
    return handle;
  };

  clearInterval = (handle: unknown): void => {
    const h = handle as { ev: SimEvent | undefined; cleared: boolean } | undefined;
    if (!h) return;
    h.cleared = true;
    this.sched.cancel(h.ev);
  };

  setImmediate = (fn: () => void): void => {
    this.sched.at(this.sched.now, 'immediate', this.proc, fn);
  };
}
