import { TaskState, type Task } from "@diego/proto";
import { DiegoError, formatDuration } from "@diego/models";
import type { CommandContext } from "../context.js";
import { describeError } from "../errors.js";
import { parseDurationOption } from "../duration-option.js";
import { RunExitCode, runExitCodeOf } from "../exit-codes.js";
import { logLineText } from "../format/task-view.js";
import { logLineJson, taskJson } from "../format/json-lines.js";
import { LogFollower } from "../log-follower.js";
import { ProgressLine } from "../progress-line.js";
import { readTaskFile } from "../task-file-input.js";
import { desireCommand } from "./desire.js";

export interface RunOptions {
  /** Follow the task to completion (default); --no-wait only desires it. */
  wait: boolean;
  /** Print the task's output while it runs. */
  logs: boolean;
  /** Resolve and delete the completed task (default); --no-resolve leaves it COMPLETED. */
  resolve: boolean;
  pollInterval?: string;
}

/**
 * `diego run <file.json|-> [--wait] [--logs] [--no-resolve]`: desires the task, shows a progress line
 * on a terminal, follows it to completion, prints its result (stdout) or its failure reason (stderr),
 * resolves and deletes it. Exit 0 when it succeeded, its exit_status when its run action exited
 * non-zero, 124 when it failed otherwise (RunExitCode). The first Ctrl-C cancels the task, as soon as
 * the BBS has it (exit 130 once it has stopped); a second stops waiting.
 */
export async function runCommand(ctx: CommandContext, file: string, opts: RunOptions): Promise<number> {
  if (!opts.wait) return desireCommand(ctx, file);
  const request = await readTaskFile(ctx, file);
  const pollIntervalMs =
    opts.pollInterval === undefined ? 1_000 : parseDurationOption("--poll-interval", opts.pollInterval, "500ms or 2s");
  const client = ctx.client();
  const started = ctx.now();
  const progress = new ProgressLine(ctx.io.stderr, ctx.io.stderr.isTTY && !ctx.json, ctx.now);
  const stop = new AbortController();
  let desired = false;
  let cancelRequested = false;

  const sendCancel = () => {
    client.cancel(request.taskGuid).catch((err: unknown) => {
      // Already completed: it is about to be reported anyway.
      if (!DiegoError.is(err, "FAILED_PRECONDITION"))
        progress.around(() => ctx.err(describeError(err, ctx.address, "cancel: ", ctx.tls)));
    });
  };
  // First Ctrl-C: cancel the task (as soon as it exists); second: stop waiting.
  const release = ctx.io.onInterrupt(() => {
    if (cancelRequested) {
      stop.abort();
      return;
    }
    cancelRequested = true;
    progress.around(() => ctx.err(`diego: cancelling task ${request.taskGuid} (Ctrl-C again to stop waiting)\n`));
    if (desired) sendCancel();
  });

  const logs = opts.logs
    ? new LogFollower(client, request.taskGuid, (line) =>
        progress.around(() => ctx.out(ctx.json ? logLineJson(line) : logLineText(line))),
      )
    : undefined;

  let task: Task;
  try {
    task = await client.runToCompletion(request, {
      signal: stop.signal,
      pollIntervalMs,
      resolve: opts.resolve,
      onProgress: (t) => {
        if (!desired && cancelRequested) sendCancel();
        desired = true;
        progress.update(t);
        if (logs && (t.cellId || t.state >= TaskState.COMPLETED)) logs.start();
      },
      onCompleted: logs ? () => logs.finish(10_000) : undefined,
    });
  } catch (err) {
    progress.stop();
    logs?.abort();
    if (stop.signal.aborted) {
      ctx.err(`diego: stopped waiting for task ${request.taskGuid} (see: diego get ${request.taskGuid})\n`);
      return RunExitCode.interrupted;
    }
    throw err;
  } finally {
    release();
  }
  progress.stop();

  const took = formatDuration(Math.max(0, ctx.now() - started));
  if (ctx.json) ctx.out(taskJson(task));
  else if (task.result) ctx.data(task.result.endsWith("\n") ? task.result : `${task.result}\n`);
  const code = runExitCodeOf(task, cancelRequested);
  if (task.failed) {
    ctx.err(`diego: task ${task.taskGuid} failed${task.cellId ? ` on ${task.cellId}` : ""}: ${task.failureReason}\n`);
  } else if (!ctx.json && ctx.io.stderr.isTTY)
    ctx.err(`task ${task.taskGuid} succeeded${task.cellId ? ` on ${task.cellId}` : ""} in ${took}\n`);
  return code;
}
