import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { LogLineSchema, type LogLine } from "@diego/proto";

/**
 * The last part of a completed task's output, as its cell handed it over with CompleteTask, kept
 * apart from the task record (so tasks stay small) and removed with the task (docs/outcomes.md).
 */
export interface LogTailStore {
  put(guid: string, lines: readonly LogLine[]): Promise<void>;
  /** The kept lines, or undefined when none were kept. */
  get(guid: string): Promise<LogLine[] | undefined>;
  delete(guid: string): Promise<void>;
  /** Guids that have a tail (to find the ones whose task is gone). */
  guids(): Promise<string[]>;
}

export function encodeLogTail(lines: readonly LogLine[]): Buffer {
  return Buffer.from(JSON.stringify(lines.map((l) => toJson(LogLineSchema, l))));
}

export function decodeLogTail(bytes: Buffer | Uint8Array): LogLine[] {
  const values = JSON.parse(Buffer.from(bytes).toString("utf8")) as JsonValue[];
  return values.map((v) => fromJson(LogLineSchema, v));
}
