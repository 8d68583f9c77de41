import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { TaskCreateRequestSchema, TaskSchema } from "@diego/proto";
import { REPO_ROOT } from "../src/index.js";

const run = promisify(execFile);

test("Task carries every TaskCreateRequest field under the same name, number and type", () => {
  expect(TaskCreateRequestSchema.fields.length).toBeGreaterThan(20);
  const missing: string[] = [];
  for (const field of TaskCreateRequestSchema.fields) {
    const twin = TaskSchema.fields.find((f) => f.number === field.number);
    const same =
      twin &&
      twin.name === field.name &&
      twin.fieldKind === field.fieldKind &&
      twin.scalar === field.scalar &&
      (twin.message?.typeName ?? twin.enum?.typeName) === (field.message?.typeName ?? field.enum?.typeName);
    if (!same) missing.push(`${field.name} = ${field.number}${twin ? ` (Task has ${twin.name} there)` : ""}`);
  }
  expect(missing).toEqual([]);
});

// A reader with only this repository must be able to follow every citation: comments and READMEs cite
// docs/ here, never design documents kept elsewhere nor issue numbers.
test("nothing in the repository cites a document outside it or an issue number", async () => {
  const pattern = String.raw`diego-reference|api\.md|stack\.md|shared/design|[Ii]ssue [0-9]+`;
  const { stdout } = await run(
    "git",
    ["grep", "-n", "-E", pattern, "--", ".", ":(exclude)packages/e2e/test/contract-checks.test.ts"],
    { cwd: REPO_ROOT },
  ).catch((err: { code?: number; stdout?: string }) => {
    if (err.code === 1) return { stdout: "" }; // no match
    throw err;
  });
  expect(stdout.split("\n").filter(Boolean)).toEqual([]);
});
