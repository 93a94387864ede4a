// Lease expiry, decided by the leader's clock and committed through the log. The state machine only
// knows which leases exist and their TTLs (that is replicated); when each one runs out is the
// current leader's private, monotonic-clock judgment, and the leader acts on it by proposing a
// leaseExpire command, so every replica deletes the same keys at the same log index.
//
// A leader that takes over does not know when its predecessor last renewed a lease, so it gives
// every lease its full TTL again from the moment it became leader (as etcd does): a leadership
// change can only make a lease live longer, never expire early. A lease granted while this node
// leads gets its TTL from when the leader applied the grant, which is after the client asked.
import type { LeaseInfo } from '../api/command.js';
import { LEASE_LIMITS } from '../api/command.js';
import { LeaseNotFoundError } from '../api/errors.js';

export interface LeaseKeeperOptions {
  /** Monotonic milliseconds. */
  now: () => number;
  leases: () => LeaseInfo[];
  lease: (id: number) => LeaseInfo | undefined;
  /** Propose a leaseExpire for these ids (at most LEASE_LIMITS.maxExpirePerCommand). */
  proposeExpiry: (ids: number[]) => void;
  /** A proposed expiry that has not been applied after this long is proposed again. */
  retryMs: number;
}

export class LeaseKeeper {
  /** Lease id → monotonic deadline. Only meaningful while leading. */
  private readonly deadlines = new Map<number, number>();
  /** Lease id → when its expiry was proposed (it refuses keep-alives from then on). */
  private readonly expiring = new Map<number, number>();
  private leading = false;

  constructor(private readonly o: LeaseKeeperOptions) {}

  /** Called on every tick. */
  tick(isLeader: boolean): void {
    if (!isLeader) {
      if (this.leading) {
        this.leading = false;
        this.deadlines.clear();
        this.expiring.clear();
      }
      return;
    }
    const now = this.o.now();
    this.leading = true;
    const live = new Set<number>();
    // Reconcile with the state machine: leases granted since (or found on taking over) start a full TTL now.
    for (const l of this.o.leases()) {
      live.add(l.id);
      if (!this.deadlines.has(l.id)) this.deadlines.set(l.id, now + l.ttlMs);
    }
    for (const id of this.deadlines.keys()) {
      if (!live.has(id)) {
        this.deadlines.delete(id);
        this.expiring.delete(id);
      }
    }
    const due: number[] = [];
    for (const [id, deadline] of this.deadlines) {
      if (deadline > now) continue;
      const proposed = this.expiring.get(id);
      if (proposed !== undefined && now - proposed < this.o.retryMs) continue;
      due.push(id);
    }
    for (let i = 0; i < due.length; i += LEASE_LIMITS.maxExpirePerCommand) {
      const ids = due.slice(i, i + LEASE_LIMITS.maxExpirePerCommand);
      for (const id of ids) this.expiring.set(id, now);
      this.o.proposeExpiry(ids);
    }
  }

  /** Renews a lease on the leader; its TTL. Throws LeaseNotFoundError when it is gone or expiring. */
  keepAlive(id: number): number {
    const lease = this.o.lease(id);
    if (!lease || this.expiring.has(id)) throw new LeaseNotFoundError(id);
    this.deadlines.set(id, this.o.now() + lease.ttlMs);
    return lease.ttlMs;
  }

  /** Milliseconds left by this leader's clock (the full TTL when not yet tracked). */
  remainingMs(lease: LeaseInfo): number {
    const deadline = this.deadlines.get(lease.id);
    return deadline === undefined ? lease.ttlMs : Math.max(0, deadline - this.o.now());
  }
}
