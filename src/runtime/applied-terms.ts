// The terms of the most recently applied entries, so that `waitFor(term, index)` can tell
// "committed" from "lost" without reading the log (which may already be compacted).

export class AppliedTerms {
  private readonly indexes: Float64Array;
  private readonly terms: Float64Array;

  constructor(private readonly capacity = 65536) {
    this.indexes = new Float64Array(capacity);
    this.terms = new Float64Array(capacity);
  }

  record(index: number, term: number): void {
    const slot = index % this.capacity;
    this.indexes[slot] = index;
    this.terms[slot] = term;
  }

  /** Term of the applied entry at index, or undefined if it has been evicted (or never applied). */
  get(index: number): number | undefined {
    const slot = index % this.capacity;
    return this.indexes[slot] === index && index > 0 ? this.terms[slot] : undefined;
  }
}
