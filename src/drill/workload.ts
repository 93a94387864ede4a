// The drill's concurrent SDK workload: a few clients, each with its own SDK client (its own write
// session and session watermark), over a small key space so that operations contend. Every
// operation is recorded with invocation and completion times; an error whose outcome the client
// cannot know leaves the operation `unknown`.
import { performance } from 'node:perf_hooks';
import { unsafeUniformIntDistribution, xoroshiro128plus } from 'pure-rand';
import type { RandomGenerator } from 'pure-rand';
import { ClientUsageError, InvalidArgumentError, LostWriteError } from '../api/errors.js';
import { connect } from '../client/kv-client.js';
import type { KvClient } from '../client/kv-client.js';
import type { ReadConsistency } from '../client/types.js';
import type { HistoryOp } from './history.js';

/** Hard bound on recorded operations (a 10-minute drill stays well below). */
export const MAX_HISTORY_OPS = 400_000;
const PROBE_KEY = 'rto-probe';
const PROBE_THINK_MS = 5;

export interface WorkloadOptions {
  endpoints: string[];
  clients: number;
  keys: number;
  seed: number;
  /** Pause between one client's operations (keeps the drill's CPU modest). */
  thinkMs: number;
  deadlineMs: number;
  /** ms since the drill's start, the one clock of the history. */
  clock: () => number;
}

export class Workload {
  readonly ops: HistoryOp[] = [];
  /**
   * The RTO probe: one more client doing nothing but sequential sync puts on its own key (as the
   * failover bench does), so a gap in its acks is a gap in write availability, not a workload
   * client stuck on some read. Its acks, with the term each was acked in.
   */
  readonly syncAcks: { at: number; term: number }[] = [];
  private readonly clients: KvClient[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private nextId = 0;
  private nextValue = 0;
  /** Per client: the index of its newest acked write (its follower reads may ask for it). */
  private readonly lastAck: number[] = [];
  private readonly rng: RandomGenerator;

  constructor(private readonly options: WorkloadOptions) {
    if (options.clients < 1 || options.clients > 64) throw new ClientUsageError(`drill clients must be 1..64, got ${options.clients}`);
    if (options.keys < 1 || options.keys > 1000) throw new ClientUsageError(`drill keys must be 1..1000, got ${options.keys}`);
    this.rng = xoroshiro128plus(options.seed ^ 0x5eed);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.options.clients; i++) {
      this.clients.push(
        await connect({ endpoints: this.options.endpoints, deadlineMs: this.options.deadlineMs, clientId: `drill-${this.options.seed}-c${i}` }),
      );
    }
    const probe = await connect({ endpoints: this.options.endpoints, deadlineMs: this.options.deadlineMs, clientId: `drill-${this.options.seed}-probe` });
    this.clients.push(probe);
    this.running = true;
    this.loops = this.clients.map((kv, i) => (kv === probe ? this.probeLoop(kv, i) : this.loop(kv, i)));
  }

  /** Stop issuing operations; resolves once every client's last operation finished. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** A linearizable read of every key (after the faults, to pin the final state). */
  async finalReads(): Promise<void> {
    const kv = this.clients[0]!;
    for (const key of this.keyNames()) await this.read(kv, 0, key, 'linearizable');
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }

  /** Every key the history touches (the final reads pin each one). */
  keyNames(): string[] {
    return [...Array.from({ length: this.options.keys }, (_, k) => `k${k}`), PROBE_KEY];
  }

  hungLeaderSwitches(): number {
    return this.clients.reduce((n, c) => n + c.hungLeaderSwitches, 0);
  }

  private int(lo: number, hi: number): number {
    return unsafeUniformIntDistribution(lo, hi, this.rng);
  }

  private record(op: Omit<HistoryOp, 'id' | 'start' | 'outcome'>): HistoryOp {
    if (this.ops.length >= MAX_HISTORY_OPS)
      throw new ClientUsageError(`the drill history reached its bound of ${MAX_HISTORY_OPS} operations; run a shorter drill`);
    const full: HistoryOp = { ...op, id: this.nextId++, start: this.options.clock(), outcome: 'unknown' };
    this.ops.push(full);
    return full;
  }

  private async loop(kv: KvClient, client: number): Promise<void> {
    while (this.running && this.ops.length < MAX_HISTORY_OPS) {
      const key = `k${this.int(0, this.options.keys - 1)}`;
      const dice = this.int(0, 99);
      if (dice < 24) await this.put(kv, client, key, 'sync');
      else if (dice < 34) await this.put(kv, client, key, 'async');
      else if (dice < 44) await this.cas(kv, client, key);
      else if (dice < 48) await this.del(kv, client, key);
      else if (dice < 66) await this.read(kv, client, key, 'linearizable');
      else if (dice < 76) await this.read(kv, client, key, 'lease');
      else if (dice < 86) await this.read(kv, client, key, 'follower');
      else await this.read(kv, client, key, 'session');
      await new Promise((r) => setTimeout(r, this.options.thinkMs));
    }
  }

