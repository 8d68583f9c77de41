import { TaskState } from "@diego/proto";
import { startHarness, type Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness("docker");
});
afterAll(() => h?.stop());

test("the hello task runs in a container and completes with its result", async () => {
  await h.cluster.desire({
    taskGuid: "hello-1",
    domain: "demo",
    rootFs: "docker:///diego/busybox",
    env: [{ name: "GREETING", value: "hello" }],
    memoryMb: 64,
    diskMb: 64,
    cpuWeight: 50,
    action: {
      action: { case: "run", value: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"] } },
    },
    resultFile: "/tmp/result",
    logGuid: "hello-1",
    logSource: "DEMO",
  });
  const t = await h.cluster.completed("hello-1");
  expect(t.failureReason).toBe("");
  expect(t.failed).toBe(false);
  expect(t.result).toBe("42");
  expect(t.cellId).toBe(h.cellId);
  const metrics = await (await fetch(`http://127.0.0.1:${h.cell.statusPort}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`CellTasksStarted\\{cell_id="${h.cellId}"[^}]*\\} 1`));
  expect(metrics).toMatch(new RegExp(`CellTasksSucceeded\\{cell_id="${h.cellId}"[^}]*\\} 1`));
  expect(metrics).toMatch(/ContainerCreationDuration_count\{[^}]*\} 1/);
  expect(metrics).toMatch(/CapacityTotalMemory\{[^}]*\} 4096/);
  expect(h.cluster.statesOf("hello-1").map((s) => TaskState[s])).toEqual([
    "PENDING",
    "CLAIMED",
    "RUNNING",
    "COMPLETED",
  ]);
});
