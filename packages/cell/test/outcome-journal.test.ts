// The outcome journal on a real directory: records come back as written, a later write replaces an
// earlier one, deletes are durable, and a file that cannot be read back is set aside with the reason.
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OutcomeJournal } from "../src/executor/outcome-journal.js";
import { completeRequest, parseRecord, type CompleteRecord } from "../src/executor/outcome-record.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "diego-journal-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const outcome = (guid: string, result: string): CompleteRecord => ({
  version: 1,
  kind: "complete",
  taskGuid: guid,
  failed: false,
  failureReason: "",
  failureKind: 0,
  result,
  exitStatus: 0,
  usage: { peakMemoryBytes: "1048576", cpuTimeNs: "12345678901234567890" },
  logTail: [{ timestamp: "1700000000000000000", source: "APP", stream: "stderr", message: "oops" }],
  labels: { team: "builds" },
  recordedAt: 1,
});

test("records survive a reopen; the latest write wins; deletes stay deleted", async () => {
  const { journal } = await OutcomeJournal.open(dir);
  await Promise.all([
    journal.write(outcome("a", "1")),
    journal.write(outcome("a", "2")),
    journal.write(outcome("b", "x")),
  ]);
  await journal.delete("b");
  await journal.delete("never-there");
  const { records, bad } = await OutcomeJournal.open(dir);
  expect(bad).toEqual([]);
  expect(records).toEqual([outcome("a", "2")]);
  expect((await readdir(dir)).sort()).toEqual(["a.json"]);
});

test("a record becomes the CompleteTaskRequest it stands for", () => {
  const req = completeRequest(outcome("a", "r"), "cell-1");
  expect(req).toMatchObject({ taskGuid: "a", cellId: "cell-1", failed: false, result: "r", exitStatus: 0 });
  expect(req.usage).toMatchObject({ peakMemoryBytes: 1048576n, cpuTimeNs: 12345678901234567890n });
  expect(req.logTail[0]).toMatchObject({ timestamp: 1700000000000000000n, source: "APP", stream: 1, message: "oops" });
});

test("a file that cannot be read back is set aside, naming what is wrong", async () => {
  await writeFile(join(dir, "torn.json"), '{"version":1,"kind":"compl');
  await writeFile(
    join(dir, "odd.json"),
    JSON.stringify({ ...outcome("odd", ""), usage: { peakMemoryBytes: "-1", cpuTimeNs: "0" } }),
  );
  await writeFile(join(dir, "x.json.tmp"), "half a write");
  const { records, bad } = await OutcomeJournal.open(dir);
  expect(records).toEqual([]);
  expect(bad.map((b) => b.error)).toEqual([
    "usage.peakMemoryBytes: must be a decimal integer",
    expect.stringMatching(/^not JSON: /),
  ]);
  expect((await readdir(dir)).sort()).toEqual(["odd.json.bad", "torn.json.bad"]);
});

test("a record of an unknown kind is refused, naming the field", () => {
  expect(() => parseRecord(JSON.stringify({ ...outcome("a", ""), kind: "nope" }))).toThrow(/^kind: /);
});
