// The seeded nemesis: one fault at a time, on a healthy cluster, chosen and timed from the seed.
// Each fault is injected, held, healed, and then the cluster gets a quiet period before the next.
import { unsafeUniformIntDistribution, xoroshiro128plus } from 'pure-rand';
import type { RandomGenerator } from 'pure-rand';
import type { KvClient } from '../client/kv-client.js';
import type { DrillCluster } from './drill-cluster.js';
import { FAULT_KINDS } from './history.js';
import type { FaultKind, FaultRecord } from './history.js';

export interface NemesisOptions {
  seed: number;
  /** Election timeout's upper end (ms): a pause must outlast it. */
  electionTimeoutMaxMs: number;
  clock: () => number;
  /** Faults to draw from (default: all). */
  kinds?: readonly FaultKind[];
  log: (line: string) => void;
}

export class NemesisError extends Error {
  override name = 'NemesisError';
}

interface LeaderView {
  id: string;
  term: number;
  followers: string[];
}

const HEALTHY_TIMEOUT_MS = 20_000;
const ELECTION_WATCH_MS = 10_000;
const ELECTION_POLL_DEADLINE_MS = 80;
const CATCH_UP_WAIT_MS = 8_000;
/** A follower this many entries behind the leader or fewer counts as caught up. */
const CAUGHT_UP_LAG = 50;

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  private readonly rng: RandomGenerator;
  private readonly kinds: readonly FaultKind[];
  private readonly watchers: Promise<void>[] = [];
  private catchUpDeadline = 0;

  /** cluster undefined: a cluster the drill did not start; only switchovers (through the SDK) apply. */
  constructor(
    private readonly cluster: DrillCluster | undefined,
    private readonly admin: KvClient,
    private readonly options: NemesisOptions,
  ) {
    this.rng = xoroshiro128plus(options.seed);
    this.scheduleRng = xoroshiro128plus((options.seed * 7919 + 1) | 0);
    this.kinds = options.kinds ?? FAULT_KINDS;
    if (this.kinds.length === 0) throw new NemesisError('the nemesis needs at least one fault kind');
  }

  private int(lo: number, hi: number): number {
    return unsafeUniformIntDistribution(lo, hi, this.rng);
  }

  /**
   * The schedule: every kind once in a seeded order, then again in another, so each kind is hit
   * early. Its own generator, so the schedule does not depend on the cluster's answers.
   */
  private readonly scheduleRng: RandomGenerator;
  private readonly schedule: FaultKind[] = [];

  private kindAt(i: number): FaultKind {
    while (this.schedule.length <= i) this.schedule.push(...shuffle([...this.kinds], (n) => unsafeUniformIntDistribution(0, n - 1, this.scheduleRng)));
    return this.schedule[i]!;
  }

  /** The first `n` faults the seed schedules (printed at start so a run can be reproduced). */
  preview(n: number): FaultKind[] {
    return Array.from({ length: n }, (_, i) => this.kindAt(i));
  }

  /**
   * Runs faults until `until` (drill clock, ms), leaving the last 4 s quiet — but always at least
   * one round of every kind, so a short drill on a slow machine still covers them all.
   */
  async run(until: number): Promise<void> {
    const more = () => this.options.clock() < until - 4_000 || this.faults.length < this.kinds.length;
    while (more()) {
      await this.waitHealthy();
      if (!more()) break;
      await this.inject(this.kindAt(this.faults.length));
      await sleep(this.int(600, 1_200));
    }
    await this.waitHealthy();
    await this.settle();
  }

  /** Every process up and resumed, every link healed, and a leader that a majority follows. */
  async waitHealthy(): Promise<LeaderView> {
    const cluster = this.cluster;
    if (cluster) {
      cluster.healAll();
      for (const n of cluster.nodes) {
        cluster.resume(n.id);
        if (!cluster.isRunning(n.id)) await cluster.restart(n.id);
      }
    }
    const deadline = Date.now() + HEALTHY_TIMEOUT_MS;
    // Past this, a leader followed by a majority is enough (a node may be slow to catch up).
    this.catchUpDeadline = Date.now() + CATCH_UP_WAIT_MS;
    for (;;) {
      const view = await this.leader().catch(() => undefined);
      if (view) return view;
      if (Date.now() > deadline) throw new NemesisError(`no leader followed by a majority within ${HEALTHY_TIMEOUT_MS} ms after healing every fault`);
      await sleep(100);
    }
  }

  private async leader(): Promise<LeaderView | undefined> {
    const all = await this.admin.status({ deadlineMs: 1_000 });
    const up = all.filter((s) => s.status).map((s) => s.status!);
    const leaders = up.filter((s) => s.role === 'leader').sort((a, b) => b.term - a.term);
    const l = leaders[0];
    if (!l) return undefined;
    const voters = l.members.filter((m) => m.voter).map((m) => m.id);
    const agree = up.filter((s) => s.leaderId === l.id && s.term === l.term).length;
    if (agree < Math.floor(voters.length / 2) + 1) return undefined;
    // Each fault is measured on its own: the previous one's node must have caught up first (a
    // switchover to a follower still being rebuilt would measure the rebuild).
    const behind = (l.followers ?? []).filter((f) => f.lag > CAUGHT_UP_LAG);
    if (this.cluster && (agree < voters.length || behind.length > 0) && Date.now() < this.catchUpDeadline) return undefined;
    return { id: l.id, term: l.term, followers: voters.filter((id) => id !== l.id) };
  }

  /** In the background: when a leader of a newer term first shows up (splits RTO into election and client catch-up). */
  private watchElection(f: FaultRecord): void {
    const until = Date.now() + ELECTION_WATCH_MS;
    const poll = async (): Promise<void> => {
      while (Date.now() < until) {
        // A short deadline: the hung node's own answer must not space the polls out.
        const all = await this.admin.status({ deadlineMs: ELECTION_POLL_DEADLINE_MS }).catch(() => []);
        if (all.some((s) => s.status && s.status.role === 'leader' && s.status.term > (f.termAtFault ?? 0))) {
          f.electedMs = Math.round(this.options.clock() - f.start);
          return;
        }
        await sleep(10);
      }
    };
    this.watchers.push(poll());
  }

  /** Resolves once every election watcher has finished. */
  async settle(): Promise<void> {
    await Promise.all(this.watchers.splice(0));
  }

  private async inject(kind: FaultKind): Promise<void> {
    const view = await this.waitHealthy();
    const follower = view.followers[this.int(0, view.followers.length - 1)]!;
    const other = view.followers.find((f) => f !== follower)!;
    const hold = this.int(800, 1_500);
    const pauseMs = this.options.electionTimeoutMaxMs + this.int(400, 1_000);
    const c = this.cluster;
    if (!c && kind !== 'switchover') throw new NemesisError(`fault ${kind} needs a cluster the drill started; a given cluster only gets switchovers`);
    const record = (target: string, leaderLoss: boolean): FaultRecord => {
      const f: FaultRecord = { kind, target, start: this.options.clock(), leaderLoss };
      if (leaderLoss) {
        f.termAtFault = view.term;
        this.watchElection(f);
      }
      this.faults.push(f);
      return f;
    };
    const healed = (f: FaultRecord) => {
      f.healed = this.options.clock();
    };
    /** Take a process down (SIGKILL, clean stop, or SIGKILL and its data dir deleted), hold, start it again. */
    const bounce = async (f: FaultRecord, id: string, how: 'kill' | 'stop' | 'wipe', holdMs: number): Promise<FaultRecord> => {
      if (how === 'stop') await c!.stop(id);
      else await c!.kill(id);
      if (how === 'wipe') await c!.wipe(id);
      await sleep(holdMs);
      await c!.restart(id);
      return f;
    };
    this.options.log(`fault ${this.faults.length + 1}: ${kind} (leader ${view.id}, term ${view.term})`);
    if (kind === 'switchover' || !c) {
      const f = record(`${view.id}->${follower}`, true);
      await this.admin.transferLeadership(follower, { deadlineMs: 5_000 }).catch((e: Error) => {
        f.note = `transferLeadership failed: ${e.message}`;
      });
      healed(f);
      return;
    }
    switch (kind) {
      case 'kill-leader':
        return healed(await bounce(record(view.id, true), view.id, 'kill', hold));
      case 'kill-follower':
        return healed(await bounce(record(follower, false), follower, 'kill', hold));
      case 'restart-follower':
        return healed(await bounce(record(follower, false), follower, 'stop', 0));
      case 'wipe-follower':
        return healed(await bounce(record(follower, false), follower, 'wipe', 0));
      case 'pause-leader': {
        const f = record(view.id, true);
        c.pause(view.id);
        await sleep(pauseMs);
        c.resume(view.id);
        healed(f);
        return;
      }
      case 'isolate-leader': {
        const f = record(view.id, true);
        for (const l of [...c.linksFrom(view.id), ...c.linksTo(view.id)]) l.cut();
        await sleep(pauseMs);
        c.healAll();
        healed(f);
        return;
      }
      case 'cut-leader-outbound': {
        const f = record(view.id, true);
        for (const l of c.linksFrom(view.id)) l.cut();
        await sleep(pauseMs);
        c.healAll();
        healed(f);
        return;
      }
      case 'bridge': {
        // The leader and one follower cannot talk; the other follower hears both (the bridge).
        const f = record(`${view.id}|${follower} via ${other}`, false);
        c.links.get(`${view.id}->${follower}`)!.cut();
        c.links.get(`${follower}->${view.id}`)!.cut();
        await sleep(pauseMs);
        c.healAll();
        healed(f);
        return;
      }
    }
  }
}

function shuffle<T>(items: T[], below: (n: number) => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = below(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
