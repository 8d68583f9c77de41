import type { Logger } from "@diego/kit";
import { DiegoError } from "@diego/models";

/** What the lock keeper needs of the BBS LockService. */
export interface LockPort {
  lock(
    req: { key: string; owner: string; value: string; ttlMs: bigint },
    options?: { timeoutMs?: number },
  ): Promise<unknown>;
  release(req: { key: string; owner: string }, options?: { timeoutMs?: number }): Promise<unknown>;
  fetchLock(req: { key: string }, options?: { timeoutMs?: number }): Promise<{ owner: string; value: string }>;
}

export interface LockKeeperOptions {
  lock: LockPort;
  key: string;
  /** Unique to this process. */
  owner: string;
  /** Published with the lock: the address the BBS calls. */
  value: string;
  ttlMs: number;
  /** How often a standby tries to take the lock. */
  retryIntervalMs: number;
  logger: Logger;
  onChange: (holding: boolean) => void;
}

/**
 * Holds a named lock through the BBS LockService (Diego's Locket): takes it when free, refreshes it
 * every ttl/3 while holding it, and tries every retry interval while another owner holds it, so a
 * standby takes over within the TTL of the last refresh of a holder that died. A holder that cannot
 * refresh steps down before its lock can have expired at the BBS (ttl after the start of its last
 * successful refresh, minus a margin), so two auctioneers are never both active for long; even then
 * a task runs at most once, because only one cell's StartTask can win.
 */
export class LockKeeper {
  private holding = false;
  private reachable = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private expiry?: NodeJS.Timeout;
  private attempt?: Promise<void>;
  private holderValue = "";

  constructor(private readonly options: LockKeeperOptions) {}

  get isHolding(): boolean {
    return this.holding;
  }

  /** True when the last call to the BBS got an answer. */
  get bbsReachable(): boolean {
    return this.reachable;
  }

  /** The value (address) of the current holder, as last seen; "" when unknown. */
  get holder(): string {
    return this.holding ? this.options.value : this.holderValue;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops trying; releases the lock when holding it so a standby takes over at once. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.expiry);
    await this.attempt;
    if (this.holding) {
      this.setHolding(false);
      if (!release) return;
      try {
        await this.options.lock.release({ key: this.options.key, owner: this.options.owner }, { timeoutMs: 2_000 });
        this.options.logger.info({ key: this.options.key }, "lock released");
      } catch (err) {
        this.options.logger.warn(
          { key: this.options.key, err: (err as Error).message },
          "releasing the lock failed; it expires after its TTL",
        );
      }
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.attempt = this.tryLock().finally(() => (this.attempt = undefined));
    }, ms);
  }

  private async tryLock(): Promise<void> {
    const { lock, key, owner, value, ttlMs, retryIntervalMs, logger } = this.options;
    const refresh = Math.max(1, Math.floor(ttlMs / 3));
    const started = Date.now();
    try {
      await lock.lock({ key, owner, value, ttlMs: BigInt(Math.round(ttlMs)) }, { timeoutMs: refresh });
      if (this.stopped) return;
      this.reachable = true;
      // Valid until ttl after the call started; step down a little before.
      clearTimeout(this.expiry);
      this.expiry = setTimeout(
        () => this.lost("the lock could not be refreshed within its TTL"),
        Math.max(0, started + ttlMs - Math.min(1_000, ttlMs / 10) - Date.now()),
      );
      if (!this.holding) {
        logger.info({ key, value }, "lock acquired: this auctioneer is the active one");
        this.setHolding(true);
      }
      this.schedule(refresh);
    } catch (err) {
      if (this.stopped) return;
      if (DiegoError.is(err, "FAILED_PRECONDITION")) {
        this.reachable = true;
        if (this.holding) this.lost("another owner holds the lock");
        await this.learnHolder();
      } else {
        this.reachable = false;
        logger.warn(
          { key, err: (err as Error).message },
          this.holding ? "refreshing the lock failed" : "cannot reach the BBS to take the lock",
        );
      }
      this.schedule(this.holding ? Math.min(retryIntervalMs, refresh) : retryIntervalMs);
    }
  }

  private async learnHolder(): Promise<void> {
    try {
      const res = await this.options.lock.fetchLock(
        { key: this.options.key },
        { timeoutMs: this.options.retryIntervalMs },
      );
      if (res.value !== this.holderValue)
        this.options.logger.info(
          { key: this.options.key, active: res.value },
          "standing by: another auctioneer is active",
        );
      this.holderValue = res.value;
    } catch {
      this.holderValue = "";
    }
  }

  private lost(why: string): void {
    clearTimeout(this.expiry);
    if (!this.holding) return;
    this.options.logger.warn({ key: this.options.key }, `lock lost (${why}): standing by`);
    this.setHolding(false);
  }

  private setHolding(holding: boolean): void {
    if (this.holding === holding) return;
    this.holding = holding;
    this.options.onChange(holding);
  }
}
