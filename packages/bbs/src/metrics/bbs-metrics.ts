import { TaskState } from "@diego/proto";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * The BBS's metrics under Diego's names (docs/diego-differences.md, the system itself), which are valid Prometheus
 * names as they are:
 *   TasksPending / TasksRunning / TasksCompleted / TasksResolving  gauges, read from the task index
 *     at scrape time (TasksRunning counts CLAIMED and RUNNING, as Diego's Running state covers both;
 *     TasksClaimed gives the CLAIMED part alone)
 *   TasksStarted / TasksSucceeded / TasksFailed {cell_id}  counters of transitions made here
 *   ConvergenceTaskRuns, ConvergenceTaskDuration (seconds), ConvergenceTasksKicked, ConvergenceTasksPruned
 *   TaskCallbacksDelivered / TaskCallbacksFailed, AuctionRequestsSent / AuctionRequestsFailed,
 *   TaskStoreTxnTasks / TaskStoreTxnSeconds / TaskStoreTxnConflicts  (ours)
 *   CellsHeld {reason}  absent cells not declared lost yet (mass-silence, recovering, settling)  (ours)
 */
export class BbsMetrics {
  readonly tasksStarted: Counter<"cell_id">;
  readonly tasksSucceeded: Counter<"cell_id">;
  readonly tasksFailed: Counter<"cell_id">;
  readonly convergenceRuns: Counter;
  readonly convergenceDuration: Histogram;
  readonly convergenceKicked: Counter;
  readonly convergencePruned: Counter;
  readonly callbacksDelivered: Counter;
  readonly callbacksFailed: Counter;
  readonly auctionRequestsSent: Counter;
  readonly auctionRequestsFailed: Counter;
  readonly storeTxnTasks: Histogram;
  readonly storeTxnSeconds: Histogram;
  readonly storeTxnConflicts: Counter;
  readonly cellsHeld: Gauge<"reason">;

  constructor(registry: Registry, countByState: () => Map<TaskState, number>) {
    const registers = [registry];
    const gauge = (name: string, help: string, states: TaskState[]) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const counts = countByState();
          this.set(states.reduce((sum, s) => sum + (counts.get(s) ?? 0), 0));
        },
      });
    gauge("TasksPending", "Tasks waiting to be placed (PENDING).", [TaskState.PENDING]);
    gauge("TasksRunning", "Tasks on a cell (CLAIMED or RUNNING).", [TaskState.CLAIMED, TaskState.RUNNING]);
    gauge("TasksClaimed", "Tasks claimed by a cell whose container is not running yet (CLAIMED).", [TaskState.CLAIMED]);
    gauge("TasksCompleted", "Finished tasks waiting to be resolved (COMPLETED).", [TaskState.COMPLETED]);
    gauge("TasksResolving", "Tasks being resolved (RESOLVING).", [TaskState.RESOLVING]);
    const perCell = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ["cell_id"] as const, registers });
    this.tasksStarted = perCell("TasksStarted", "Tasks claimed by a cell (StartTask), by cell.");
    this.tasksSucceeded = perCell("TasksSucceeded", "Tasks completed successfully, by cell.");
    this.tasksFailed = perCell(
      "TasksFailed",
      "Tasks completed as failed (incl. cancelled, expired, rejected too often), by cell.",
    );
    this.convergenceRuns = new Counter({
      name: "ConvergenceTaskRuns",
      help: "Task convergence passes run by this instance.",
      registers,
    });
    this.convergenceDuration = new Histogram({
      name: "ConvergenceTaskDuration",
      help: "Seconds one task convergence pass took.",
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20],
      registers,
    });
    this.convergenceKicked = new Counter({
      name: "ConvergenceTasksKicked",
      help: "Tasks convergence acted on: re-auctioned, failed, demoted or re-sent to their callback.",
      registers,
    });
    this.convergencePruned = new Counter({
      name: "ConvergenceTasksPruned",
      help: "Tasks convergence deleted: unresolved past expire_completed_task_duration, or unreadable.",
      registers,
    });
    this.callbacksDelivered = new Counter({
      name: "TaskCallbacksDelivered",
      help: "Completion callbacks answered (task deleted).",
      registers,
    });
    this.callbacksFailed = new Counter({
      name: "TaskCallbacksFailed",
      help: "Completion callbacks that failed every attempt.",
      registers,
    });
    this.auctionRequestsSent = new Counter({
      name: "AuctionRequestsSent",
      help: "Tasks sent to the auctioneer.",
      registers,
    });
    this.auctionRequestsFailed = new Counter({
      name: "AuctionRequestsFailed",
      help: "Tasks whose auction request failed (convergence re-sends them).",
      registers,
    });
    this.storeTxnTasks = new Histogram({
      name: "TaskStoreTxnTasks",
      help: "Tasks written together in one etcd transaction (the write coalescer's batch size).",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
    this.storeTxnSeconds = new Histogram({
      name: "TaskStoreTxnSeconds",
      help: "Seconds one etcd write transaction took.",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.storeTxnConflicts = new Counter({
      name: "TaskStoreTxnConflicts",
      help: "Write transactions that lost a compare and went again.",
      registers,
    });
    this.cellsHeld = new Gauge({
      name: "CellsHeld",
      help: "Absent cells not declared lost yet: most went silent at once (mass-silence) or the BBS just recovered.",
      labelNames: ["reason"] as const,
      registers,
    });
  }

  /** Sets CellsHeld: `held` cells for `reason`, none for the other reasons. */
  setCellsHeld(held: number, reason: string | undefined): void {
    for (const r of ["mass-silence", "recovering", "settling"])
      this.cellsHeld.set({ reason: r }, r === reason ? held : 0);
  }

  /** Counts a task that just became COMPLETED. */
  completed(cellId: string, failed: boolean): void {
    (failed ? this.tasksFailed : this.tasksSucceeded).inc({ cell_id: cellId });
  }
}

/** The etcd store's observeTxn hook, feeding the TaskStoreTxn* metrics. */
export function txnObserver(metrics: BbsMetrics): (tasks: number, seconds: number, succeeded: boolean) => void {
  return (tasks, seconds, succeeded) => {
    metrics.storeTxnTasks.observe(tasks);
    metrics.storeTxnSeconds.observe(seconds);
    if (!succeeded) metrics.storeTxnConflicts.inc();
  };
}
