import { toBinary } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, type Action, type TaskCreateRequest } from "@diego/proto";
import { invalidArgument, type FieldViolation } from "./errors.js";
import { byteLength, CONTROL_CHARACTERS, LIMITS } from "./limits.js";
import { isRootFsError, parseRootFs } from "./root-fs.js";

const GUID = /^[A-Za-z0-9_-]+$/;
/** How deep an action tree may nest (docs/limits.md). */
export const MAX_ACTION_DEPTH = 32;
const CHECKSUM_ALGORITHMS = new Set(["md5", "sha1", "sha256"]);
const L = LIMITS;

/** Every problem of a TaskCreateRequest, each naming its field by its snake_case path and the limit. Pure. */
export function taskCreateRequestViolations(req: TaskCreateRequest): FieldViolation[] {
  const out: FieldViolation[] = [];
  const bad = (field: string, message: string) => out.push({ field, message });

  const encoded = toBinary(TaskCreateRequestSchema, req).length;
  if (encoded > L.encodedTaskBytes) {
    bad("(request)", `is ${encoded} bytes encoded; a task may be at most ${L.encodedTaskBytes} bytes`);
  }

  if (!req.taskGuid) bad("task_guid", "is required");
  else if (!GUID.test(req.taskGuid)) bad("task_guid", "may contain only a-z A-Z 0-9 _ -");
  else if (req.taskGuid.length > L.nameChars) bad("task_guid", `must be at most ${L.nameChars} characters`);

  if (!req.domain) bad("domain", "is required");
  else nameViolations(req.domain, "domain", bad);
  nameViolations(req.logGuid, "log_guid", bad);
  nameViolations(req.logSource, "log_source", bad);
  nameViolations(req.stack, "stack", bad);

  if (!req.rootFs) bad("root_fs", "is required");
  else if (byteLength(req.rootFs) > L.rootFsBytes) bad("root_fs", `must be at most ${L.rootFsBytes} bytes`);
  else {
    const rootFs = parseRootFs(req.rootFs);
    if (isRootFsError(rootFs)) bad("root_fs", rootFs.error);
    else if (rootFs.scheme !== "docker" && (req.imageUsername || req.imagePassword)) {
      bad("image_username", "registry credentials apply only to a docker:// root_fs");
    }
  }
  sizeViolation(req.imageUsername, "image_username", L.credentialBytes, bad);
  sizeViolation(req.imagePassword, "image_password", L.credentialBytes, bad);

  envViolations(req.env, "env", bad);
  envViolations(req.secretEnv, "secret_env", bad);
  if (req.cpuWeight > 100) bad("cpu_weight", "must be between 0 and 100");
  rangeViolation(req.diskMb, "disk_mb", L.diskMb, bad);
  rangeViolation(req.memoryMb, "memory_mb", L.memoryMb, bad);
  rangeViolation(req.maxPids, "max_pids", L.maxPids, bad);

  if (!req.action) bad("action", "is required");
  else {
    const tree = { actions: 0 };
    actionViolations(req.action, "action", 1, tree, bad);
    if (tree.actions > L.actions) bad("action", `holds ${tree.actions} actions; a tree may hold at most ${L.actions}`);
    const width = concurrency(req.action, 0);
    if (width > L.parallelActions) {
      bad("action", `runs up to ${width} actions at once; at most ${L.parallelActions} may run at once`);
    }
  }

  if (req.resultFile && !req.resultFile.startsWith("/")) bad("result_file", "must be an absolute path");
  sizeViolation(req.resultFile, "result_file", L.pathBytes, bad);
  if (req.completionCallbackUrl && !isHttpUrl(req.completionCallbackUrl)) {
    bad("completion_callback_url", "must be an absolute http or https URL");
  }
  sizeViolation(req.completionCallbackUrl, "completion_callback_url", L.urlBytes, bad);
  sizeViolation(req.annotation, "annotation", L.annotationBytes, bad);

  if (req.placementTags.length > L.placementTags) {
    bad("placement_tags", `has ${req.placementTags.length} tags; at most ${L.placementTags}`);
  } else {
    req.placementTags.forEach((tag, i) => {
      if (!tag) bad(`placement_tags[${i}]`, "must not be empty");
      else nameViolations(tag, `placement_tags[${i}]`, bad);
    });
  }
  labelsViolations(req.labels, "labels", bad);
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

/** The problems of a labels map or a labels selector: count, key names, value sizes. Pure. */
export function labelsViolations(labels: Record<string, string>, path: string, bad: Report): void {
  const entries = Object.entries(labels);
  if (entries.length > L.labels) {
    bad(path, `has ${entries.length} labels; at most ${L.labels}`);
    return;
  }
  for (const [key, value] of entries) {
    if (!key) bad(`${path}[""]`, "a label key must not be empty");
    else nameViolations(key, `${path}[${JSON.stringify(key.slice(0, 64))}]`, bad, "key");
    sizeViolation(value, `${path}[${JSON.stringify(key.slice(0, 64))}]`, L.labelValueBytes, bad, "value");
  }
}

export type Report = (field: string, message: string) => void;

/** A name or identifier: at most LIMITS.nameChars characters, no control characters. */
export function nameViolations(value: string, field: string, bad: Report, what = ""): void {
  const subject = what ? `${what} ` : "";
  if (value.length > L.nameChars) bad(field, `${subject}must be at most ${L.nameChars} characters`);
  else if (CONTROL_CHARACTERS.test(value)) bad(field, `${subject}must not contain control characters`);
}

/** A string of at most `max` UTF-8 bytes. */
export function sizeViolation(value: string, field: string, max: number, bad: Report, what = ""): void {
  const subject = what ? `${what} ` : "";
  if (value.length > max || byteLength(value) > max) bad(field, `${subject}must be at most ${max} bytes`);
}

/** An integer between 0 and `max`. */
export function rangeViolation(value: number | bigint, field: string, max: number, bad: Report): void {
  if (value < 0) bad(field, "must be >= 0");
  else if (value > max) bad(field, `must be at most ${max}`);
}

function envViolations(env: readonly { name: string; value: string }[], path: string, bad: Report): void {
  if (env.length > L.envVars) {
    bad(path, `has ${env.length} variables; at most ${L.envVars}`);
    return;
  }
  env.forEach((v, i) => {
    if (!v.name) bad(`${path}[${i}].name`, "is required");
    else if (v.name.includes("=") || v.name.includes("\0")) bad(`${path}[${i}].name`, "must not contain '=' or NUL");
    else sizeViolation(v.name, `${path}[${i}].name`, L.envNameBytes, bad);
    sizeViolation(v.value, `${path}[${i}].value`, L.envValueBytes, bad);
  });
}

/** The most actions of a tree that can run at once (every parallel and codependent child at once). */
function concurrency(action: Action, depth: number): number {
  if (depth > MAX_ACTION_DEPTH) return 1;
  const inner = action.action;
  switch (inner.case) {
    case "timeout":
    case "emitProgress":
    case "try":
      return inner.value.action ? concurrency(inner.value.action, depth + 1) : 1;
    case "serial":
      return Math.max(1, ...inner.value.actions.map((a) => concurrency(a, depth + 1)));
    case "parallel":
    case "codependent":
      return inner.value.actions.reduce((sum, a) => sum + concurrency(a, depth + 1), 0) || 1;
    default:
      return 1;
  }
}

function actionViolations(action: Action, path: string, depth: number, tree: { actions: number }, bad: Report): void {
  if (depth > MAX_ACTION_DEPTH) {
    bad(path, `is too deep: actions may nest at most ${MAX_ACTION_DEPTH} levels`);
    return;
  }
  if (++tree.actions > L.actions) return; // reported once, by the caller
  const inner = action.action;
  const here = `${path}.${snake(inner.case ?? "")}`;
  const child = (a: Action | undefined, field: string) => {
    if (!a) bad(field, "is required");
    else actionViolations(a, field, depth + 1, tree, bad);
  };
  const children = (list: readonly Action[]) => {
    if (list.length === 0) bad(`${here}.actions`, "must hold at least one action");
    for (let i = 0; i < list.length && tree.actions <= L.actions; i++) {
      actionViolations(list[i], `${here}.actions[${i}]`, depth + 1, tree, bad);
    }
  };
  if (inner.case) nameViolations(inner.value.logSource, `${here}.log_source`, bad);
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
      sizeViolation(run.path, `${here}.path`, L.pathBytes, bad);
      if (run.dir && !run.dir.startsWith("/")) bad(`${here}.dir`, "must be an absolute path");
      sizeViolation(run.dir, `${here}.dir`, L.pathBytes, bad);
      if (run.args.length > L.args) bad(`${here}.args`, `has ${run.args.length} arguments; at most ${L.args}`);
      else run.args.forEach((a, i) => sizeViolation(a, `${here}.args[${i}]`, L.argBytes, bad));
      envViolations(run.env, `${here}.env`, bad);
      nameViolations(run.user, `${here}.user`, bad);
      if (run.resourceLimits)
        rangeViolation(run.resourceLimits.nofile, `${here}.resource_limits.nofile`, L.nofile, bad);
      return;
    }
    case "download": {
      const d = inner.value;
      if (!d.from) bad(`${here}.from`, "is required");
      else if (!isHttpUrl(d.from)) bad(`${here}.from`, "must be an absolute http or https URL");
      sizeViolation(d.from, `${here}.from`, L.urlBytes, bad);
      if (!d.to) bad(`${here}.to`, "is required");
      sizeViolation(d.to, `${here}.to`, L.pathBytes, bad);
      nameViolations(d.cacheKey, `${here}.cache_key`, bad);
      nameViolations(d.artifact, `${here}.artifact`, bad);
      nameViolations(d.user, `${here}.user`, bad);
      checksumViolations(d.checksumAlgorithm, d.checksumValue, here, bad);
      return;
    }
    case "upload": {
      const u = inner.value;
      if (!u.from) bad(`${here}.from`, "is required");
      sizeViolation(u.from, `${here}.from`, L.pathBytes, bad);
      if (!u.to) bad(`${here}.to`, "is required");
      else if (!isHttpUrl(u.to)) bad(`${here}.to`, "must be an absolute http or https URL");
      sizeViolation(u.to, `${here}.to`, L.urlBytes, bad);
      nameViolations(u.artifact, `${here}.artifact`, bad);
      nameViolations(u.user, `${here}.user`, bad);
      return;
    }
    case "timeout":
      if (inner.value.timeoutMs <= 0n) bad(`${here}.timeout_ms`, "must be > 0");
      else if (inner.value.timeoutMs > BigInt(L.timeoutMs)) bad(`${here}.timeout_ms`, `must be at most ${L.timeoutMs}`);
      child(inner.value.action, `${here}.action`);
      return;
    case "emitProgress": {
      const e = inner.value;
      sizeViolation(e.startMessage, `${here}.start_message`, L.progressMessageBytes, bad);
      sizeViolation(e.successMessage, `${here}.success_message`, L.progressMessageBytes, bad);
      sizeViolation(e.failureMessagePrefix, `${here}.failure_message_prefix`, L.progressMessageBytes, bad);
      child(e.action, `${here}.action`);
      return;
    }
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
  else sizeViolation(value, `${path}.checksum_value`, L.checksumBytes, bad);
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
