import { createHash } from "node:crypto";
import type { UploadAction } from "@diego/proto";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import { firstFile } from "../runtime/tar-files.js";
import { homeOf, resolveIn } from "./container-files.js";
import { formatBytes } from "./download-step.js";
import { cancelledError, StepError, type StepContext, type StepResult } from "./step.js";

export interface UploadStepDeps {
  runtime: ContainerRuntime;
  containerId: string;
  /** Attempts of the POST (Diego: 3, no backoff). */
  attempts?: number;
  /** Per-attempt timeout (Diego: 10 minutes). */
  timeoutMs?: number;
  /** Called with each failed attempt's reason (component log, not the task's: it may carry the URL). */
  onAttemptFailed?: (reason: string) => void;
}

/**
 * Streams the file `from` out of the container (relative paths start at the user's home) and POSTs it
 * to `to` with Content-MD5 and Content-Digest; up to 3 attempts, HTTP >= 400 counts as failure.
 */
export async function uploadStep(u: UploadAction, ctx: StepContext, deps: UploadStepDeps): Promise<StepResult> {
  const source = ctx.logSource;
  const suffix = u.artifact ? ` for ${u.artifact}` : "";
  const fail = (message: string) => {
    if (u.artifact) ctx.log("stderr", `${message}${suffix}`, source);
    return new StepError(`${message}${suffix}`, true);
  };
  if (ctx.signal.aborted) return cancelledError();
  if (u.artifact) ctx.log("stdout", `Uploading ${u.artifact}...`, source);
  let data: Buffer;
  try {
    const from = resolveIn(await homeOf(deps.runtime, deps.containerId, u.user), u.from);
    const file = await firstFile(await deps.runtime.getArchive(deps.containerId, from));
    if (!file) return fail("Failed to establish stream from container");
    data = file.data;
  } catch {
    if (ctx.signal.aborted) return cancelledError();
    return fail("Failed to establish stream from container");
  }
  const md5 = createHash("md5").update(data).digest("base64");
  const sha256 = createHash("sha256").update(data).digest("base64");
  const attempts = deps.attempts ?? 3;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (ctx.signal.aborted) return cancelledError();
    try {
      const res = await fetch(u.to, {
        method: "POST",
        body: data,
        headers: {
          "content-type": "application/octet-stream",
          "content-md5": md5,
          "content-digest": `sha-256=:${sha256}:`,
        },
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(deps.timeoutMs ?? 600_000)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 400) {
        if (u.artifact) ctx.log("stdout", `Uploaded ${u.artifact} (${formatBytes(data.length)})`, source);
        return undefined;
      }
      deps.onAttemptFailed?.(`upload attempt ${attempt}: HTTP ${res.status}`);
    } catch (err) {
      if (ctx.signal.aborted) return cancelledError();
      deps.onAttemptFailed?.(`upload attempt ${attempt}: ${(err as Error).message}`);
    }
  }
  return fail("Failed to upload payload");
}
