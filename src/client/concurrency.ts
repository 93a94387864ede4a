// Locks and leader elections on top of leases, the way etcd's concurrency package builds them.
//
// A contender for `name` grants a lease, keeps it alive, and writes its own key
// `name/<lease id as 16 hex digits>` attached to the lease. The contenders are ordered by the log
// index at which their key was created (createIndex): the first one holds the lock (or leads the
// election), and each other waits for the deletion of the one just before it, so waiters are
// served first come, first served and a release wakes exactly one of them. A holder that dies
// stops renewing its lease; when the lease expires its key is deleted and the next one takes over.
//
// The createIndex of the holder's key is its fencing index: a larger number always belongs to a
// later holder. See the README ("Locks, elections and fencing") for how to use it.
import { ClientUsageError, DeadlineExceededError } from '../api/errors.js';
import { bytesToText, toBytes, type Bytes } from './bytes.js';
import type { KeepAliveHandle } from './keep-alive.js';
import type { KvItem } from './kv-item.js';
import type { KvClient } from './kv-client.js';
import type { TxnCompare } from './types.js';

export interface LockOptions {
  /** TTL of the holder's lease: how long the lock outlives a holder that died (default 10000 ms). */
  ttlMs?: number;
  /** Give up waiting after this long (DeadlineExceededError); default: wait as long as it takes. */
  waitMs?: number;
}

/** Contenders one lock or election may have waiting at once (a scan page). */
const MAX_CONTENDERS = 1_000;
const DEFAULT_TTL_MS = 10_000;

function contenderPrefix(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new ClientUsageError('a lock or election needs a non-empty name');
  return `${name}/`;
}

function isContenderKey(item: KvItem, prefix: string): boolean {
  return /^[0-9a-f]{16}$/.test(item.keyText().slice(prefix.length));
}

/** One contender: its lease (kept alive), its key, and the index at which the key was created. */
export class Contender {
  private released = false;

  constructor(
    private readonly kv: KvClient,
    readonly name: string,
    /** This contender's key, `name/<lease hex>`. */
    readonly key: string,
    readonly lease: number,
    /** The log index at which the key was created: the fencing index once it holds. */
    readonly fencingIndex: number,
    private readonly keeper: KeepAliveHandle,
  ) {}

  /**
   * A txn compare that holds only while this contender's key still exists as written, i.e. while
   * it still holds the lock: add it to a txn's compares to write only as the holder.
   */
  guard(): TxnCompare {
    return { key: this.key, target: 'modIndex', result: 'eq', number: this.fencingIndex };
  }

  /** Whether the key is still there (the lease did not expire meanwhile). */
  async isHeld(): Promise<boolean> {
    const item = await this.kv.get(this.key);
    return item !== undefined && item.createIndex === this.fencingIndex;
  }

  /** Gives up: stops renewing and revokes the lease, which deletes the key (the next waiter goes on). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.keeper.stop();
    await this.kv.revokeLease(this.lease).catch((err: Error) => {
      if (err.name !== 'LeaseNotFoundError') throw err; // already expired: released anyway
    });
  }

  /** Renewing stopped: released, or the lease was lost (expired). */
  get ended(): Promise<void> {
    return this.keeper.done;
  }
}

async function contenders(kv: KvClient, prefix: string): Promise<{ items: KvItem[]; appliedIndex: number }> {
  const page = await kv.scan({ prefix, limit: MAX_CONTENDERS + 1 });
  const items = page.items.filter((i) => isContenderKey(i, prefix)).sort((a, b) => a.createIndex - b.createIndex);
  if (items.length > MAX_CONTENDERS) throw new ClientUsageError(`more than ${MAX_CONTENDERS} contenders wait for ${prefix.slice(0, -1)}`);
  return { items, appliedIndex: page.appliedIndex };
}

/** Waits until `key` is deleted (watching from `fromIndex`), or the deadline. */
async function deleted(kv: KvClient, key: string, fromIndex: number, deadline: number): Promise<void> {
  const watcher = kv.watch({ key, fromIndex });
  const timer = Number.isFinite(deadline) ? setTimeout(() => watcher.close(), Math.max(0, deadline - Date.now())) : undefined;
  try {
    for await (const e of watcher) if (e.type === 'delete') return;
  } finally {
    if (timer) clearTimeout(timer);
    watcher.close();
  }
}

/**
 * Enters the queue of `name` with `value` and waits until first. Used by lock() (empty value) and
 * campaign() (the candidate's value).
 */
export async function contend(kv: KvClient, name: string, value: Bytes, options: LockOptions = {}): Promise<Contender> {
  const prefix = contenderPrefix(name);
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const deadline = options.waitMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.waitMs;
  const lease = await kv.grantLease(ttlMs);
  const keeper = kv.keepAlive(lease, ttlMs);
  const key = `${prefix}${lease.toString(16).padStart(16, '0')}`;
  try {
    const put = await kv.put(key, toBytes(value, 'value'), { lease });
    const me = new Contender(kv, name, key, lease, put.appliedAt ?? put.index, keeper);
    for (;;) {
      const { items, appliedIndex } = await contenders(kv, prefix);
      const mine = items.findIndex((i) => i.keyText() === key);
      if (mine < 0) throw new ClientUsageError(`lost the lease of ${key} while waiting (it expired: keep-alives did not reach the cluster)`);
      if (mine === 0) return me;
      if (Date.now() >= deadline) throw new DeadlineExceededError(options.waitMs ?? 0, `waiting for ${name}`);
      await deleted(kv, items[mine - 1]!.keyText(), appliedIndex + 1, deadline);
    }
  } catch (err) {
    keeper.stop();
    await kv.revokeLease(lease).catch(() => undefined);
    throw err;
  }
}

/** The current leader of an election as observe() reports it. */
export interface ElectionLeader {
  value: Uint8Array;
  key: string;
  /** The fencing index of this leadership (createIndex of its key). */
  fencingIndex: number;
  text(): string;
}

/** The leader of `election` now and at every change (undefined: no leader), until closed. */
export async function* observeElection(kv: KvClient, election: string): AsyncGenerator<ElectionLeader | undefined> {
  const prefix = contenderPrefix(election);
  let last: number | undefined = -1;
  for (;;) {
    const { items, appliedIndex } = await contenders(kv, prefix);
    const first = items[0];
    const current = first?.createIndex;
    if (current !== last) {
      last = current;
      yield first ? { value: first.value, key: first.keyText(), fencingIndex: first.createIndex, text: () => bytesToText(first.value) } : undefined;
    }
    // Any change under the prefix may change the leader: wait for one, then look again.
    const watcher = kv.watch({ prefix, fromIndex: appliedIndex + 1 });
    try {
      for await (const _ of watcher) break;
    } finally {
      watcher.close();
    }
  }
}
