import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { REPO_ROOT } from "../src/index.js";

const run = promisify(execFile);

// Lint and format are tests, so the one test count fails on them (docs/architecture.md, "Rooms and walls").
test("eslint passes on the whole tree", async () => {
  await run("pnpm", ["exec", "eslint", "."], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }).catch(
    (err: { stdout?: string }) => {
      throw new Error(`eslint failed:\n${err.stdout ?? String(err)}`);
    },
  );
}, 300_000);

test("every file is formatted (prettier --check)", async () => {
  await run("pnpm", ["exec", "prettier", "--check", "."], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }).catch(
    (err: { stdout?: string }) => {
      throw new Error(`prettier --check failed:\n${err.stdout ?? String(err)}`);
    },
  );
}, 300_000);

/** Lints `source` as if it were the file at `path` (which need not exist); resolves to eslint's output. */
function lintAs(path: string, source: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("pnpm", ["exec", "eslint", "--stdin", "--stdin-filename", path], { cwd: REPO_ROOT });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(source);
  });
}

describe("a deliberate breach of a wall fails lint", () => {
  test.each([
    [
      "a deep relative import into another package's src",
      "packages/cli/test/support/breach.ts",
      'import { bbsSettings } from "../../../bbs/src/config.js";\nexport const x = bbsSettings;\n',
      "no-restricted-imports",
    ],
    [
      "a deep import by package name",
      "packages/cli/src/breach.ts",
      'import { bbsSettings } from "@diego/bbs/src/config.js";\nexport const x = bbsSettings;\n',
      "no-restricted-imports",
    ],
    [
      "an I/O module in models",
      "packages/models/src/breach.ts",
      'import { readFileSync } from "node:fs";\nexport const x = readFileSync;\n',
      "diego/floors",
    ],
    [
      "the network in auction",
      "packages/auction/src/breach.ts",
      'import { credentials } from "@grpc/grpc-js";\nexport const x = credentials;\n',
      "diego/floors",
    ],
    [
      "an upward import inside the cell",
      "packages/cell/src/runtime/breach.ts",
      'import { Cell } from "../cell.js";\nexport const x = Cell;\n',
      "diego/rooms",
    ],
    [
      "a devDependency imported from src",
      "packages/auction/src/breach.ts",
      'import fc from "fast-check";\nexport const x = fc;\n',
      "import-x/no-extraneous-dependencies",
    ],
  ])(
    "%s",
    async (_name, path, source, rule) => {
      const { code, output } = await lintAs(path, source);
      expect(code).not.toBe(0);
      expect(output).toContain(rule);
    },
    120_000,
  );

  test("the same code in its right place passes", async () => {
    const { code, output } = await lintAs(
      "packages/cell/src/reconcile/fine.ts",
      'import { Cell } from "../cell.js";\nexport const x = Cell;\n',
    );
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 120_000);
});
