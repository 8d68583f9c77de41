import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "@diego/e2e";
import { DEFAULT_TIMINGS, FAULT_CASES, formatTable, passed, runCase, type FaultRow } from "../src/index.js";

// The fault suite (packages/faults/README.md): each case on a fresh cluster of real processes, real
// etcd and Docker; side effects counted by a receiver outside the cluster. The short cases run by
// default; DIEGO_FAULTS=long runs every case, DIEGO_FAULTS=off none, DIEGO_FAULTS_CASE=<text> those
// whose name contains it.
const mode = process.env.DIEGO_FAULTS ?? "short";
const only = process.env.DIEGO_FAULTS_CASE;
const cases = FAULT_CASES.filter(
  (c) => mode !== "off" && (mode === "long" || !c.long) && (!only || c.name.includes(only)),
);
const outDir = join(REPO_ROOT, "test-results");
const rows: FaultRow[] = [];

afterAll(() => {
  if (!rows.length) return;
  const table = formatTable(rows);
  console.log(`fault suite (${mode}), presence TTL ${DEFAULT_TIMINGS.presenceTtlMs} ms:\n${table}`);
  mkdirSync(outDir, { recursive: true });
  const json = { mode, timings: DEFAULT_TIMINGS, at: new Date().toISOString(), rows };
  writeFileSync(join(outDir, "faults.json"), `${JSON.stringify(json, null, 2)}\n`);
});

if (!cases.length) test.skip("no fault case selected", () => undefined);

for (const fault of cases) {
  test(`${fault.name}: no task runs twice, none is lost, the system recovers`, async () => {
    const { row, logs } = await runCase(fault, DEFAULT_TIMINGS);
    rows.push(row);
    if (logs) {
      const dir = join(outDir, "faults-logs");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${fault.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}.log`), logs);
    }
    expect({ passed: passed(row), row }).toEqual({
      passed: true,
      row: expect.objectContaining({ twice: 0, lost: 0, recoverySeconds: expect.any(Number) }),
    });
  }, 420_000);
}
