import type { Logger } from "@diego/kit";
import { isTerminal } from "@diego/models";
import { TaskState } from "@diego/proto";
import type { CellLiveness } from "../cells/cell-liveness.js";
import type { TaskController } from "../controller/task-controller.js";
import type { Leadership } from "../leader/leadership.js";
import type { TaskStore } from "../store/task-store.js";

export interface CellLossReaperOptions {
  liveness: CellLiveness;
  store: TaskStore;
  controller: TaskController;
  leadership: Leadership;
  /** False while the presence records cannot be trusted (etcd unreachable): nothing is decided then. */
  presenceKnown: () => boolean;
  logger: Logger;
  /** How often a decision that holds cells is taken again (to see heartbeats resume). */
  recheckMs?: number;
}

/**
 * Fails the CLAIMED and RUNNING tasks of a lost cell as soon as its presence is seen gone, instead of
 * at the next convergence pass; CellLiveness decides which absent cells are lost and which are held.
 * On the leader only.
 */
export class CellLossReaper {
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly o: CellLossReaperOptions) {}

  start(): void {
    this.unsubscribe.push(this.o.liveness.onGone(() => this.kick()));
    this.unsubscribe.push(this.o.leadership.onChange((leader) => leader && this.kick()));
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Decides now (or right after the decision in progress). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = true;
    void this.reap()
      .catch((err: unknown) => this.o.logger.error({ err }, "failing the tasks of lost cells failed"))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async reap(): Promise<void> {
    const { liveness, store, controller, logger } = this.o;
    if (!this.o.leadership.isLeader() || !this.o.presenceKnown()) return;
    const decision = liveness.decide();
    for (const cellId of decision.lost) {
      const guids = [
        ...store.select({ cellId, state: TaskState.CLAIMED }),
        ...store.select({ cellId, state: TaskState.RUNNING }),
      ].map((e) => e.guid);
      if (guids.length) logger.warn({ cellId, tasks: guids.length }, "cell lost: failing its tasks");
      await Promise.all(
        guids.map((guid) =>
          controller.converge(guid, "cellLost", cellId).catch((err: unknown) => {
            if (isTerminal(err)) return; // it moved on meanwhile
            logger.warn({ taskGuid: guid, cellId, err: (err as Error).message }, "failing a lost cell's task failed");
          }),
        ),
      );
    }
    if (decision.hold && !this.stopped) {
      const wait = Math.max(50, Math.min(decision.hold.untilMs - Date.now(), this.o.recheckMs ?? 1_000));
      this.timer = setTimeout(() => this.kick(), wait);
      this.timer.unref();
    }
  }
}
