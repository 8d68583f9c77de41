import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EgressDenied, egressRequest, EgressPolicy } from "@diego/kit";
import type { UploadAction } from "@diego/proto";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import { firstFileTo } from "../runtime/tar-files.js";
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
  /** Where uploads may go; default: the default policy. */
  egress?: EgressPolicy;
  /** Bytes one upload may send; default 1 GiB. */
  uploadMaxBytes?: number;
  /** Called with each failed attempt's reason (component log, not the task's: it may carry the URL). */
  onAttemptFailed?: (reason: string) => void;
}

/**
 * Streams the file `from` out of the container (relative paths start at the user's home) into a
 * temporary file, at most `uploadMaxBytes`, hashing it on the way, and POSTs it from there to `to`
 * through the egress policy with Content-MD5 and Content-Digest; up to 3 attempts, HTTP >= 400 counts
 * as failure, a redirect is not followed.
 */
export async function uploadStep(u: UploadAction, ctx: StepContext, deps: UploadStepDeps): Promise<StepResult> {
  const source = u.logSource || ctx.logSource;
  const suffix = u.artifact ? ` for ${u.artifact}` : "";
  const fail = (message: string) => {
    if (u.artifact) ctx.log("stderr", `${message}${suffix}`, source);
    return new StepError(`${message}${suffix}`, true);
  };
  if (ctx.signal.aborted) return cancelledError();
  if (u.artifact) ctx.log("stdout", `Uploading ${u.artifact}...`, source);
  const dir = await mkdtemp(join(tmpdir(), "diego-upload-"));
  try {
    const file = join(dir, "data");
    const md5 = createHash("md5");
    const sha256 = createHash("sha256");
    let size: number | undefined;
    try {
      const from = resolveIn(await homeOf(deps.runtime, deps.containerId, u.user), u.from);
      const tar = await deps.runtime.getArchive(deps.containerId, from);
      size = await firstFileTo(tar, file, deps.uploadMaxBytes ?? 1024 ** 3, { md5, sha256 });
      if (size === undefined) return fail("Failed to establish stream from container");
    } catch (err) {
      if (ctx.signal.aborted) return cancelledError();
      if ((err as Error).message.includes("an upload may send")) return fail((err as Error).message);
      return fail("Failed to establish stream from container");
    }
    const headers = {
      "content-type": "application/octet-stream",
      "content-length": String(size),
      "content-md5": md5.digest("base64"),
      "content-digest": `sha-256=:${sha256.digest("base64")}:`,
    };
    const egress = deps.egress ?? new EgressPolicy();
    const attempts = deps.attempts ?? 3;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (ctx.signal.aborted) return cancelledError();
      try {
        const res = await egressRequest(egress, u.to, {
          method: "POST",
          body: createReadStream(file),
          headers,
          timeoutMs: deps.timeoutMs ?? 600_000,
          signal: ctx.signal,
        });
        res.body.resume();
        if (res.status < 400) {
          if (u.artifact) ctx.log("stdout", `Uploaded ${u.artifact} (${formatBytes(size)})`, source);
          return undefined;
        }
        deps.onAttemptFailed?.(`upload attempt ${attempt}: HTTP ${res.status}`);
      } catch (err) {
        if (ctx.signal.aborted) return cancelledError();
        if (err instanceof EgressDenied) return fail(`Upload refused by the egress policy: ${err.message}`);
        deps.onAttemptFailed?.(`upload attempt ${attempt}: ${(err as Error).message}`);
      }
    }
    return fail("Failed to upload payload");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
