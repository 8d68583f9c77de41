/**
 * A set of strings kept in ascending order (JavaScript's `<`: UTF-16 code units, which for task guids,
 * ASCII only, is byte order), for ListTasks pages by guid. Stored as a list of sorted chunks of at most
 * `2 × chunkSize` strings, so that adding or removing one moves at most one chunk's items and reading
 * a page from a position is a binary search and a walk: O(log n + page) rather than sorting every task
 * for every page.
 */
export class SortedStrings {
  private readonly chunks: string[][] = [];
  private count = 0;

  constructor(private readonly chunkSize = 512) {}

  get size(): number {
    return this.count;
  }

  has(value: string): boolean {
    const chunk = this.chunks[this.chunkFor(value)];
    return chunk !== undefined && chunk[lowerBound(chunk, value)] === value;
  }

  /** Adds the value; false when it was there already. */
  add(value: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([value]);
      this.count = 1;
      return true;
    }
    const c = Math.min(this.chunkFor(value), this.chunks.length - 1);
    const chunk = this.chunks[c];
    const i = lowerBound(chunk, value);
    if (chunk[i] === value) return false;
    chunk.splice(i, 0, value);
    this.count++;
    if (chunk.length > 2 * this.chunkSize) this.chunks.splice(c + 1, 0, chunk.splice(this.chunkSize));
    return true;
  }

  /** Removes the value; false when it was not there. */
  delete(value: string): boolean {
    const c = this.chunkFor(value);
    const chunk = this.chunks[c];
    if (!chunk) return false;
    const i = lowerBound(chunk, value);
    if (chunk[i] !== value) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(c, 1);
    return true;
  }

  clear(): void {
    this.chunks.length = 0;
    this.count = 0;
  }

  /** The values after `after` (every value when it is ""), in order. Do not change the set while iterating. */
  *after(after = ""): IterableIterator<string> {
    let c = after ? this.chunkFor(after) : 0;
    if (c >= this.chunks.length) return;
    let i = after ? upperBound(this.chunks[c], after) : 0;
    for (; c < this.chunks.length; c++, i = 0) {
      const chunk = this.chunks[c];
      for (; i < chunk.length; i++) yield chunk[i];
    }
  }

  /** The first chunk whose last value is >= value (chunks.length when there is none). */
  private chunkFor(value: string): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.chunks[mid];
      if (chunk[chunk.length - 1] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The first index whose value is >= value. */
function lowerBound(sorted: readonly string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose value is > value. */
function upperBound(sorted: readonly string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
