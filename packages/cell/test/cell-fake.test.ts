// The whole cell (handlers, runners, reconcile, heartbeat) on the fake runtime, with the real BBS and
// auctioneer. The cell reaches the BBS through a gate the reconcile tests cut to act out a network
// failure.
import { createClient } from "@diego/kit";
import { TaskService, TaskState, cellv1, type Task } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TaskCreateRequestSchema } from "@diego/proto";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { containerLabels, containerName } from "../src/executor/labels.js";
import { eventually } from "@diego/testing";
import { containerSpec, startHarness, uniqueId, type Harness } from "./support/harness.js";

type TaskInit = MessageInitShape<typeof TaskCreateRequestSchema>;
const sh = (script: string, extra: Record<string, unknown> = {}) => ({
  action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script], ...extra } },
});
// The cells here require the tag `gpu`, and the auctioneer places a task only on a cell whose required
// tags it all carries (Diego's rule).
const CELL_TAGS = { placementTags: ["gpu"] };
const task = (guid: string, over: Partial<TaskInit> = {}): TaskInit =>
  ({
    taskGuid: guid,
    domain: "d",
    rootFs: "docker:///diego/busybox",
    action: sh("true"),
    ...CELL_TAGS,
    ...over,
  }) as TaskInit;

describe("cell on the fake runtime", () => {
  let h: Harness;
  let rt: FakeRuntime;
  beforeEach(async () => {
    rt = new FakeRuntime({ registry: ["registry.example:5000/team/app:v1"] });
    h = await startHarness(
      "fake",
      {
        zone: "z1",
        ...CELL_TAGS,
        optionalPlacementTags: ["ssd"],
        reconcileInterval: 200,
        maxContainers: 3,
        memoryMb: 1000,
        diskMb: 2000,
      },
      { runtime: rt, bbsGate: true },
    );
  });
  afterEach(() => h.stop());
  const client = () => createClient(cellv1.CellRepService, h.cell.address);

  test("State reports capacity, providers, tags, zone and tasks", async () => {
    const c = client();
    const s = await c.state({});
    expect(s).toMatchObject({
      cellId: h.cellId,
      zone: "z1",
      stacks: ["linux"],
      placementTags: ["gpu"],
      optionalPlacementTags: ["ssd"],
      total: { memoryMb: 1000, diskMb: 2000, containers: 3 },
      available: { memoryMb: 1000, diskMb: 2000, containers: 3 },
      draining: false,
    });
    expect(s.rootfsProviders.map((p) => [p.scheme, p.names])).toEqual([
      ["docker", []],
      ["preloaded", ["busybox"]],
    ]);
    await h.cluster.desire(task("s1", { memoryMb: 100, diskMb: 200, action: sh("sleep 5") }));
    await h.cluster.waitFor("s1", (t) => t !== undefined && t.state !== TaskState.PENDING); // placed by the auctioneer
    const s2 = await c.state({});
    expect(s2.available).toMatchObject({ memoryMb: 900, diskMb: 1800, containers: 2 });
    expect(s2.tasks.map((t) => t.taskGuid)).toEqual(["s1"]);
    expect((await h.cluster.presence(h.cellId))?.address).toBe(h.cell.address);
    c.close();
  });

  test("Perform refuses what does not fit, with the reason, and anything for another cell", async () => {
    const c = client();
    const res = await c.perform({
      cellId: h.cellId,
      tasks: [
        { taskGuid: "big", rootFs: "docker:///diego/busybox", placementTags: ["gpu"], memoryMb: 5000 },
        {
          taskGuid: "bigdisk",
          rootFs: "docker:///diego/busybox",
          placementTags: ["gpu"],
          diskMb: 5000,
          memoryMb: 5000,
        },
        { taskGuid: "pre", rootFs: "preloaded:nothing" },
        { taskGuid: "stk", rootFs: "docker:///diego/busybox", stack: "windows" },
        { taskGuid: "untagged", rootFs: "docker:///diego/busybox" },
      ],
    });
    // The cell admits what it is given by the same rule as the auction (placement tags included).
    expect(res.failed.map((f) => [f.taskGuid, f.reason])).toEqual([
      ["big", "insufficient resources: memory"],
      ["bigdisk", "insufficient resources: disk, memory"],
      ["pre", "found no compatible cell for required rootfs"],
      ["stk", "found no compatible cell for required rootfs"],
      ["untagged", "found no compatible cell with no placement tags"],
    ]);
    await expect(c.perform({ cellId: "someone-else", tasks: [] })).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
    c.close();
  });

  test("a task completes with its result; a failing one with the fixed text", async () => {
    await h.cluster.desire(task("ok", { action: sh("printf 42 > /tmp/r"), resultFile: "/tmp/r" }));
    expect(await h.cluster.completed("ok")).toMatchObject({ failed: false, result: "42", cellId: h.cellId });
    await h.cluster.desire(task("bad", { action: sh("exit 2"), logSource: "APP" }));
    expect(await h.cluster.completed("bad")).toMatchObject({
      failed: true,
      failureReason: "APP: Exited with status 2",
    });
    await h.cluster.desire(task("nores", { resultFile: "/tmp/none" }));
    expect(await h.cluster.completed("nores")).toMatchObject({ failed: true, failureReason: "failed to fetch result" });
    await eventually("containers removed", async () => (await rt.list({})).length === 0 || undefined, 10_000, 100);
    expect(h.cell.cell.ledger.available().containers).toBe(3);
  });

  test("the result is cut at resultFileMaxBytes", async () => {
    await h.stop();
    h = await startHarness("fake", { ...CELL_TAGS, resultFileMaxBytes: 4 }, { runtime: rt });
    await h.cluster.desire(task("cut", { action: sh("printf 123456789 > /tmp/r"), resultFile: "/tmp/r" }));
    expect((await h.cluster.completed("cut")).result).toBe("1234");
  });

  test("images: pulled with the task's credentials when absent; a failed fetch fails the task", async () => {
    await h.cluster.desire(
      task("pull", { rootFs: "docker://registry.example:5000/team/app#v1", imageUsername: "u", imagePassword: "p" }),
    );
    expect(await h.cluster.completed("pull")).toMatchObject({ failed: false });
    expect(rt.pulls).toEqual([{ image: "registry.example:5000/team/app:v1", auth: { username: "u", password: "p" } }]);
    await h.cluster.desire(task("nopull", { rootFs: "docker:///nobody/nothing#x" }));
    const t = await h.cluster.completed("nopull");
    expect(t.failureReason).toMatch(/^failed to fetch image nobody\/nothing:x: /);
    await h.cluster.desire(task("pre", { rootFs: "preloaded:busybox" }));
    expect(await h.cluster.completed("pre")).toMatchObject({ failed: false });
  });

  test("the container gets the task's limits, labels and name", async () => {
    await h.cluster.desire(
      task("lim", {
        memoryMb: 64,
        diskMb: 32,
        cpuWeight: 50,
        maxPids: 7,
        privileged: true,
        env: [{ name: "X", value: "1" }],
        action: sh("sleep 5"),
      }),
    );
    const [c] = await eventually(
      "the condition",
      async () => ((await rt.list(containerLabels(h.cellId, "lim"))).length ? rt.list({}) : undefined),
      30_000,
      100,
    );
    expect(rt.specOf(c.id)).toMatchObject({
      name: containerName(h.cellId, "lim"),
      memoryMb: 64,
      diskMb: 32,
      cpuShares: 512,
      maxPids: 7,
      privileged: true,
      network: true,
      env: ["X=1"],
      labels: containerLabels(h.cellId, "lim"),
    });
    await h.cluster.desire(task("lim2", { cpuWeight: 0, action: sh("sleep 5") }));
    const c2 = await eventually(
      "the condition",
      async () => (await rt.list(containerLabels(h.cellId, "lim2")))[0],
      30_000,
      100,
    );
    expect(rt.specOf(c2.id)).toMatchObject({ cpuShares: 0, maxPids: 1024 });
  });

  test("cancel mid-action stops the process and removes the container without a report", async () => {
    const tasks = createClient(TaskService, h.cluster.address);
    await h.cluster.desire(task("cx", { action: sh("sleep 30") }));
    await h.cluster.waitFor("cx", (t) => t?.state === TaskState.RUNNING);
    await tasks.cancelTask({ taskGuid: "cx" });
    expect(await h.cluster.completed("cx")).toMatchObject({ failed: true, failureReason: "task was cancelled" });
    await eventually(
      "container removed",
      async () => ((await rt.list(containerLabels(h.cellId, "cx"))).length === 0 ? true : undefined),
      10_000,
      100,
    );
    await eventually("the condition", () => (h.cell.cell.runners.size === 0 ? true : undefined), 30_000, 100);
    tasks.close();
  });

  test("logs: followed while the task runs, read after it ended", async () => {
    const tasks = createClient(TaskService, h.cluster.address);
    await h.cluster.desire(
      task("lg", { logGuid: "lg-guid", logSource: "SRC", action: sh("echo one; sleep 0.5; echo two >&2") }),
    );
    await h.cluster.waitFor("lg", (t) => t?.state === TaskState.RUNNING);
    const followed = [];
    for await (const l of tasks.taskLogs({ taskGuid: "lg", follow: true })) followed.push(l);
    expect(followed.map((l) => [l.source, l.stream, l.message])).toEqual([
      ["SRC", 0, "one"],
      ["SRC", 1, "two"],
      ["SRC", 0, "Exit status 0"],
    ]);
    await h.cluster.completed("lg");
    const after = [];
    for await (const l of tasks.taskLogs({ taskGuid: "lg", follow: false })) after.push(l.message);
    expect(after).toEqual(["one", "two", "Exit status 0"]);
    expect(followed[0].timestamp).toBeGreaterThan(0n);
    const c = client();
    await expect(async () => {
      for await (const _ of c.taskLogs({ taskGuid: "never-ran", follow: false })) void _;
    }).rejects.toMatchObject({ code: "NOT_FOUND" });
    c.close();
    tasks.close();
  });

  describe("reconcile", () => {
    test("a container that vanishes under a running task: `task container does not exist`", async () => {
      await h.cluster.desire(task("van", { action: sh("sleep 30") }));
      await h.cluster.waitFor("van", (t) => t?.state === TaskState.RUNNING);
      const [c] = await rt.list(containerLabels(h.cellId, "van"));
      rt.vanish(c.id);
      expect(await h.cluster.completed("van")).toMatchObject({
        failed: true,
        failureReason: "task container does not exist",
      });
    });

    test("a task the BBS cancelled without telling the cell: the container is deleted", async () => {
      await h.cluster.desire(task("silent", { action: sh("sleep 30") }));
      await h.cluster.waitFor("silent", (t) => t?.state === TaskState.RUNNING);
      // The cell's presence lapses while it cannot reach the BBS: CancelTask then has no cell to tell.
      h.bbsGate!.cut();
      await h.cluster.registry.deregister({ cellId: h.cellId });
      await h.cluster.tasks.cancelTask({ taskGuid: "silent" });
      h.bbsGate!.restore();
      await eventually(
        "container deleted",
        async () => ((await rt.list(containerLabels(h.cellId, "silent"))).length === 0 ? true : undefined),
        10_000,
        100,
      );
      expect((await h.cluster.get("silent"))?.failureReason).toBe("task was cancelled");
    });

    test("a container nobody owns is removed", async () => {
      const id = await rt.create(
        containerSpec({
          name: containerName(h.cellId, "stray"),
          labels: containerLabels(h.cellId, "stray"),
          network: true,
        }),
      );
      await rt.start(id);
      await eventually(
        "stray removed",
        async () => ((await rt.list(containerLabels(h.cellId, "stray"))).length === 0 ? true : undefined),
        10_000,
        100,
      );
    });

    test("a task claimed by this cell whose container this process does not own is failed and its container removed", async () => {
      // Nobody places it; the claim is made here as an earlier process of this cell would have. The gate
      // is cut meanwhile so no reconcile pass sees the claim before the container exists.
      await h.cluster.stopAuctioneer();
      await h.cluster.desire(task("orph"));
      h.bbsGate!.cut();
      await h.cluster.lifecycle.startTask({ taskGuid: "orph", cellId: h.cellId });
      const id = await rt.create(
        containerSpec({
          name: containerName(h.cellId, "orph"),
          labels: containerLabels(h.cellId, "orph"),
          network: true,
        }),
      );
      await rt.start(id);
      h.bbsGate!.restore();
      expect(await h.cluster.completed("orph")).toMatchObject({
        failed: true,
        failureReason: "cell disappeared before completion",
      });
      await eventually(
        "orphan removed",
        async () => ((await rt.list(containerLabels(h.cellId, "orph"))).length === 0 ? true : undefined),
        10_000,
        100,
      );
    });

    test("a task the BBS says runs here but which has no container: completed as missing", async () => {
      await h.cluster.stopAuctioneer();
      await h.cluster.desire(task("ghost"));
      await h.cluster.lifecycle.startTask({ taskGuid: "ghost", cellId: h.cellId });
      expect(await h.cluster.completed("ghost")).toMatchObject({
        failed: true,
        failureReason: "task container does not exist",
      });
    });

    test("a claim that failed for a passing reason is retried (claim and run)", async () => {
      // The auctioneer places the task while the cell cannot reach the BBS: StartTask fails UNAVAILABLE
      // and the cell keeps the reservation until the network is back.
      h.bbsGate!.cut();
      await h.cluster.desire(task("retry"));
      await eventually(
        "the claim to fail",
        () => (h.cell.cell.runners.get("retry")?.phase === "reserved" ? true : undefined),
        30_000,
        100,
      );
      h.bbsGate!.restore();
      expect(await h.cluster.completed("retry")).toMatchObject({ failed: false });
    });
  });

  test("SIGTERM-style stop drains: refuses new work, lets the running task finish, deregisters", async () => {
    await h.cluster.desire(task("drain", { action: sh("sleep 1; printf done > /tmp/r"), resultFile: "/tmp/r" }));
    await h.cluster.waitFor("drain", (t) => t?.state === TaskState.RUNNING);
    const c = client();
    const stopping = h.cell();
    await eventually("the condition", async () => ((await c.state({})).draining ? true : undefined), 30_000, 100);
    const res = await c.perform({ cellId: h.cellId, tasks: [{ taskGuid: "late", rootFs: "docker:///diego/busybox" }] });
    expect(res.failed).toEqual([expect.objectContaining({ taskGuid: "late", reason: "cell is draining" })]);
    await stopping;
    expect(await h.cluster.get("drain")).toMatchObject({
      state: TaskState.COMPLETED,
      failed: false,
      result: "done",
    } as Partial<Task>);
    expect((await h.cluster.cells.listCells({})).cells.some((p) => p.cellId === h.cellId)).toBe(false);
    c.close();
  });

  test("a task still running at the drain timeout is stopped and reported", async () => {
    await h.stop();
    h = await startHarness("fake", { ...CELL_TAGS, drainTimeout: 300 }, { runtime: rt, cellId: uniqueId("drain") });
    await h.cluster.desire(task("long", { action: sh("sleep 30") }));
    await h.cluster.waitFor("long", (t) => t?.state === TaskState.RUNNING);
    await h.cell();
    expect(await h.cluster.get("long")).toMatchObject({
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "cell disappeared before completion",
    } as Partial<Task>);
    expect(await rt.list({})).toEqual([]);
  });
});