  private async probeLoop(kv: KvClient, client: number): Promise<void> {
    while (this.running && this.ops.length < MAX_HISTORY_OPS) {
      const op = await this.put(kv, client, PROBE_KEY, 'sync');
      if (op.outcome === 'ok') this.syncAcks.push({ at: op.end!, term: op.term! });
      await new Promise((r) => setTimeout(r, PROBE_THINK_MS));
    }
  }

  private value(client: number): string {
    return `c${client}-${this.nextValue++}`;
  }

  /** The last value this client saw for `key` (CAS targets it), from its own history. */
  private lastSeen(client: number, key: string): string | null {
    for (let i = this.ops.length - 1, n = 0; i >= 0 && n < 200; i--, n++) {
      const o = this.ops[i]!;
      if (o.key !== key || o.outcome !== 'ok') continue;
      if (o.kind === 'get') return o.read ?? null;
      if (o.kind === 'put' && o.durability === 'sync' && o.client === client) return o.value ?? null;
    }
    return null;
  }

  private finish(op: HistoryOp, err: unknown): void {
    op.error = `${(err as Error).name}: ${(err as Error).message}`.slice(0, 300);
    // Only a refusal before anything was sent is definite; anything else may have happened.
    op.outcome = err instanceof ClientUsageError || err instanceof InvalidArgumentError ? 'fail' : 'unknown';
  }

  private async put(kv: KvClient, client: number, key: string, durability: 'sync' | 'async'): Promise<HistoryOp> {
    const op = this.record({ client, key, kind: 'put', value: this.value(client), durability });
    try {
      const r = await kv.put(key, op.value!, { durability });
      op.term = r.term;
      if (durability === 'sync') {
        op.end = this.options.clock();
        op.outcome = 'ok';
        op.index = r.appliedAt ?? r.index;
        this.lastAck[client] = Math.max(this.lastAck[client] ?? 0, op.index);
        return op;
      }
      op.outcome = 'ok';
      try {
        await kv.waitFor(r, { deadlineMs: this.options.deadlineMs * 2 });
        op.receipt = 'committed';
        op.index = r.index;
        op.end = this.options.clock();
      } catch (e) {
        op.receipt = e instanceof LostWriteError ? 'lost' : 'unknown';
        op.end = this.options.clock();
        if (op.receipt === 'unknown') op.error = `waitFor: ${(e as Error).message}`.slice(0, 300);
      }
    } catch (e) {
      this.finish(op, e);
    }
    return op;
  }

  private async cas(kv: KvClient, client: number, key: string): Promise<void> {
    const expected = this.lastSeen(client, key);
    const op = this.record({ client, key, kind: 'cas', value: this.value(client), expected, durability: 'sync' });
    try {
      const r = await kv.cas(key, expected, op.value!);
      op.end = this.options.clock();
      op.outcome = 'ok';
      op.succeeded = r.succeeded;
      op.term = r.term;
      if (r.succeeded) op.index = r.appliedAt ?? r.index;
    } catch (e) {
      this.finish(op, e);
    }
  }

  private async del(kv: KvClient, client: number, key: string): Promise<void> {
    const op = this.record({ client, key, kind: 'delete', durability: 'sync' });
    try {
      const r = await kv.delete(key);
      op.end = this.options.clock();
      op.outcome = 'ok';
      op.term = r.term;
      op.index = r.appliedAt ?? r.index;
    } catch (e) {
      this.finish(op, e);
    }
  }

  private async read(kv: KvClient, client: number, key: string, consistency: ReadConsistency): Promise<void> {
    const op = this.record({ client, key, kind: 'get', consistency });
    if (consistency === 'session') op.minIndex = kv.sessionIndex;
    else if (consistency === 'follower' && this.int(0, 1) === 1) op.minIndex = this.lastAck[client] ?? 0;
    try {
      const d = await kv.getDetail(key, op.minIndex !== undefined && consistency === 'follower' ? { consistency, minIndex: op.minIndex } : { consistency });
      op.end = this.options.clock();
      op.outcome = 'ok';
      op.read = d.item ? d.item.text() : null;
      op.servedBy = d.servedBy;
      op.appliedIndex = d.appliedIndex;
    } catch (e) {
      this.finish(op, e);
    }
  }
}

/** ms since `t0` on the monotonic clock. */
export function clockSince(t0 = performance.now()): () => number {
  return () => performance.now() - t0;
}
