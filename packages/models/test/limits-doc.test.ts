import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LIMITS } from "../src/limits.js";

test("docs/limits.md names every LIMITS key", () => {
  const doc = readFileSync(resolve(import.meta.dirname, "../../../docs/limits.md"), "utf8");
  const missing = Object.keys(LIMITS).filter((key) => !doc.includes(`\`${key}\``));
  expect(missing).toEqual([]);
});
