import { DiegoError, isRetryable, isTerminal, type ErrorCode } from "../src/errors.js";

test.each<[ErrorCode, string, boolean]>([
  ["INVALID_ARGUMENT", "invalid request: task_guid: required", true],
  ["NOT_FOUND", 'task "t" not found', true],
  ["ALREADY_EXISTS", 'task "t" already exists', true],
  ["FAILED_PRECONDITION", "task is COMPLETED, not RUNNING", true],
  ["PERMISSION_DENIED", "cell-2 may not complete a task of cell-1", true],
  ["UNIMPLEMENTED", "unknown method", true],
  ["RESOURCE_EXHAUSTED", 'task "t" would be stored as 2000000 bytes; the limit is 1048576 bytes', true],
  ["RESOURCE_EXHAUSTED", "Received message larger than max (5000000 vs 4194304)", true],
  ["RESOURCE_EXHAUSTED", "too many requests in flight", false],
  ["RESOURCE_EXHAUSTED", "watcher fell behind; re-list", false],
  ["UNAVAILABLE", "No connection established", false],
  ["DEADLINE_EXCEEDED", "Deadline exceeded", false],
  ["ABORTED", "lost the etcd transaction; try again", false],
  ["CANCELLED", "Cancelled on client", false],
  ["UNAUTHENTICATED", "no client certificate", false],
  ["INTERNAL", "etcd: request timed out", false],
  ["UNKNOWN", "?", false],
])("%s (%s) is terminal: %s", (code, message, terminal) => {
  const err = new DiegoError(code, message);
  expect(isTerminal(err)).toBe(terminal);
  expect(isRetryable(err)).toBe(!terminal);
});

test.each<[string, unknown]>([
  ["a socket error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })],
  ["an abort", new DOMException("aborted", "AbortError")],
  ["a string", "boom"],
  ["undefined", undefined],
])("%s is retryable, not terminal", (_, err) => {
  expect(isTerminal(err)).toBe(false);
  expect(isRetryable(err)).toBe(true);
});
