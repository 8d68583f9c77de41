import { create } from "@bufbuild/protobuf";
import { TaskSchema, TaskState } from "@diego/proto";
import { formatDuration, parseDuration } from "../src/duration.js";
import {
  exitedWithStatus,
  failedToFetchImage,
  insufficientResources,
  noCompatiblePlacementTags,
  timeoutExceeded,
  truncateReason,
} from "../src/failure-reasons.js";
import { parseRootFs } from "../src/root-fs.js";
import { redactTask, taskToJsonText } from "../src/task-json.js";

test.each([
  [0, "0s"],
  [1, "1ms"],
  [500, "500ms"],
  [1000, "1s"],
  [1500, "1.5s"],
  [60_000, "1m0s"],
  [90_000, "1m30s"],
  [7_200_000, "2h0m0s"],
  [3_723_500, "1h2m3.5s"],
])("formatDuration(%d) is %s like Go", (ms, text) => {
  expect(formatDuration(ms)).toBe(text);
});

test.each([
  ["500ms", 500],
  ["10s", 10_000],
  ["1m30s", 90_000],
  ["2h", 7_200_000],
  ["1.5s", 1500],
  ["250", 250],
])("parseDuration(%s) is %d ms", (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
});

test("parseDuration refuses garbage", () => {
  expect(() => parseDuration("10 parsecs")).toThrow(/not a duration/);
  expect(() => parseDuration("")).toThrow(/not a duration/);
});

test("failure texts of docs/contract.md", () => {
  expect(exitedWithStatus("DEMO", 1, false)).toBe("DEMO: Exited with status 1");
  expect(exitedWithStatus("LOG", 137, true)).toBe("LOG: Exited with status 137 (out of memory)");
  expect(timeoutExceeded(500)).toBe("exceeded 500ms timeout");
  expect(timeoutExceeded(90_000)).toBe("exceeded 1m30s timeout");
  expect(noCompatiblePlacementTags(["x"])).toBe('found no compatible cell with placement tag "x"');
  expect(noCompatiblePlacementTags(["a", "b", "c"])).toBe(
    'found no compatible cell with placement tags "a", "b" and "c"',
  );
  expect(noCompatiblePlacementTags([])).toBe("found no compatible cell with no placement tags");
  expect(insufficientResources(["memory", "containers", "disk", "memory"])).toBe(
    "insufficient resources: containers, disk, memory",
  );
  expect(insufficientResources([])).toBe("insufficient resources");
  expect(failedToFetchImage("diego/nope:latest", "not found")).toBe(
    "failed to fetch image diego/nope:latest: not found",
  );
});

test("long reasons are cut to 1024 bytes ending with (truncated)", () => {
  const cut = truncateReason("é".repeat(2000));
  expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024);
  expect(cut.endsWith("(truncated)")).toBe(true);
  expect(truncateReason("short")).toBe("short");
});

test.each([
  [
    "docker:///diego/busybox",
    { scheme: "docker", registry: "", repository: "diego/busybox", tag: "latest", image: "diego/busybox:latest" },
  ],
  ["docker:///library/ubuntu#22.04", { scheme: "docker", image: "library/ubuntu:22.04" }],
  [
    "docker://registry.example.com:5000/org/app#v1",
    { scheme: "docker", registry: "registry.example.com:5000", image: "registry.example.com:5000/org/app:v1" },
  ],
  ["preloaded:busybox", { scheme: "preloaded", name: "busybox" }],
])("parseRootFs(%s)", (text, expected) => {
  expect(parseRootFs(text)).toMatchObject(expected);
});

test.each([
  "",
  "docker://",
  "docker:///",
  "docker:///UPPER",
  "docker:///a#b#c",
  "preloaded:",
  "http://x/y",
  "cflinuxfs4",
])("parseRootFs(%s) is an error", (text) => {
  expect(parseRootFs(text)).toHaveProperty("error");
});

test("task JSON: snake_case, state by name, int64 as integers, no password", () => {
  const task = create(TaskSchema, {
    taskGuid: "t",
    state: TaskState.COMPLETED,
    createdAt: 1_764_294_000_123_456_789n,
    imageUsername: "u",
    imagePassword: "secret",
    action: {
      action: {
        case: "timeout",
        value: { timeoutMs: 5000n, action: { action: { case: "run", value: { path: "/x" } } } },
      },
    },
  });
  const text = taskToJsonText(task);
  expect(text).toContain('"created_at":1764294000123456789');
  expect(text).toContain('"state":"COMPLETED"');
  expect(text).toContain('"task_guid":"t"');
  expect(text).toContain('"timeout_ms":5000');
  expect(text).not.toContain("secret");
  expect(redactTask(task).imagePassword).toBe("");
  expect(task.imagePassword).toBe("secret");
});
