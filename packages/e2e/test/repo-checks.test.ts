import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { REPO_ROOT } from "../src/index.js";

const run = promisify(execFile);

// CI reads one count of tests: the typecheck and the generated-code drift check are tests too.
test("the whole workspace typechecks (tsc --noEmit)", async () => {
  // The console's browser script has a tsconfig of its own (the DOM's types).
  await run("pnpm", ["typecheck"], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stdout?: string }) => {
    throw new Error(`tsc failed:\n${err.stdout ?? String(err)}`);
  });
}, 300_000);

test("the generated TypeScript matches proto/ (scripts/gen-proto --check)", async () => {
  await run("scripts/gen-proto", ["--check"], { cwd: REPO_ROOT }).catch((err: { stderr?: string }) => {
    throw new Error(`generated code is stale:\n${err.stderr ?? String(err)}`);
  });
}, 120_000);
