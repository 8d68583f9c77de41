import { DiegoError, invalidArgument, isFinished, taskNotFound } from "@diego/models";
import { cellv1, type LogLine, type Task } from "@diego/proto";
import type { TaskStore } from "../store/task-store.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/**
 * The task's container output, forwarded from the cell that has (or had) it, found through that
 * cell's presence. With follow, a task not yet on a cell is waited for until one claims it, and the
 * cell streams until the task completes. A finished task whose cell no longer has its output (gone,
 * restarted, past its retention) is answered with the last output the BBS kept (docs/outcomes.md).
 */
export const taskLogs = ({ store, presence, clients, controller }: HandlerDeps): TaskServiceImpl["taskLogs"] =>
  async function* (req, ctx) {
    const guid = req.taskGuid;
    if (!guid) throw invalidArgument([{ field: "task_guid", message: "is required" }]);
    let task = await store.get(guid);
    if (!task) throw taskNotFound(guid);
    if (isFinished(task.state)) {
      const tail = await controller.logTail(guid);
      if (tail) {
        yield* fromCellOr(tail, task.cellId ? await presence.get(task.cellId) : undefined, clients, guid, ctx.signal);
        return;
      }
    }
    if (!task.cellId) {
      if (!req.follow || isFinished(task.state)) return;
      task = await waitForCell(store, guid, ctx.signal);
      if (!task?.cellId) return;
    }
    const cell = await presence.get(task.cellId);
    if (!cell?.address) {
      // FAILED_PRECONDITION, not UNAVAILABLE: this BBS answered; the cell is what is missing, and a
      // client must not report it as the BBS being unreachable (docs/outcomes.md, logs).
      throw new DiegoError("FAILED_PRECONDITION", cellGone(task, guid));
    }
    const client = clients.get(cellv1.CellRepService, cell.address);
    try {
      yield* client.taskLogs({ taskGuid: guid, follow: req.follow }, { signal: ctx.signal });
    } catch (err) {
      // The cell, not this BBS, could not be reached: say so (UNAVAILABLE reads as the BBS being down).
      if (DiegoError.is(err, "UNAVAILABLE") || DiegoError.is(err, "DEADLINE_EXCEEDED")) {
        throw new DiegoError(
          "FAILED_PRECONDITION",
          `cell ${JSON.stringify(task.cellId)} of task ${JSON.stringify(guid)} cannot be reached at ${cell.address} (${(err as Error).message}); its logs cannot be read until it is back`,
        );
      }
      throw err;
    }
  };

/** Why a task's output cannot be read: its cell is not present (and, once finished, nothing was kept). */
export function cellGone(task: Pick<Task, "cellId" | "state">, guid: string): string {
  const cell = JSON.stringify(task.cellId);
  return isFinished(task.state)
    ? `task ${JSON.stringify(guid)} ended without handing its output to the BBS, and its cell ${cell} is gone: the output was lost with the cell`
    : `cell ${cell} of task ${JSON.stringify(guid)} is not present; its logs cannot be read until it is back`;
}

/** The cell's full output while it still has it; else (cell gone, or it answers no line) the kept tail. */
async function* fromCellOr(
  tail: LogLine[],
  cell: { address?: string } | undefined,
  clients: HandlerDeps["clients"],
  guid: string,
  signal: AbortSignal,
): AsyncGenerator<LogLine> {
  if (cell?.address) {
    let sent = 0;
    try {
      for await (const line of clients
        .get(cellv1.CellRepService, cell.address)
        .taskLogs({ taskGuid: guid }, { signal })) {
        sent++;
        yield line;
      }
    } catch (err) {
      if (sent > 0) throw err;
    }
    if (sent > 0) return;
  }
  yield* tail;
}

/** Resolves with the task once a cell has it, or once it finished or went without one (undefined if removed). */
function waitForCell(store: TaskStore, guid: string, signal: AbortSignal): Promise<Task | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (task: Task | undefined) => {
      if (done) return;
      done = true;
      unsubscribe();
      signal.removeEventListener("abort", onAbort);
      resolve(task);
    };
    const check = (task: Task | undefined) => {
      if (!task || task.cellId || isFinished(task.state)) finish(task);
    };
    const onAbort = () => finish(undefined);
    const unsubscribe = store.subscribe((event) => {
      if (event.kind === "reset") void store.get(guid).then(check);
      else if (event.guid === guid) check(event.after());
    });
    signal.addEventListener("abort", onAbort, { once: true });
    void store.get(guid).then(check);
  });
}
