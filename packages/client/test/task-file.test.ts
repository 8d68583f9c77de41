import { DiegoError } from "@diego/models";
import { parseTaskFile } from "../src/task-file.js";

// A task exactly as a user writes it.
const HELLO = `{ "task_guid": "hello-1", "domain": "demo", "root_fs": "docker:///diego/busybox",
  "env": [{"name": "GREETING", "value": "hello"}], "memory_mb": 64, "disk_mb": 64, "cpu_weight": 50,
  "action": {"run": {"path": "/bin/sh", "args": ["-c", "echo $GREETING; printf 42 > /tmp/result"]}},
  "result_file": "/tmp/result", "log_guid": "hello-1", "log_source": "DEMO", "annotation": "first task" }`;

function violationsOf(text: string): { field: string; message: string }[] {
  try {
    parseTaskFile(text);
  } catch (err) {
    expect(err).toBeInstanceOf(DiegoError);
    expect((err as DiegoError).code).toBe("INVALID_ARGUMENT");
    return [...(err as DiegoError).violations];
  }
  throw new Error("expected the file to be refused");
}

test("the task of docs/contract.md parses into the message with every field", () => {
  const req = parseTaskFile(HELLO);
  expect(req).toMatchObject({
    taskGuid: "hello-1",
    domain: "demo",
    rootFs: "docker:///diego/busybox",
    env: [{ name: "GREETING", value: "hello" }],
    memoryMb: 64,
    diskMb: 64,
    cpuWeight: 50,
    resultFile: "/tmp/result",
    logGuid: "hello-1",
    logSource: "DEMO",
    annotation: "first task",
  });
  expect(req.action?.action.case).toBe("run");
  expect(req.action?.action.value).toMatchObject({
    path: "/bin/sh",
    args: ["-c", "echo $GREETING; printf 42 > /tmp/result"],
  });
});

test("nested actions, int64 given as a number or a string, and camelCase names are accepted", () => {
  const req = parseTaskFile(
    JSON.stringify({
      task_guid: "t",
      domain: "d",
      rootFs: "preloaded:busybox",
      action: {
        timeout: {
          timeout_ms: 5000,
          action: {
            serial: { actions: [{ run: { path: "/bin/true" } }, { try: { action: { run: { path: "/bin/false" } } } }] },
          },
        },
      },
    }),
  );
  const timeout = req.action?.action;
  expect(timeout?.case).toBe("timeout");
  if (timeout?.case === "timeout") {
    expect(timeout.value.timeoutMs).toBe(5000n);
    expect(timeout.value.action?.action.case).toBe("serial");
  }
  expect(
    parseTaskFile(
      JSON.stringify({
        task_guid: "t",
        domain: "d",
        root_fs: "preloaded:x",
        action: { timeout: { timeout_ms: "7", action: { run: { path: "/x" } } } },
      }),
    ).action?.action.value,
  ).toMatchObject({ timeoutMs: 7n });
});

test("wrong types name the field by the path the user wrote", () => {
  const v = violationsOf(
    JSON.stringify({
      task_guid: "t",
      domain: "d",
      root_fs: "docker:///x",
      memory_mb: "lots",
      cpu_weight: -1,
      env: [{ name: "A", value: 1 }],
      placement_tags: ["ok", 7],
      action: { run: { path: "/bin/sh", args: "echo hi" } },
    }),
  );
  const fields = v.map((x) => x.field);
  expect(fields).toEqual(
    expect.arrayContaining(["memory_mb", "cpu_weight", "env[0].value", "placement_tags[1]", "action.run.args"]),
  );
  expect(v.find((x) => x.field === "memory_mb")?.message).toMatch(/int32/);
  expect(v.find((x) => x.field === "action.run.args")?.message).toMatch(/must be a list/);
});

test("unknown fields are refused with a suggestion for a likely typo", () => {
  const v = violationsOf(
    JSON.stringify({
      task_guid: "t",
      domain: "d",
      root_fs: "docker:///x",
      memorymb: 3,
      colour: "red",
      action: { run: { path: "/x", pth: 1 } },
    }),
  );
  expect(v).toEqual(
    expect.arrayContaining([
      { field: "memorymb", message: "unknown field (did you mean memory_mb?)" },
      expect.objectContaining({ field: "colour", message: expect.stringContaining("known fields: task_guid") }),
      { field: "action.run.pth", message: "unknown field (did you mean path?)" },
    ]),
  );
});

test("two actions in one Action are refused", () => {
  const v = violationsOf(
    JSON.stringify({
      task_guid: "t",
      domain: "d",
      root_fs: "docker:///x",
      action: { run: { path: "/x" }, download: { from: "http://a/b", to: "/c" } },
    }),
  );
  expect(v).toEqual([{ field: "action.download", message: expect.stringContaining("only one of run, download") }]);
});

test("the BBS's validation rules apply too, each naming its field", () => {
  const v = violationsOf(
    JSON.stringify({ task_guid: "bad guid!", root_fs: "ftp://x", memory_mb: -1, action: { run: {} } }),
  );
  expect(v.map((x) => x.field)).toEqual(
    expect.arrayContaining(["task_guid", "domain", "root_fs", "memory_mb", "action.run.path"]),
  );
  expect(() => parseTaskFile(JSON.stringify({ task_guid: "t" }), { validate: false })).not.toThrow();
});

test("text that is not a JSON object says where it breaks", () => {
  expect(() => parseTaskFile('{\n  "task_guid": "t",\n}')).toThrow(/not valid JSON: .* at line 3 column 1/);
  expect(() => parseTaskFile("")).toThrow(/not valid JSON/);
  expect(violationsOf("[1, 2]")).toEqual([{ field: "(task)", message: "must be a JSON object, not a list" }]);
  expect(violationsOf('{"action": 5}')).toEqual([{ field: "action", message: "must be a JSON object, not number 5" }]);
});
