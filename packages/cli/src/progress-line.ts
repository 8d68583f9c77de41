import { TaskState, type Task } from "@diego/proto";
import { formatDuration } from "@diego/models";
import { terminalSafe } from "./format/escape.js";
import { clip } from "./format/table.js";

const SPINNER = ["|", "/", "-", "\\"];

/** The text of the progress line for a task that is pending or running. Pure. */
export function progressText(task: Task, elapsedMs: number, tick: number): string {
  const state = TaskState[task.state] ?? String(task.state);
  const where = task.cellId ? ` on ${task.cellId}` : "";
  const rejected = task.rejectionCount ? ` (rejected ${task.rejectionCount}x: ${task.rejectionReason})` : "";
  const seconds = formatDuration(Math.floor(elapsedMs / 100) * 100);
  return terminalSafe(`${SPINNER[tick % SPINNER.length]} ${task.taskGuid} ${state}${where} ${seconds}${rejected}`);
}

/**
 * One self-overwriting line on a terminal while a task is pending or running. Disabled (it writes
 * nothing) when the stream is not a terminal, so pipes and files get clean output.
 */
export class ProgressLine {
  private task: Task | undefined;
  private shown = false;
  private tick = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly started: number;

  constructor(
    private readonly out: { write(text: string): void; isTTY: boolean; columns?: number },
    private readonly enabled: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  update(task: Task): void {
    if (!this.enabled) return;
    this.task = task;
    if (task.state === TaskState.COMPLETED || task.state === TaskState.RESOLVING) {
      this.stop();
      return;
    }
    this.timer ??= setInterval(() => this.draw(), 250);
    this.timer.unref?.();
    this.draw();
  }

  /** Prints something above the line (log output) without garbling it. */
  around(print: () => void): void {
    const wasShown = this.shown;
    this.clear();
    print();
    if (wasShown) this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    if (!this.task) return;
    const text = progressText(this.task, this.now() - this.started, this.tick++);
    this.out.write(`\r\x1b[K${clip(text, Math.max(20, (this.out.columns ?? 80) - 1))}`);
    this.shown = true;
  }

  private clear(): void {
    if (!this.shown) return;
    this.out.write("\r\x1b[K");
    this.shown = false;
  }
}
