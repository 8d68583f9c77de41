import {
  FailureKind,
  LogLine_Stream,
  TaskState,
  type Action,
  type CellPresence,
  type LogLine,
  type Task,
  type TaskEvent,
} from "@diego/proto";
import { formatDuration } from "@diego/models";
import { clip, renderTable } from "./table.js";

/** Human views of tasks, events, log lines and cells. Pure: the time is an argument (Unix ms). */

export function stateName(state: TaskState): string {
  return TaskState[state] ?? String(state);
}

/** A compact age: 45s, 12m, 3h, 2d. */
export function age(nanos: bigint, nowMs: number): string {
  if (!nanos) return "-";
  const seconds = Math.max(0, Math.floor((nowMs - Number(nanos / 1_000_000n)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

export function isoTime(nanos: bigint): string {
  return nanos ? new Date(Number(nanos / 1_000_000n)).toISOString() : "-";
}

/** How a finished task went: `succeeded` or `failed: <reason>`; for a live one, its last rejection if any. */
export function outcome(task: Task): string {
  if (task.state === TaskState.COMPLETED || task.state === TaskState.RESOLVING) {
    return task.failed ? `failed: ${task.failureReason}` : "succeeded";
  }
  return task.rejectionCount ? `rejected ${task.rejectionCount}x: ${task.rejectionReason}` : "";
}

/** `a=1,b=2` (keys sorted), or "" when there are none. */
export function labelsText(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

export function failureKindName(kind: FailureKind): string {
  return kind === FailureKind.FAILURE_KIND_UNSPECIFIED ? "" : (FailureKind[kind] ?? String(kind));
}

/** `peak 12.5 MiB, cpu 1.2s`, or "" when the cell measured nothing. */
export function usageText(usage: Task["usage"]): string {
  if (!usage || (!usage.peakMemoryBytes && !usage.cpuTimeNs)) return "";
  const mib = Number(usage.peakMemoryBytes) / (1024 * 1024);
  return `peak memory ${mib.toFixed(1)} MiB, cpu ${formatDuration(Number(usage.cpuTimeNs / 1_000_000n))}`;
}

export function taskTable(tasks: Task[], nowMs: number): string {
  const rows = tasks.map((t) => [
    t.taskGuid,
    t.domain,
    stateName(t.state),
    t.cellId || "-",
    age(t.createdAt, nowMs),
    clip(labelsText(t.labels), 40) || "-",
    clip(outcome(t), 60),
  ]);
  return renderTable(["TASK GUID", "DOMAIN", "STATE", "CELL", "AGE", "LABELS", "OUTCOME"], rows);
}

/** `diego get`: the fields a person looks at, one per line. */
export function taskDetail(task: Task, nowMs: number): string {
  const rows: [string, string][] = [
    ["task_guid", task.taskGuid],
    ["domain", task.domain],
    ["state", stateName(task.state)],
    ["cell_id", task.cellId],
    ["root_fs", task.rootFs],
    ["stack", task.stack],
    ["action", task.action ? actionSummary(task.action) : ""],
    [
      "resources",
      `memory_mb ${task.memoryMb}, disk_mb ${task.diskMb}, cpu_weight ${task.cpuWeight}${task.maxPids ? `, max_pids ${task.maxPids}` : ""}`,
    ],
    ["env", task.env.map((e) => `${e.name}=${e.value}`).join(" ")],
    ["placement_tags", task.placementTags.join(", ")],
    ["labels", labelsText(task.labels)],
    ["privileged", task.privileged ? "true" : ""],
    ["image_username", task.imageUsername],
    ["result_file", task.resultFile],
    ["completion_callback_url", task.completionCallbackUrl],
    ["log_guid", task.logGuid],
    ["log_source", task.logSource],
    ["annotation", clip(task.annotation, 200)],
    ["created_at", `${isoTime(task.createdAt)} (${age(task.createdAt, nowMs)} ago)`],
    ["updated_at", `${isoTime(task.updatedAt)} (${age(task.updatedAt, nowMs)} ago)`],
    ["claimed_at", task.claimedAt ? isoTime(task.claimedAt) : ""],
    ["started_at", task.startedAt ? isoTime(task.startedAt) : ""],
    ["completed_at", task.completedAt ? isoTime(task.completedAt) : ""],
    ["first_completed_at", task.firstCompletedAt ? isoTime(task.firstCompletedAt) : ""],
    ["rejections", task.rejectionCount ? `${task.rejectionCount} (last: ${task.rejectionReason})` : ""],
  ];
  if (task.state === TaskState.COMPLETED || task.state === TaskState.RESOLVING) {
    rows.push(
      ["failed", String(task.failed)],
      ["failure_reason", task.failureReason],
      ["failure_kind", failureKindName(task.failureKind)],
      ["exit_status", task.exitStatus === undefined ? "" : String(task.exitStatus)],
      ["usage", usageText(task.usage)],
      ["result", clip(task.result, 500)],
    );
  }
  const shown = rows.filter(([, v]) => v !== "");
  const width = Math.max(...shown.map(([k]) => k.length)) + 1;
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join("\n") + "\n";
}

/** One line for an action tree: `run /bin/sh -c "echo hi"`, `timeout 5s (serial [run /bin/true; try (run /x)])`. */
export function actionSummary(action: Action): string {
  const inner = action.action;
  const sub = (a: Action | undefined) => (a ? actionSummary(a) : "?");
  const list = (as: Action[]) => `[${as.map(actionSummary).join("; ")}]`;
  let text: string;
  switch (inner.case) {
    case "run":
      text = ["run", inner.value.path, ...inner.value.args.map(shellQuote)].join(" ");
      break;
    case "download":
      text = `download ${inner.value.from} -> ${inner.value.to}`;
      break;
    case "upload":
      text = `upload ${inner.value.from} -> ${inner.value.to}`;
      break;
    case "timeout":
      text = `timeout ${formatDuration(Number(inner.value.timeoutMs))} (${sub(inner.value.action)})`;
      break;
    case "emitProgress":
      text = `emit_progress (${sub(inner.value.action)})`;
      break;
    case "try":
      text = `try (${sub(inner.value.action)})`;
      break;
    case "parallel":
    case "serial":
    case "codependent":
      text = `${inner.case} ${list(inner.value.actions)}`;
      break;
    default:
      text = "(none)";
  }
  return clip(text, 200);
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg);
}

/** `watch`: after a resync, one line per task listed. */
export function listedLine(task: Task, nowMs: number): string {
  const time = new Date(nowMs).toISOString().slice(11, 23);
  const cell = task.cellId ? `  cell=${task.cellId}` : "";
  return `${time}  LISTED   ${task.taskGuid}  domain=${task.domain}  ${stateName(task.state)}${cell}`;
}

/** `watch`: one line per event. */
export function eventLine(event: TaskEvent, nowMs: number): string {
  const time = new Date(nowMs).toISOString().slice(11, 23);
  const e = event.event;
  switch (e.case) {
    case "created": {
      const t = e.value.task!;
      const labels = labelsText(t.labels);
      return `${time}  CREATED  ${t.taskGuid}  domain=${t.domain}  ${stateName(t.state)}${labels ? `  labels=${labels}` : ""}`;
    }
    case "changed": {
      const [b, a] = [e.value.before!, e.value.after!];
      const cell = a.cellId ? `  cell=${a.cellId}` : "";
      const how = a.state === TaskState.COMPLETED || a.rejectionCount > b.rejectionCount ? `  ${outcome(a)}` : "";
      return `${time}  CHANGED  ${a.taskGuid}  ${stateName(b.state)} -> ${stateName(a.state)}${cell}${how}`;
    }
    case "removed":
      return `${time}  REMOVED  ${e.value.task!.taskGuid}`;
    default:
      return `${time}  (unknown event)`;
  }
}

/** `logs`: `12:00:01.250 [DEMO/0] OUT hello`. */
export function logLineText(line: LogLine): string {
  const time = line.timestamp
    ? new Date(Number(line.timestamp / 1_000_000n)).toISOString().slice(11, 23)
    : "--:--:--.---";
  const stream = line.stream === LogLine_Stream.STDERR ? "ERR" : "OUT";
  return `${time} [${line.source || "LOG"}/${line.instance || "0"}] ${stream} ${line.message}`;
}

export function cellTable(cells: CellPresence[]): string {
  const pair = (avail: number | undefined, total: number | undefined) => `${avail ?? 0}/${total ?? 0}`;
  const rows = cells.map((c) => [
    c.cellId,
    c.address,
    c.zone || "-",
    pair(c.available?.memoryMb, c.total?.memoryMb),
    pair(c.available?.diskMb, c.total?.diskMb),
    pair(c.available?.containers, c.total?.containers),
    c.stacks.join(",") || "-",
    c.rootfsProviders.map((p) => (p.names.length ? `${p.scheme}:${p.names.join("|")}` : p.scheme)).join(",") || "-",
    [...c.placementTags, ...c.optionalPlacementTags.map((t) => `${t}?`)].join(",") || "-",
  ]);
  return renderTable(
    ["CELL ID", "ADDRESS", "ZONE", "MEMORY MB", "DISK MB", "CONTAINERS", "STACKS", "ROOTFS", "TAGS"],
    rows,
  );
}
