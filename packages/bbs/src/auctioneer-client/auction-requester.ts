import type { Logger } from "@diego/kit";
import { auctioneerv1, type cellv1 } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GrpcClients } from "../grpc-clients.js";
import type { BbsMetrics } from "../metrics/bbs-metrics.js";

export type TaskWork = MessageInitShape<typeof cellv1.TaskWorkSchema>;

export interface AuctionRequesterOptions {
  /** The active auctioneer's address, or undefined when none is known. */
  resolveAddress: () => Promise<string | undefined>;
  clients: GrpcClients;
  logger: Logger;
  metrics?: BbsMetrics;
  /** Most tasks in one RequestTaskAuctions call. */
  batchSize?: number;
}

/**
 * Sends tasks to the active auctioneer in batches: tasks queued while a call is in flight go
 * together in the next one (duplicates dropped). A failed call is logged and forgotten: the tasks
 * stay PENDING and the next convergence pass sends every pending task again.
 */
export class AuctionRequester {
  private queue = new Map<string, TaskWork>();
  private sending = false;
  private scheduled = false;
  private lastWarning = 0;
  private stopped = false;
  private idle?: Promise<void>;
  private markIdle?: () => void;

  constructor(private readonly options: AuctionRequesterOptions) {}

  enqueue(works: TaskWork[]): void {
    if (this.stopped) return;
    for (const w of works) this.queue.set(w.taskGuid ?? "", w);
    this.schedule();
  }

  /** Resolves once everything queued so far has been sent (or failed). */
  async flushed(): Promise<void> {
    while (this.queue.size > 0 || this.sending || this.scheduled) {
      this.idle ??= new Promise((r) => (this.markIdle = r));
      await this.idle;
    }
  }

  stop(): void {
    this.stopped = true;
    this.queue.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.sending || this.queue.size === 0) {
      this.checkIdle();
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.send();
    });
  }

  private async send(): Promise<void> {
    if (this.sending || this.queue.size === 0) return this.checkIdle();
    this.sending = true;
    const max = this.options.batchSize ?? 1000;
    const batch: TaskWork[] = [];
    for (const [guid, w] of this.queue) {
      if (batch.length >= max) break;
      batch.push(w);
      this.queue.delete(guid);
    }
    const { logger, metrics } = this.options;
    try {
      const address = await this.options.resolveAddress();
      if (!address) {
        if (Date.now() - this.lastWarning > 10_000) {
          this.lastWarning = Date.now();
          logger.warn(
            { tasks: batch.length },
            "no active auctioneer; the tasks stay PENDING until convergence sends them again",
          );
        }
        metrics?.auctionRequestsFailed.inc(batch.length);
      } else {
        await this.options.clients.get(auctioneerv1.AuctioneerService, address).requestTaskAuctions({ tasks: batch });
        metrics?.auctionRequestsSent.inc(batch.length);
        logger.debug({ tasks: batch.length, auctioneer: address }, "auction requested");
      }
    } catch (err) {
      metrics?.auctionRequestsFailed.inc(batch.length);
      logger.warn(
        { err: (err as Error).message, tasks: batch.length },
        "auction request failed; convergence will send the tasks again",
      );
    } finally {
      this.sending = false;
      this.schedule();
    }
  }

  private checkIdle(): void {
    if (this.queue.size === 0 && !this.sending && !this.scheduled && this.markIdle) {
      const mark = this.markIdle;
      this.idle = undefined;
      this.markIdle = undefined;
      mark();
    }
  }
}
