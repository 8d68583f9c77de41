/**
 * Bytes that a server's streams have written but grpc-js has not yet handed to the network, across all
 * streams (docs/limits.md). A fan-out of one large event to thousands of readers would otherwise hold a
 * framed copy per stream at once. A write waits (first come, first served) while the budget is spent; a
 * write still unsent after `parkAfterMs` (a reader that does not read) stops counting, so that idle
 * readers cannot starve the others: each of them holds its one message, bounded by the per-caller stream
 * cap and the event hub's cut-off of slow readers.
 */
export class SendBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; go: (release: () => void) => void }> = [];

  constructor(
    readonly capacity: number,
    private readonly parkAfterMs = 1_000,
  ) {}

  /** Bytes counted now. */
  get inFlight(): number {
    return this.used;
  }

  /**
   * Room for `bytes` (a message larger than the whole budget goes alone); resolves to the release to
   * call once the bytes are sent. An abort stops the wait (and resolves to a release that does nothing).
   */
  acquire(bytes: number, signal: AbortSignal): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    return new Promise((resolve) => {
      const entry = { bytes, go: resolve };
      this.waiting.push(entry);
      signal.addEventListener(
        "abort",
        () => {
          const i = this.waiting.indexOf(entry);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          resolve(() => undefined);
          this.wake();
        },
        { once: true },
      );
    });
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.capacity;
  }

  private take(bytes: number): () => void {
    this.used += bytes;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      clearTimeout(park);
      this.used -= bytes;
      this.wake();
    };
    const park = setTimeout(release, this.parkAfterMs);
    park.unref?.();
    return release;
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      next.go(this.take(next.bytes));
    }
  }
}
