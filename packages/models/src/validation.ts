import type { Action, TaskCreateRequest } from "@diego/proto";
import { invalidArgument, type FieldViolation } from "./errors.js";
import { isRootFsError, parseRootFs } from "./root-fs.js";

const GUID = /^[A-Za-z0-9_-]+$/;
const MAX_GUID = 255;
const MAX_DOMAIN = 255;
const MAX_ANNOTATION_BYTES = 10 * 1024;
/** How deep an action tree may nest (docs/limits.md). */
export const MAX_ACTION_DEPTH = 32;
const CHECKSUM_ALGORITHMS = new Set(["md5", "sha1", "sha256"]);

/** Every problem of a TaskCreateRequest, each naming its field by its snake_case path. Pure. */
export function taskCreateRequestViolations(req: TaskCreateRequest): FieldViolation[] {
  const out: FieldViolation[] = [];
  const bad = (field: string, message: string) => out.push({ field, message });

  if (!req.taskGuid) bad("task_guid", "is required");
  else if (!GUID.test(req.taskGuid)) bad("task_guid", "may contain only a-z A-Z 0-9 _ -");
  else if (req.taskGuid.length > MAX_GUID) bad("task_guid", `must be at most ${MAX_GUID} characters`);

  if (!req.domain) bad("domain", "is required");
  else if (req.domain.length > MAX_DOMAIN) bad("domain", `must be at most ${MAX_DOMAIN} characters`);

  if (!req.rootFs) bad("root_fs", "is required");
  else {
    const rootFs = parseRootFs(req.rootFs);
    if (isRootFsError(rootFs)) bad("root_fs", rootFs.error);
    else if (rootFs.scheme !== "docker" && (req.imageUsername || req.imagePassword)) {
      bad("image_username", "registry credentials apply only to a docker:// root_fs");
    }
  }

  envViolations(req.env, "env", bad);
  if (req.cpuWeight > 100) bad("cpu_weight", "must be between 0 and 100");
  if (req.diskMb < 0) bad("disk_mb", "must be >= 0");
  if (req.memoryMb < 0) bad("memory_mb", "must be >= 0");
  if (req.maxPids < 0) bad("max_pids", "must be >= 0");

  if (!req.action) bad("action", "is required");
  else actionViolations(req.action, "action", 1, bad);

  if (req.resultFile && !req.resultFile.startsWith("/")) bad("result_file", "must be an absolute path");
  if (req.completionCallbackUrl && !isHttpUrl(req.completionCallbackUrl)) {
    bad("completion_callback_url", "must be an absolute http or https URL");
  }
  if (Buffer.byteLength(req.annotation, "utf8") > MAX_ANNOTATION_BYTES) {
    bad("annotation", `must be at most ${MAX_ANNOTATION_BYTES} bytes`);
  }
  req.placementTags.forEach((tag, i) => {
    if (!tag) bad(`placement_tags[${i}]`, "must not be empty");
  });
  if (Boolean(req.imageUsername) !== Boolean(req.imagePassword)) {
    bad(req.imageUsername ? "image_password" : "image_username", "image_username and image_password go together");
  }
  return out;
}

/** Throws INVALID_ARGUMENT naming every bad field. */
export function validateTaskCreateRequest(req: TaskCreateRequest): void {
  const violations = taskCreateRequestViolations(req);
  if (violations.length) throw invalidArgument(violations);
}

type Report = (field: string, message: string) => void;

function envViolations(env: readonly { name: string }[], path: string, bad: Report): void {
  env.forEach((v, i) => {
    if (!v.name) bad(`${path}[${i}].name`, "is required");
    else if (v.name.includes("=") || v.name.includes("\0")) bad(`${path}[${i}].name`, "must not contain '=' or NUL");
  });
}

function actionViolations(action: Action, path: string, depth: number, bad: Report): void {
  if (depth > MAX_ACTION_DEPTH) {
    bad(path, `actions may nest at most ${MAX_ACTION_DEPTH} deep`);
    return;
  }
  const inner = action.action;
  const here = `${path}.${snake(inner.case ?? "")}`;
  const child = (a: Action | undefined, field: string) => {
    if (!a) bad(field, "is required");
    else actionViolations(a, field, depth + 1, bad);
  };
  const children = (list: readonly Action[]) => {
    if (list.length === 0) bad(`${here}.actions`, "must hold at least one action");
    list.forEach((a, i) => actionViolations(a, `${here}.actions[${i}]`, depth + 1, bad));
  };
  switch (inner.case) {
    case undefined:
      bad(
        path,
        "must set exactly one of run, download, upload, timeout, emit_progress, try, parallel, serial, codependent",
      );
      return;
    case "run": {
      const run = inner.value;
      if (!run.path) bad(`${here}.path`, "is required");
      if (run.dir && !run.dir.startsWith("/")) bad(`${here}.dir`, "must be an absolute path");
      envViolations(run.env, `${here}.env`, bad);
      return;
    }
    case "download": {
      const d = inner.value;
      if (!d.from) bad(`${here}.from`, "is required");
      else if (!isHttpUrl(d.from)) bad(`${here}.from`, "must be an absolute http or https URL");
      if (!d.to) bad(`${here}.to`, "is required");
      checksumViolations(d.checksumAlgorithm, d.checksumValue, here, bad);
      return;
    }
    case "upload": {
      const u = inner.value;
      if (!u.from) bad(`${here}.from`, "is required");
      if (!u.to) bad(`${here}.to`, "is required");
      else if (!isHttpUrl(u.to)) bad(`${here}.to`, "must be an absolute http or https URL");
      return;
    }
    case "timeout":
      if (inner.value.timeoutMs <= 0n) bad(`${here}.timeout_ms`, "must be > 0");
      child(inner.value.action, `${here}.action`);
      return;
    case "emitProgress":
    case "try":
      child(inner.value.action, `${here}.action`);
      return;
    case "parallel":
    case "serial":
    case "codependent":
      children(inner.value.actions);
      return;
  }
}

function checksumViolations(algorithm: string, value: string, path: string, bad: Report): void {
  if (Boolean(algorithm) !== Boolean(value)) {
    bad(
      algorithm ? `${path}.checksum_value` : `${path}.checksum_algorithm`,
      "checksum_algorithm and checksum_value go together",
    );
    return;
  }
  if (algorithm && !CHECKSUM_ALGORITHMS.has(algorithm.toLowerCase())) {
    bad(`${path}.checksum_algorithm`, "must be md5, sha1 or sha256");
  }
  if (value && !/^[0-9a-fA-F]+$/.test(value)) bad(`${path}.checksum_value`, "must be hexadecimal");
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}

/** emitProgress → emit_progress: proto field names, as users write them. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
