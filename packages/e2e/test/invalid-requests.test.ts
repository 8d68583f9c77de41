import { fromJson } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema } from "@diego/proto";
import { DiegoError, taskCreateRequestViolations } from "@diego/models";
import { Cluster, INVALID_CASES, invalidRequestJson, VALID_REQUEST } from "../src/index.js";

// Every invalid request of docs/contract.md's field table is refused with INVALID_ARGUMENT naming the
// field, and stores nothing.
describe("validation (pure)", () => {
  test("the base request is valid", () => {
    expect(taskCreateRequestViolations(fromJson(TaskCreateRequestSchema, VALID_REQUEST))).toEqual([]);
  });
  test.each(INVALID_CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const violations = taskCreateRequestViolations(fromJson(TaskCreateRequestSchema, invalidRequestJson(c, "g-1")));
    expect(violations.map((v) => v.field)).toContain(c.field);
  });
  test("every bad field is named at once", () => {
    const req = fromJson(TaskCreateRequestSchema, { domain: "", root_fs: "nope", memory_mb: -5, action: {} });
    expect(
      taskCreateRequestViolations(req)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["action", "domain", "memory_mb", "root_fs", "task_guid"]);
  });
});

describe("against the BBS", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ cells: [] });
  }, 180_000);
  afterAll(() => cluster?.stop());

  test.each(INVALID_CASES.map((c, i) => [c.name, c, i] as const))(
    "%s is refused and nothing is stored",
    async (_name, c, i) => {
      const guid = `invalid-${i}`;
      const err = await cluster.tasks
        .desireTask(fromJson(TaskCreateRequestSchema, invalidRequestJson(c, guid)))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiegoError);
      expect(err).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect((err as DiegoError).message).toContain(c.field);
      expect((err as DiegoError).violations.map((v) => v.field)).toContain(c.field);
      const { tasks } = await cluster.tasks.listTasks({ domain: "invalid-requests" });
      expect(tasks).toEqual([]);
    },
  );
});
