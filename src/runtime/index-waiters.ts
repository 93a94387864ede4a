// Callbacks parked until the local applied index reaches a target. A binary min-heap keyed by the
// target index: applies release waiters in index order, and each apply touches only the released ones.

interface Waiter {
  index: number;
  release: () => void;
}

export class IndexWaiters {
  private heap: Waiter[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Park `release` until `notify(applied)` is called with applied >= index. */
  add(index: number, release: () => void): void {
    this.heap.push({ index, release });
    this.siftUp(this.heap.length - 1);
  }

  /** Release every waiter whose target is <= applied. */
  notify(applied: number): void {
    while (this.heap.length > 0 && this.heap[0]!.index <= applied) {
      const top = this.pop();
      top.release();
    }
  }

  /** Release all waiters (shutdown); they re-check their own state and fail appropriately. */
  releaseAll(): void {
    const all = this.heap;
    this.heap = [];
    for (const w of all) w.release();
  }

  private pop(): Waiter {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.index <= heap[i]!.index) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && heap[l]!.index < heap[min]!.index) min = l;
      if (r < heap.length && heap[r]!.index < heap[min]!.index) min = r;
      if (min === i) return;
      [heap[min], heap[i]] = [heap[i]!, heap[min]!];
      i = min;
    }
  }
}
