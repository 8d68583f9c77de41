import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ActionSchema, TaskCreateRequestSchema, type Action } from "@diego/proto";
import { LIMITS, MAX_ACTION_DEPTH, taskCreateRequestViolations } from "../src/index.js";

type Init = MessageInitShape<typeof TaskCreateRequestSchema>;
const run = (): Action => create(ActionSchema, { action: { case: "run", value: { path: "/bin/true" } } });
const request = (init: Partial<Init> = {}) =>
  create(TaskCreateRequestSchema, {
    taskGuid: "g-1",
    domain: "d",
    rootFs: "docker:///diego/busybox",
    action: run(),
    ...init,
  } as Init);

function nested(levels: number): Action {
  let a = run();
  for (let i = 1; i < levels; i++) a = create(ActionSchema, { action: { case: "try", value: { action: a } } });
  return a;
}
const parallel = (n: number): Action =>
  create(ActionSchema, { action: { case: "parallel", value: { actions: Array.from({ length: n }, run) } } });
const serial = (actions: Action[]): Action => create(ActionSchema, { action: { case: "serial", value: { actions } } });
const env = (n: number, value = "v") => Array.from({ length: n }, (_, i) => ({ name: `V${i}`, value }));
const runWith = (value: object): Action =>
  create(ActionSchema, { action: { case: "run", value: { path: "/bin/true", ...value } } } as never);

test("a valid request has no violations", () => {
  expect(taskCreateRequestViolations(request())).toEqual([]);
  expect(taskCreateRequestViolations(request({ action: nested(MAX_ACTION_DEPTH) }))).toEqual([]);
});

test.each<[string, Partial<Init>, string, string]>([
  [
    "a tree 33 deep",
    { action: nested(33) },
    "action" + ".try.action".repeat(32),
    "too deep: actions may nest at most 32 levels",
  ],
  [
    "an encoded task over 256 KiB",
    { annotation: "", env: env(600, "x".repeat(500)) },
    "(request)",
    "at most 262144 bytes",
  ],
  ["too many env vars", { env: env(LIMITS.envVars + 1) }, "env", "at most 1024"],
  ["too many secret env vars", { secretEnv: env(LIMITS.envVars + 1) }, "secret_env", "at most 1024"],
  [
    "an env value too large",
    { env: [{ name: "A", value: "x".repeat(LIMITS.envValueBytes + 1) }] },
    "env[0].value",
    "at most 65536 bytes",
  ],
  ["too many args", { action: runWith({ args: Array(LIMITS.args + 1).fill("a") }) }, "action.run.args", "at most 4096"],
  ["a 50,000-wide parallel action", { action: parallel(50_000) }, "action", "a tree may hold at most 1024"],
  ["65 actions at once", { action: parallel(65) }, "action", "at most 64 may run at once"],
  [
    "parallel inside parallel",
    {
      action: serial([
        parallel(40),
        create(ActionSchema, { action: { case: "parallel", value: { actions: [parallel(40), parallel(40)] } } }),
      ]),
    },
    "action",
    "runs up to 80 actions at once",
  ],
  [
    "too many placement tags",
    { placementTags: Array.from({ length: 65 }, (_, i) => `t${i}`) },
    "placement_tags",
    "at most 64",
  ],
  ["a 1 MiB placement tag", { placementTags: ["x".repeat(1 << 20)] }, "placement_tags[0]", "at most 255 characters"],
  [
    "too many labels",
    { labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) },
    "labels",
    "at most 64",
  ],
  [
    "a label key with a newline",
    { labels: { "a\nb": "v" } },
    'labels["a\\nb"]',
    "key must not contain control characters",
  ],
  ["a label value too large", { labels: { a: "x".repeat(1025) } }, 'labels["a"]', "value must be at most 1024 bytes"],
  ["NUL in domain", { domain: "a\u0000b" }, "domain", "control characters"],
  ["ESC in domain", { domain: "\u001b[2J" }, "domain", "control characters"],
  ["a newline in log_guid", { logGuid: "a\nb" }, "log_guid", "control characters"],
  ["ESC in log_source", { logSource: "\u001b]0;x\u0007" }, "log_source", "control characters"],
  [
    "a C1 control in an action's log_source",
    { action: runWith({ logSource: "a\u009bb" }) },
    "action.run.log_source",
    "control characters",
  ],
  ["a long domain", { domain: "d".repeat(256) }, "domain", "at most 255 characters"],
  ["memory_mb too large", { memoryMb: LIMITS.memoryMb + 1 }, "memory_mb", "at most 1048576"],
  ["disk_mb negative", { diskMb: -1 }, "disk_mb", "must be >= 0"],
  ["max_pids too large", { maxPids: LIMITS.maxPids + 1 }, "max_pids", "at most 4194304"],
  [
    "nofile beyond the kernel's range",
    { action: runWith({ resourceLimits: { nofile: 2n ** 62n } }) },
    "action.run.resource_limits.nofile",
    "at most 1048576",
  ],
  ["an annotation over 10 KiB", { annotation: "é".repeat(5121) }, "annotation", "at most 10240 bytes"],
  ["a long result_file", { resultFile: "/" + "x".repeat(4096) }, "result_file", "at most 4096 bytes"],
])("%s", (_name, init, field, message) => {
  const violations = taskCreateRequestViolations(request(init));
  expect(violations).toContainEqual({ field, message: expect.stringContaining(message) });
});

test.each([
  [2n ** 62n, "must be at most 2147483647"],
  [2n ** 31n, "must be at most 2147483647"],
  [0n, "must be > 0"],
])("timeout_ms %s", (timeoutMs, message) => {
  const action = create(ActionSchema, { action: { case: "timeout", value: { timeoutMs, action: run() } } });
  expect(taskCreateRequestViolations(request({ action }))).toEqual([{ field: "action.timeout.timeout_ms", message }]);
});
