import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { logTailOf } from "@diego/models";
import {
  CompleteTaskRequestSchema,
  LogLine_Stream,
  LogLineSchema,
  RejectTaskRequestSchema,
  type CompleteTaskRequest,
  type RejectTaskRequest,
} from "@diego/proto";
import { z } from "zod";
import type { StoredLine } from "../logs/task-log-store.js";

/**
 * What the cell keeps on disk of a task (docs/reliability.md, "The cell keeps every outcome"): the
 * outcome of a finished task until the BBS accepts or refuses it for good, or what a restarted cell
 * needs to follow a task that still runs. Pure: the shapes, their check when read back, and the
 * requests they become. Numbers that do not fit a JSON number (bigint) are kept as decimal strings.
 */

const bigintText = z.string().regex(/^\d+$/, "must be a decimal integer");

const logLine = z.object({
  timestamp: bigintText,
  source: z.string(),
  stream: z.enum(["stdout", "stderr"]),
  message: z.string(),
});

const completeRecord = z.object({
  version: z.literal(1),
  kind: z.literal("complete"),
  taskGuid: z.string().min(1),
  failed: z.boolean(),
  failureReason: z.string(),
  /** FailureKind, when the cell knows better than the reason's text (0 = derived from the text). */
  failureKind: z.number().int().min(0).default(0),
  result: z.string(),
  exitStatus: z.number().int().optional(),
  usage: z.object({ peakMemoryBytes: bigintText, cpuTimeNs: bigintText }).optional(),
  logTail: z.array(logLine),
  /** The task's labels, for the cell's per-task metrics when the outcome is accepted. */
  labels: z.record(z.string(), z.string()).optional(),
  /** Unix ms when the cell recorded the outcome. */
  recordedAt: z.number(),
});

const rejectRecord = z.object({
  version: z.literal(1),
  kind: z.literal("reject"),
  taskGuid: z.string().min(1),
  reason: z.string(),
  recordedAt: z.number(),
});

/** Where a running task's action tree is, as far as a restarted cell can follow it (see follow-plan.ts). */
const cursor = z.discriminatedUnion("at", [
  /** The container is up; no action has begun, or the tree has not reached a step worth recording. */
  z.object({ at: z.literal("setup") }),
  /** A run action's process is being started at this path of the tree: it may or may not run. */
  z.object({ at: z.literal("starting-process"), path: z.array(z.number().int().min(0)) }),
  /** A run action's process runs (or ran) at this path, under this engine id. */
  z.object({
    at: z.literal("process"),
    path: z.array(z.number().int().min(0)),
    processId: z.string().min(1),
    /** How far its output was delivered (whole lines), stdout and stderr: a restarted cell goes on from there. */
    output: z.object({ stdout: z.number().int().min(0), stderr: z.number().int().min(0) }).optional(),
  }),
  /** The tree is somewhere a restarted cell cannot resume; why. */
  z.object({ at: z.literal("unresumable"), why: z.string().min(1) }),
]);

const runningRecord = z.object({
  version: z.literal(1),
  kind: z.literal("running"),
  taskGuid: z.string().min(1),
  containerId: z.string().min(1),
  /** The task as claimed, as protobuf JSON, without its secrets (secret_env, image credentials). */
  task: z.record(z.string(), z.unknown()),
  cursor,
  /**
   * The container was not created with the task's env (a pooled one): each process is given it. A
   * restarted cell asks the BBS for it again (StartTask) before it starts another process.
   */
  envPerProcess: z.literal(true).optional(),
  recordedAt: z.number(),
});

export const journalRecordSchema = z.discriminatedUnion("kind", [completeRecord, rejectRecord, runningRecord]);

export type CompleteRecord = z.infer<typeof completeRecord>;
export type RejectRecord = z.infer<typeof rejectRecord>;
export type RunningRecord = z.infer<typeof runningRecord>;
export type Cursor = z.infer<typeof cursor>;
/** A finished task's outcome, owed to the BBS. */
export type OutcomeRecord = CompleteRecord | RejectRecord;
export type JournalRecord = z.infer<typeof journalRecordSchema>;
export type JournalLogLine = z.infer<typeof logLine>;

/** Reads a record back; the error names the field that is wrong. */
export function parseRecord(text: string): JournalRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = journalRecordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path.join(".") || "record"}: ${issue.message}`);
  }
  return parsed.data;
}

export function isOutcome(record: JournalRecord): record is OutcomeRecord {
  return record.kind === "complete" || record.kind === "reject";
}

/** The last part of a task's output: at most `maxBytes` of message per stream, stdout and stderr apart. */
export function tailOf(lines: readonly StoredLine[], maxBytes: number): JournalLogLine[] {
  return logTailOf(lines, maxBytes).map((l) => ({
    timestamp: l.timestamp.toString(),
    source: l.source,
    stream: l.stream,
    message: l.message,
  }));
}

export function completeRequest(record: CompleteRecord, cellId: string): CompleteTaskRequest {
  const init: MessageInitShape<typeof CompleteTaskRequestSchema> = {
    taskGuid: record.taskGuid,
    cellId,
    failed: record.failed,
    failureReason: record.failureReason,
    result: record.result,
    exitStatus: record.exitStatus,
    failureKind: record.failureKind,
    usage: record.usage && {
      peakMemoryBytes: BigInt(record.usage.peakMemoryBytes),
      cpuTimeNs: BigInt(record.usage.cpuTimeNs),
    },
    logTail: record.logTail.map((l) =>
      create(LogLineSchema, {
        timestamp: BigInt(l.timestamp),
        source: l.source,
        stream: l.stream === "stderr" ? LogLine_Stream.STDERR : LogLine_Stream.STDOUT,
        message: l.message,
      }),
    ),
  };
  return create(CompleteTaskRequestSchema, init);
}

export function rejectRequest(record: RejectRecord, cellId: string): RejectTaskRequest {
  return create(RejectTaskRequestSchema, { taskGuid: record.taskGuid, cellId, rejectionReason: record.reason });
}
