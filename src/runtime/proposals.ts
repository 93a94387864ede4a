// Proposals and receipts. A sync write parks here until its entry is applied; the apply decides
// whether the entry at that index is still the one proposed (same term) or was overwritten by
// another leader's (then the write was NOT applied). An async write gets only a receipt
// {term, index}; receiptOutcome decides it later from the log, or from the snapshot once compacted.
import type { CommandResult } from '../api/command.js';
import { ReceiptTooOldError } from '../api/errors.js';
import type { WaitOutcome } from '../api/types.js';

interface Pending {
  term: number;
  resolve: (result: CommandResult | null) => void;
  reject: (err: Error) => void;
}

export class PendingProposals {
  // invariant: at most one pending proposal per log index
  private readonly byIndex = new Map<number, Pending>();

  /** @param lost the error for a proposal whose entry was overwritten (definitely not applied). */
  constructor(private readonly lost: (term: number, index: number) => Error) {}

  get size(): number {
    return this.byIndex.size;
  }

  /**
   * Parks a proposal until its index is applied. Resolves with the applied result, or null when
   * the entry reached this node inside a snapshot (committed; its result is unknown here).
   * Returns the promise and a `cancel` that unparks it (deadline passed).
   */
  track(term: number, index: number): { result: Promise<CommandResult | null>; cancel: () => void } {
    const existing = this.byIndex.get(index);
    if (existing) {
      // A stale proposal from an earlier term at the same index was necessarily overwritten.
      this.byIndex.delete(index);
      existing.reject(this.lost(existing.term, index));
    }
    let entry!: Pending;
    const result = new Promise<CommandResult | null>((resolve, reject) => {
      entry = { term, resolve, reject };
    });
    this.byIndex.set(index, entry);
    return {
      result,
      cancel: () => {
        if (this.byIndex.get(index) === entry) this.byIndex.delete(index);
      },
    };
  }

  /** The entry at `index` (of `term`) was applied with `result`. */
  applied(index: number, term: number, result: CommandResult | null | undefined): void {
    const p = this.byIndex.get(index);
    if (!p) return;
    this.byIndex.delete(index);
    if (p.term === term) p.resolve(result ?? null);
    else p.reject(this.lost(p.term, index));
  }

  /**
   * A snapshot up to {index, term} replaced the state. Proposals it covers: the one at exactly its
   * index and term is committed (result unknown); others get `uncertain()` — every write carries
   * (clientId, seq), so the client's retry is answered exactly once either way.
   */
  snapshotInstalled(index: number, term: number, uncertain: () => Error): void {
    for (const [i, p] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      if (i === index && p.term === term) p.resolve(null);
      else p.reject(uncertain());
    }
  }

  failAll(err: Error): void {
    const all = [...this.byIndex.values()];
    this.byIndex.clear();
    for (const p of all) p.reject(err);
  }
}

/** What the node still knows about the log at a receipt's index. */
export interface ReceiptEvidence {
  /** Term of the entry at `index` if this node still knows it, else undefined. */
  termAt(index: number): number | undefined;
  snapshot: { index: number; term: number };
}

/** Whether the entry {term, index} (known to be covered by the applied index) was committed. */
export function receiptOutcome(term: number, index: number, evidence: ReceiptEvidence): WaitOutcome {
  const actual = evidence.termAt(index);
  if (actual !== undefined) return actual === term ? 'committed' : 'lost';
  // Compacted away. Log terms never decrease with the index, so a receipt newer than the
  // snapshot's term at an index the snapshot covers cannot have been committed.
  const snap = evidence.snapshot;
  if (index <= snap.index && term > snap.term) return 'lost';
  throw new ReceiptTooOldError(term, index, snap.index);
}
