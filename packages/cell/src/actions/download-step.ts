import { EgressDenied } from "@diego/kit";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { posix } from "node:path";
import { createGunzip } from "node:zlib";
import type { DownloadAction } from "@diego/proto";
import { truncateReason } from "@diego/models";
import { pack } from "tar-stream";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import { helper, homeOf, resolveIn } from "./container-files.js";
import type { DownloadCache } from "./download-cache.js";
import { cancelledError, StepError, type StepContext, type StepResult } from "./step.js";

export interface DownloadStepDeps {
  runtime: ContainerRuntime;
  containerId: string;
  cache: DownloadCache;
  /** The task guid: its downloads share the pool by the cache's per-task rule. */
  owner?: string;
}

/**
 * Fetches `from` on the cell (through the cache when cache_key is set, checksum verified), then
 * extracts a tar or tgz archive at `to`, or places any other file at `to`, owned by `user`.
 */
export async function downloadStep(d: DownloadAction, ctx: StepContext, deps: DownloadStepDeps): Promise<StepResult> {
  const source = d.logSource || ctx.logSource;
  if (ctx.signal.aborted) return cancelledError();
  if (d.artifact) ctx.log("stdout", `Downloading ${d.artifact}...`, source);
  let fetched;
  try {
    fetched = await deps.cache.fetch(d.from, {
      cacheKey: d.cacheKey || undefined,
      checksumAlgorithm: d.checksumAlgorithm || undefined,
      checksumValue: d.checksumValue || undefined,
      signal: ctx.signal,
      owner: deps.owner,
    });
  } catch (err) {
    if (ctx.signal.aborted) return cancelledError();
    ctx.log("stderr", truncateReason(`Downloading failed: ${(err as Error).message}`), source);
    if (err instanceof EgressDenied)
      return new StepError(truncateReason(`Downloading refused by the egress policy: ${err.message}`), true);
    return new StepError(d.artifact ? `Downloading ${d.artifact} failed` : "Downloading failed", true);
  }
  try {
    const to = resolveIn(await homeOf(deps.runtime, deps.containerId, d.user), d.to);
    const kind = await archiveKind(fetched.file);
    const owner = d.user && d.user !== "root" ? d.user : "";
    if (kind === "file") {
      await helper(deps.runtime, deps.containerId, ["mkdir", "-p", posix.dirname(to)]);
      await deps.runtime.putArchive(
        deps.containerId,
        posix.dirname(to),
        fileTar(posix.basename(to), fetched.file, fetched.size),
      );
    } else {
      await helper(deps.runtime, deps.containerId, ["mkdir", "-p", to]);
      const raw = createReadStream(fetched.file);
      await deps.runtime.putArchive(deps.containerId, to, kind === "tgz" ? raw.pipe(createGunzip()) : raw);
    }
    if (owner) await helper(deps.runtime, deps.containerId, ["chown", "-R", owner, to]);
  } catch (err) {
    if (ctx.signal.aborted) return cancelledError();
    const what = d.artifact ? `${d.artifact} ` : "";
    return new StepError(truncateReason(`Copying ${what}into the container failed: ${(err as Error).message}`), true);
  } finally {
    await fetched.release();
  }
  if (d.artifact) ctx.log("stdout", `Downloaded ${d.artifact} (${formatBytes(fetched.size)})`, source);
  return undefined;
}

/** tar, tgz, or any other file (placed as is). */
export async function archiveKind(file: string): Promise<"tar" | "tgz" | "file"> {
  const head = await readHead(file, 512);
  if (isTar(head)) return "tar";
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const inner = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let n = 0;
      const gunzip = createReadStream(file).pipe(createGunzip());
      gunzip.on("data", (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= 512) {
          gunzip.destroy();
          resolve(Buffer.concat(chunks));
        }
      });
      gunzip.on("end", () => resolve(Buffer.concat(chunks)));
      gunzip.on("error", () => resolve(Buffer.concat(chunks)));
    });
    if (isTar(inner)) return "tgz";
  }
  return "file";
}

function isTar(head: Buffer): boolean {
  return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function fileTar(name: string, file: string, size: number): NodeJS.ReadableStream {
  const p = pack();
  const entry = p.entry({ name, size, mode: 0o644 }, (err) => (err ? p.destroy(err) : p.finalize()));
  createReadStream(file).pipe(entry);
  return p as unknown as NodeJS.ReadableStream;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ["K", "M", "G", "T"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1).replace(/\.0$/, "")}${units[u]}`;
}
