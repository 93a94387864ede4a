// The exactly-once session table: per client, the results of its recent commands. Changes made
// while applying a batch are staged in a SessionTx and merged only after the batch is durable.
import { invariant } from '../raft/errors.js';
import type { Session } from './keyspace.js';

export const DEFAULT_MAX_SESSIONS = 10_000;
/** A client that never advances firstUnacked cannot grow its session without bound. */
export const DEFAULT_MAX_RESULTS_PER_SESSION = 1_024;

export interface SessionLimits {
  maxSessions: number;
  maxResultsPerSession: number;
}

function cloneSession(s: Session): Session {
  return { firstUnacked: s.firstUnacked, lastIndex: s.lastIndex, results: new Map(s.results) };
}

export class SessionTable {
  // invariant: iteration order is ascending lastIndex (least recently used first), because every
  // touch re-inserts at the end and apply indexes only grow.
  private sessions = new Map<string, Session>();

  constructor(readonly limits: SessionLimits) {
    invariant(Number.isSafeInteger(limits.maxSessions) && limits.maxSessions >= 1, 'maxSessions must be a positive integer');
    invariant(Number.isSafeInteger(limits.maxResultsPerSession) && limits.maxResultsPerSession >= 1, 'maxResultsPerSession must be a positive integer');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Replace the contents (on open or restore); order is rebuilt from lastIndex. */
  load(sessions: Iterable<[string, Session]>): void {
    const sorted = [...sessions].sort((a, b) => a[1].lastIndex - b[1].lastIndex || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.sessions = new Map(sorted);
  }

  get(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  entries(): IterableIterator<[string, Session]> {
    return this.sessions.entries();
  }

  begin(): SessionTx {
    return new SessionTx(this.sessions, this.limits);
  }

  /** Merge a staged batch (after it was persisted). */
  commit(tx: SessionTx): void {
    invariant(tx.base === this.sessions, 'session transaction committed against a replaced table');
    for (const id of tx.evicted) this.sessions.delete(id);
    for (const [id, s] of tx.touched) {
      this.sessions.delete(id);
      this.sessions.set(id, s);
    }
  }
}

export class SessionTx {
  /** Sessions changed in this batch, in touch order (oldest touch first). */
  readonly touched = new Map<string, Session>();
  /** Base sessions removed in this batch (a client may also be in `touched` if it came back). */
  readonly evicted = new Set<string>();
  private live: number;
  private baseCursor: Iterator<string>;

  constructor(
    readonly base: ReadonlyMap<string, Session>,
    readonly limits: SessionLimits,
  ) {
    this.live = base.size;
    this.baseCursor = base.keys();
  }

  private isLive(id: string): boolean {
    return this.touched.has(id) || (this.base.has(id) && !this.evicted.has(id));
  }

  /** A private copy of the client's session to modify, or a fresh one; call touch() to stage it. */
  sessionFor(clientId: string): Session {
    const staged = this.touched.get(clientId);
    if (staged) return staged;
    const base = this.evicted.has(clientId) ? undefined : this.base.get(clientId);
    return base ? cloneSession(base) : { firstUnacked: 0, lastIndex: 0, results: new Map() };
  }

  /** Stage `session` as used at log index `index`, then evict least recently used sessions over the limit. */
  touch(clientId: string, session: Session, index: number): void {
    if (!this.isLive(clientId)) this.live++;
    session.lastIndex = index;
    while (session.results.size > this.limits.maxResultsPerSession) {
      let lowest = Infinity;
      for (const seq of session.results.keys()) lowest = Math.min(lowest, seq);
      session.results.delete(lowest);
      session.firstUnacked = Math.max(session.firstUnacked, lowest + 1);
    }
    this.touched.delete(clientId);
    this.touched.set(clientId, session);
    while (this.live > this.limits.maxSessions) this.evictOldest(clientId);
  }

  private evictOldest(keep: string): void {
    for (;;) {
      const next = this.baseCursor.next();
      if (next.done) break;
      const id = next.value;
      if (this.touched.has(id) || this.evicted.has(id)) continue; // touched ones are newer than any base one
      this.evicted.add(id);
      this.live--;
      return;
    }
    for (const id of this.touched.keys()) {
      if (id === keep) continue;
      this.touched.delete(id);
      if (this.base.has(id)) this.evicted.add(id);
      this.live--;
      return;
    }
    invariant(false, 'session table over its limit with nothing left to evict');
  }
}
