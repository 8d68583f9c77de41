import type { CellRegistryService, CellPresence } from "@diego/proto";
import type { Logger, ServiceClient } from "@diego/kit";

export type RegistryClient = ServiceClient<(typeof CellRegistryService)["method"]>;

/**
 * Keeps the cell's presence alive in the BBS: a Heartbeat with ttl_ms every third of the TTL;
 * Deregister on a clean stop.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private healthy = false;

  constructor(
    private readonly registry: RegistryClient,
    private readonly presence: () => CellPresence,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /** True when the last heartbeat reached the BBS. */
  get ok(): boolean {
    return this.healthy;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  async beat(): Promise<void> {
    try {
      await this.registry.heartbeat(
        { cell: this.presence(), ttlMs: BigInt(this.ttlMs) },
        { timeoutMs: Math.max(1000, this.ttlMs / 3) },
      );
      if (!this.healthy) this.logger.info("heartbeat reached the BBS");
      this.healthy = true;
    } catch (err) {
      if (this.healthy) this.logger.warn({ err: (err as Error).message }, "heartbeat failed");
      this.healthy = false;
    }
  }

  async stop(deregister: string): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.registry.deregister({ cellId: deregister }, { timeoutMs: 3000 });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "deregister failed; the presence expires with its TTL");
    }
  }
}
