import type { RunAction } from "@diego/proto";
import { DiegoError, exitedWithStatus } from "@diego/models";
import type { ContainerRuntime, ExecResult, ProcessHandle } from "../runtime/container-runtime.js";
import { LineSplitter } from "../logs/line-splitter.js";
import { cancelledError, StepError, type StepContext, type StepResult } from "./step.js";

export interface RunStepDeps {
  runtime: ContainerRuntime;
  containerId: string;
  /** SIGTERM, then this long, then SIGKILL. */
  gracefulShutdownMs: number;
  /** After SIGKILL, give up waiting after this long (Diego: 1 s). */
  killWaitMs?: number;
  /** Where a run action without `dir` starts: its user's home directory (made when missing). */
  workDir?: (user: string) => Promise<string>;
  /** NAME=value every process gets under the task's and the action's env (CF_INSTANCE_*). */
  instanceEnv?: () => Promise<string[]>;
}

/**
 * Runs one process in the container (docs/contract.md, actions). Non-zero exit fails with
 * `<source>: Exited with status N` (+ ` (out of memory)`), carrying N as its exit status; every exit
 * of its own goes to `ctx.onExit`. On cancel: a process not started yet never starts; a started one
 * gets SIGTERM (as soon as it has a pid), then after the grace period SIGKILL.
 */
export async function runStep(run: RunAction, ctx: StepContext, deps: RunStepDeps): Promise<StepResult> {
  const source = run.logSource || ctx.logSource;
  if (ctx.signal.aborted) return cancelledError();
  const show = (stream: "stdout" | "stderr") =>
    new LineSplitter((line) => {
      if (!run.suppressLogOutput) ctx.log(stream, line, source);
    });
  const out = show("stdout");
  const err = show("stderr");
  let handle: ProcessHandle;
  try {
    const dir = run.dir || ((await deps.workDir?.(run.user)) ?? "");
    const baseEnv = (await deps.instanceEnv?.()) ?? [];
    if (ctx.signal.aborted) return cancelledError();
    handle = await deps.runtime.exec(
      deps.containerId,
      {
        argv: [run.path, ...run.args],
        env: run.env.map((e) => `${e.name}=${e.value}`),
        baseEnv,
        user: run.user,
        dir,
        nofile: Number(run.resourceLimits?.nofile ?? 0n),
      },
      { stdout: (c) => out.write(c), stderr: (c) => err.write(c) },
      ctx.signal,
    );
  } catch (e) {
    if (ctx.signal.aborted || DiegoError.is(e, "CANCELLED")) return cancelledError();
    const message = (e as Error).message;
    ctx.log("stderr", `failed-creating-process: ${message}`, source);
    return new StepError(message, false);
  }

  let stopping = false;
  let gaveUp: (v: "stuck") => void = () => undefined;
  const stuck = new Promise<"stuck">((resolve) => (gaveUp = resolve));
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void stopProcess(handle, deps).then((s) => s === "stuck" && gaveUp("stuck"));
  };
  if (ctx.signal.aborted) stop();
  else ctx.signal.addEventListener("abort", stop, { once: true });
  const outcome = await Promise.race([handle.exited, stuck]);
  ctx.signal.removeEventListener("abort", stop);
  out.end();
  err.end();
  if (outcome === "stuck") return new StepError("process did not exit", false, true);
  const result = outcome as ExecResult;
  if (!run.suppressLogOutput)
    ctx.log("stdout", `Exit status ${result.exitCode}${result.outOfMemory ? " (out of memory)" : ""}`, source);
  if (stopping) return cancelledError();
  ctx.onExit?.(result.exitCode);
  if (result.exitCode === 0) return undefined;
  return new StepError(exitedWithStatus(source, result.exitCode, result.outOfMemory), true, false, result.exitCode);
}

async function stopProcess(handle: ProcessHandle, deps: RunStepDeps): Promise<"exited" | "stuck"> {
  const exited = handle.exited.then(() => "exited" as const);
  await handle.signal("SIGTERM").catch(() => undefined);
  if ((await Promise.race([exited, delay(deps.gracefulShutdownMs)])) === "exited") return "exited";
  await handle.signal("SIGKILL").catch(() => undefined);
  return (await Promise.race([exited, delay(deps.killWaitMs ?? 1000)])) === "exited" ? "exited" : "stuck";
}

function delay(ms: number): Promise<"timer"> {
  return new Promise((resolve) => setTimeout(() => resolve("timer"), ms).unref?.());
}
