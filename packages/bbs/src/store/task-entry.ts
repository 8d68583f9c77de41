import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { TaskSchema, type Task, type TaskState } from "@diego/proto";

/**
 * One task as the BBS keeps it in memory: the protobuf bytes plus the fields the indexes and
 * convergence need. Decoded Task objects cost ~2.7 KB each; this costs a few hundred bytes, so
 * 250,000 tasks fit well under 1 GiB.
 */
export interface TaskEntry {
  readonly guid: string;
  readonly domain: string;
  readonly cellId: string;
  readonly state: TaskState;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  readonly firstCompletedAtMs: number;
  readonly hasCallback: boolean;
  /** The stored bytes carry image_password or secret_env (they must be redacted before leaving the BBS). */
  readonly hasImagePassword: boolean;
  /** The task's labels (ListTasks selects on them); one shared empty object when it has none. */
  readonly labels: Readonly<Record<string, string>>;
  /** etcd mod_revision of the stored value (the memory store counts its own). */
  readonly revision: number;
  readonly bytes: Uint8Array;
}

export function encodeTask(task: Task): Uint8Array {
  return toBinary(TaskSchema, task);
}

export function decodeTask(bytes: Uint8Array): Task {
  return fromBinary(TaskSchema, bytes);
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export function entryOf(task: Task, bytes: Uint8Array, revision: number): TaskEntry {
  return {
    guid: task.taskGuid,
    domain: task.domain,
    cellId: task.cellId,
    state: task.state,
    createdAtMs: nanosToMs(task.createdAt),
    updatedAtMs: nanosToMs(task.updatedAt),
    firstCompletedAtMs: nanosToMs(task.firstCompletedAt),
    hasCallback: task.completionCallbackUrl !== "",
    hasImagePassword: task.imagePassword !== "" || task.secretEnv.length > 0,
    labels: Object.keys(task.labels).length ? task.labels : NO_LABELS,
    revision,
    bytes,
  };
}

export function entryFromBytes(bytes: Uint8Array, revision: number): TaskEntry {
  return entryOf(decodeTask(bytes), bytes, revision);
}

function nanosToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}

const SECRET_FIELDS = new Set([TaskSchema.field.imagePassword.number, TaskSchema.field.secretEnv.number]);

/**
 * Whether a Task's protobuf bytes carry image_password or secret_env, by walking its top-level fields
 * without decoding them (proto3 writes neither when empty). Bytes that do not parse count as carrying
 * them, so that they take the decoding path, which reports the damage. Pure.
 */
export function bytesCarrySecrets(bytes: Uint8Array): boolean {
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [no, wireType] = reader.tag();
      if (SECRET_FIELDS.has(no)) return true;
      reader.skip(wireType, no);
    }
    return false;
  } catch {
    return true;
  }
}
