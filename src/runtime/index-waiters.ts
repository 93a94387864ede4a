// Callbacks parked until the local applied index reaches a target. A binary min-heap keyed by the
// target index: applies release waiters in index order, and each apply touches only the released
// ones. A waiter whose request gave up (deadline, cancel) is removed at once, so waiters for an
// index that is never reached do not pile up.

export interface IndexWaiter {
  readonly index: number;
  /** Position in the heap; -1 once released or removed. */
  pos: number;
  readonly release: () => void;
}

export class IndexWaiters {
  private heap: IndexWaiter[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Park `release` until `notify(applied)` is called with applied >= index. */
  add(index: number, release: () => void): IndexWaiter {
    const w: IndexWaiter = { index, pos: this.heap.length, release };
    this.heap.push(w);
    this.siftUp(w.pos);
    return w;
  }

  /** Unpark a waiter without releasing it (its request gave up). No-op if already gone. */
  remove(w: IndexWaiter): void {
    const i = w.pos;
    if (i < 0 || this.heap[i] !== w) return;
    w.pos = -1;
    const last = this.heap.pop()!;
    if (last === w) return;
    this.heap[i] = last;
    last.pos = i;
    this.siftDown(i);
    this.siftUp(last.pos);
  }

  /** Release every waiter whose target is <= applied. */
  notify(applied: number): void {
    while (this.heap.length > 0 && this.heap[0]!.index <= applied) {
      this.pop().release();
    }
  }

  /** Release all waiters (shutdown); they re-check their own state and fail appropriately. */
  releaseAll(): void {
    const all = this.heap;
    this.heap = [];
    for (const w of all) {
      w.pos = -1;
      w.release();
    }
  }

  private pop(): IndexWaiter {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    top.pos = -1;
    if (heap.length > 0) {
      heap[0] = last;
      last.pos = 0;
      this.siftDown(0);
    }
    return top;
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    const wa = heap[a]!;
    const wb = heap[b]!;
    heap[a] = wb;
    heap[b] = wa;
    wb.pos = a;
    wa.pos = b;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent]!.index <= this.heap[i]!.index) break;
      this.swap(parent, i);
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
      this.swap(min, i);
      i = min;
    }
  }
}
