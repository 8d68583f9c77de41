import { DiegoError } from "@diego/models";

/**
 * The largest stored task value, in bytes. etcd refuses requests over 1.5 MiB (its default
 * --max-request-bytes) and counts the refusal as a failure of the whole client, so the store
 * refuses anything bigger than this before sending it. Admission keeps the encoded request far
 * smaller (see docs/reliability.md), which leaves room for what the BBS adds (result, outcome).
 */
export const MAX_STORED_TASK_BYTES = 1024 * 1024;

/** Throws RESOURCE_EXHAUSTED, naming the task and the limit, when `bytes` is too big to store. */
export function checkStoredTaskSize(guid: string, bytes: Uint8Array, limit = MAX_STORED_TASK_BYTES): void {
  if (bytes.byteLength > limit) {
    throw new DiegoError(
      "RESOURCE_EXHAUSTED",
      `task ${JSON.stringify(guid)} would be stored as ${bytes.byteLength} bytes; the limit is ${limit} bytes`,
    );
  }
}
