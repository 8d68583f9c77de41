/**
 * A binary min-heap of cell indices ordered by (key[cell], cell), with each cell's position tracked so
 * that a cell whose key grew can be moved down, or removed, in O(log n). The keys live in the caller's
 * array and are read on every comparison.
 */
export class CellHeap {
  readonly items: Int32Array;
  readonly position: Int32Array;
  size = 0;

  constructor(
    private readonly key: Float64Array,
    cellCount: number,
    cells: Iterable<number>,
  ) {
    this.items = new Int32Array(cellCount);
    this.position = new Int32Array(cellCount).fill(-1);
    for (const cell of cells) {
      this.position[cell] = this.size;
      this.items[this.size++] = cell;
    }
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  has(cell: number): boolean {
    return this.position[cell] >= 0;
  }

  /** True when a orders before b. */
  before(a: number, b: number): boolean {
    const ka = this.key[a];
    const kb = this.key[b];
    return ka < kb || (ka === kb && a < b);
  }

  /** The cell's key grew: restore the heap order below it. */
  increased(cell: number): void {
    const p = this.position[cell];
    if (p >= 0) this.siftDown(p);
  }

  remove(cell: number): void {
    const p = this.position[cell];
    if (p < 0) return;
    const last = this.items[--this.size];
    this.position[cell] = -1;
    if (p === this.size) return;
    this.items[p] = last;
    this.position[last] = p;
    this.siftDown(p);
    this.siftUp(this.position[last]);
  }

  private siftUp(p: number): void {
    const cell = this.items[p];
    while (p > 0) {
      const parent = (p - 1) >> 1;
      const other = this.items[parent];
      if (!this.before(cell, other)) break;
      this.items[p] = other;
      this.position[other] = p;
      p = parent;
    }
    this.items[p] = cell;
    this.position[cell] = p;
  }

  private siftDown(p: number): void {
    const cell = this.items[p];
    const n = this.size;
    for (;;) {
      let child = 2 * p + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(this.items[child + 1], this.items[child])) child++;
      const other = this.items[child];
      if (!this.before(other, cell)) break;
      this.items[p] = other;
      this.position[other] = p;
      p = child;
    }
    this.items[p] = cell;
    this.position[cell] = p;
  }
}
