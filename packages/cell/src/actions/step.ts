import type { Action } from "@diego/proto";
import type { LogStream } from "../logs/task-log-store.js";

/**
 * The common shape of every action step (docs/contract.md, actions). A step runs until done and resolves
 * to undefined on success or a StepError; cancellation comes in through `ctx.signal`.
 */
export class StepError extends Error {
  override readonly name = "StepError";
  constructor(
    message: string,
    /** Safe to show to users (emit_progress appends only these). */
    readonly emittable: boolean,
    /** The step stopped because it was cancelled; never part of an aggregate message. */
    readonly cancelled = false,
    /** The exit status of the run action whose failure this is (Task.exit_status); composites pass it on. */
    readonly exitStatus?: number,
  ) {
    super(message);
  }
}

export type StepResult = StepError | undefined;

export interface StepContext {
  /** Aborted when the step must stop (task cancelled, timeout, codependent sibling exited). */
  signal: AbortSignal;
  /** The log source of this subtree: the nearest log_source set above, else the task's, else LOG. */
  logSource: string;
  /** Emits one line of task output. */
  log(stream: LogStream, line: string, source: string): void;
  /** Told the exit status of every run action's process that exited by itself (not stopped by the step). */
  onExit?(status: number): void;
}

/** Runs one action in a context; composites recurse through it, so they test without a container. */
export type StepRunner = (action: Action, ctx: StepContext) => Promise<StepResult>;

export const CANCELLED = "cancelled";

export function cancelledError(): StepError {
  return new StepError(CANCELLED, false, true);
}

/**
 * Joins the errors of several children with `; `, leaving out cancellations (parallel, codependent).
 * All cancelled (or none): a cancellation, or success when there were no errors. The exit status is
 * `exitStatus` when given, else that of the first shown error (in action order) that carries one.
 */
export function aggregate(errors: StepResult[], exitStatus?: number): StepResult {
  const failed = errors.filter((e): e is StepError => e !== undefined);
  if (failed.length === 0) return undefined;
  const shown = failed.filter((e) => !e.cancelled);
  if (shown.length === 0) return cancelledError();
  return new StepError(
    shown.map((e) => e.message).join("; "),
    shown.every((e) => e.emittable),
    false,
    exitStatus ?? shown.find((e) => e.exitStatus !== undefined)?.exitStatus,
  );
}

/** A subtree's context under its own log_source, when it sets one (timeout, try, parallel, codependent, emit_progress). */
export function withSource(ctx: StepContext, logSource: string): StepContext {
  return logSource ? { ...ctx, logSource } : ctx;
}

/** An AbortController that also aborts when `parent` does. */
export function childController(parent: AbortSignal): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}
