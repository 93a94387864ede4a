// The lease table of the state machine: every live lease with its TTL and attached keys. Like the
// session table, changes made while applying a batch are staged in a LeaseTx and merged only after
// the batch is durable, so a failed batch leaves the table as it was.
import { invariant } from '../raft/errors.js';
import type { LeaseInfo } from '../api/command.js';
import type { Lease } from './keyspace.js';

function cloneLease(l: Lease): Lease {
  return { ttlMs: l.ttlMs, keys: new Map(l.keys) };
}

function leaseInfo(id: number, l: Lease): LeaseInfo {
  return { id, ttlMs: l.ttlMs, keys: l.keys.size };
}

export class LeaseTable {
  private leases = new Map<number, Lease>();

  get size(): number {
    return this.leases.size;
  }

  /** Replace the contents (on open or restore). */
  load(leases: Iterable<[number, Lease]>): void {
    this.leases = new Map([...leases].sort((a, b) => a[0] - b[0]));
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /** Ascending ids (grant order). */
  entries(): [number, Lease][] {
    return [...this.leases.entries()].sort((a, b) => a[0] - b[0]);
  }

  list(): LeaseInfo[] {
    return this.entries().map(([id, l]) => leaseInfo(id, l));
  }

  /** What the API says of lease `id`, or undefined when it is not live. */
  info(id: number): LeaseInfo | undefined {
    const l = this.leases.get(id);
    return l ? leaseInfo(id, l) : undefined;
  }

  begin(): LeaseTx {
    return new LeaseTx(this.leases);
  }

  commit(tx: LeaseTx): void {
    invariant(tx.base === this.leases, 'lease transaction committed against a replaced table');
    for (const [id, l] of tx.touched) {
      if (l) this.leases.set(id, l);
      else this.leases.delete(id);
    }
  }
}

/** Staged lease changes of one batch: `touched` maps an id to its new state (null = deleted). */
export class LeaseTx {
  touched = new Map<number, Lease | null>();

  constructor(readonly base: ReadonlyMap<number, Lease>) {}

  get(id: number): Lease | undefined {
    const staged = this.touched.get(id);
    if (staged !== undefined) return staged ?? undefined;
    return this.base.get(id);
  }

  /** Live leases after the staged changes. */
  count(): number {
    let n = this.base.size;
    for (const [id, l] of this.touched) {
      const before = this.base.has(id);
      if (l && !before) n++;
      else if (!l && before) n--;
    }
    return n;
  }

  /** A copy the batch may change (copy on first write). */
  mutable(id: number): Lease | undefined {
    const current = this.get(id);
    if (!current) return undefined;
    if (this.touched.get(id) === current) return current;
    const copy = cloneLease(current);
    this.touched.set(id, copy);
    return copy;
  }

  set(id: number, lease: Lease | null): void {
    this.touched.set(id, lease);
  }

  /** For a rollback of one command: the staged state to go back to. */
  savepoint(): Map<number, Lease | null> {
    const saved = new Map<number, Lease | null>();
    for (const [id, l] of this.touched) saved.set(id, l ? cloneLease(l) : null);
    return saved;
  }

  rollback(saved: Map<number, Lease | null>): void {
    this.touched = saved;
  }
}
