// The whole cell (handlers, runners, reconcile, heartbeat) on the fake runtime against the fake BBS.
import { createClient } from "@diego/kit";
import { TaskService, TaskState, cellv1, type Task } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TaskCreateRequestSchema } from "@diego/proto";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { containerLabels, containerName } from "../src/executor/labels.js";
import { eventually, startHarness, uniqueId, type Harness } from "./support/harness.js";

type TaskInit = MessageInitShape<typeof TaskCreateRequestSchema>;
const sh = (script: string, extra: Record<string, unknown> = {}) => ({ action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script], ...extra } } });
const task = (guid: string, over: Partial<TaskInit> = {}): TaskInit => ({ taskGuid: guid, domain: "d", rootFs: "docker:///diego/busybox", action: sh("true"), ...over }) as TaskInit;

describe("cell on the fake runtime", () => {
  let h: Harness;
  let rt: FakeRuntime;
  beforeEach(async () => {
    rt = new FakeRuntime({ registry: ["registry.example:5000/team/app:v1"] });
    h = await startHarness("fake", { zone: "z1", placementTags: ["gpu"], optionalPlacementTags: ["ssd"], reconcileInterval: 200, maxContainers: 3, memoryMb: 1000, diskMb: 2000 }, { runtime: rt });
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
    expect(s.rootfsProviders.map((p) => [p.scheme, p.names])).toEqual([["docker", []], ["preloaded", ["busybox"]]]);
    await h.bbs.desire(task("s1", { memoryMb: 100, diskMb: 200, action: sh("sleep 5") }));
    const s2 = await c.state({});
    expect(s2.available).toMatchObject({ memoryMb: 900, diskMb: 1800, containers: 2 });
    expect(s2.tasks.map((t) => t.taskGuid)).toEqual(["s1"]);
    expect(h.bbs.cells.get(h.cellId)?.address).toBe(h.cell.address);
    c.close();
  });

  test("Perform refuses what does not fit, with the reason, and anything for another cell", async () => {
    const c = client();
    const res = await c.perform({
      cellId: h.cellId,
      tasks: [
        { taskGuid: "big", rootFs: "docker:///diego/busybox", memoryMb: 5000 },
        { taskGuid: "bigdisk", rootFs: "docker:///diego/busybox", diskMb: 5000, memoryMb: 5000 },
        { taskGuid: "pre", rootFs: "preloaded:nothing" },
        { taskGuid: "stk", rootFs: "docker:///diego/busybox", stack: "windows" },
      ],
    });
    expect(res.failed.map((f) => [f.taskGuid, f.reason])).toEqual([
      ["big", "insufficient resources: memory"],
      ["bigdisk", "insufficient resources: disk, memory"],
      ["pre", "found no compatible cell for required rootfs"],
      ["stk", "found no compatible cell for required rootfs"],
    ]);
    await expect(c.perform({ cellId: "someone-else", tasks: [] })).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
    c.close();
  });

  test("a task completes with its result; a failing one with the fixed text", async () => {
    await h.bbs.desire(task("ok", { action: sh("printf 42 > /tmp/r"), resultFile: "/tmp/r" }));
    expect(await h.bbs.completed("ok")).toMatchObject({ failed: false, result: "42", cellId: h.cellId });
    await h.bbs.desire(task("bad", { action: sh("exit 2"), logSource: "APP" }));
    expect(await h.bbs.completed("bad")).toMatchObject({ failed: true, failureReason: "APP: Exited with status 2" });
    await h.bbs.desire(task("nores", { resultFile: "/tmp/none" }));
    expect(await h.bbs.completed("nores")).toMatchObject({ failed: true, failureReason: "failed to fetch result" });
    await eventually(async () => (await rt.list({})).length === 0 || undefined, 10_000, "containers removed");
    expect(h.cell.cell.ledger.available().containers).toBe(3);
  });

  test("the result is cut at resultFileMaxBytes", async () => {
    await h.stop();
    h = await startHarness("fake", { resultFileMaxBytes: 4 }, { runtime: rt });
    await h.bbs.desire(task("cut", { action: sh("printf 123456789 > /tmp/r"), resultFile: "/tmp/r" }));
    expect((await h.bbs.completed("cut")).result).toBe("1234");
  });

  test("images: pulled with the task's credentials when absent; a failed fetch fails the task", async () => {
    await h.bbs.desire(task("pull", { rootFs: "docker://registry.example:5000/team/app#v1", imageUsername: "u", imagePassword: "p" }));
    expect(await h.bbs.completed("pull")).toMatchObject({ failed: false });
    expect(rt.pulls).toEqual([{ image: "registry.example:5000/team/app:v1", auth: { username: "u", password: "p" } }]);
    await h.bbs.desire(task("nopull", { rootFs: "docker:///nobody/nothing#x" }));
    const t = await h.bbs.completed("nopull");
    expect(t.failureReason).toMatch(/^failed to fetch image nobody\/nothing:x: /);
    await h.bbs.desire(task("pre", { rootFs: "preloaded:busybox" }));
    expect(await h.bbs.completed("pre")).toMatchObject({ failed: false });
  });

  test("the container gets the task's limits, labels and name", async () => {
    await h.bbs.desire(task("lim", { memoryMb: 64, diskMb: 32, cpuWeight: 50, maxPids: 7, privileged: true, env: [{ name: "X", value: "1" }], action: sh("sleep 5") }));
    const [c] = await eventually(async () => ((await rt.list(containerLabels(h.cellId, "lim"))).length ? rt.list({}) : undefined));
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
    await h.bbs.desire(task("lim2", { cpuWeight: 0, action: sh("sleep 5") }));
    const c2 = await eventually(async () => (await rt.list(containerLabels(h.cellId, "lim2")))[0]);
    expect(rt.specOf(c2.id)).toMatchObject({ cpuShares: 0, maxPids: 1024 });
  });

  test("cancel mid-action stops the process and removes the container without a report", async () => {
    const tasks = createClient(TaskService, h.bbs.address);
    await h.bbs.desire(task("cx", { action: sh("sleep 30") }));
    await h.bbs.waitFor("cx", (t) => t?.state === TaskState.RUNNING);
    await tasks.cancelTask({ taskGuid: "cx" });
    expect(await h.bbs.completed("cx")).toMatchObject({ failed: true, failureReason: "task was cancelled" });
    await eventually(async () => ((await rt.list(containerLabels(h.cellId, "cx"))).length === 0 ? true : undefined), 10_000, "container removed");
    await eventually(() => (h.cell.cell.runners.size === 0 ? true : undefined));
    tasks.close();
  });

  test("logs: followed while the task runs, read after it ended", async () => {
    const tasks = createClient(TaskService, h.bbs.address);
    await h.bbs.desire(task("lg", { logGuid: "lg-guid", logSource: "SRC", action: sh("echo one; sleep 0.5; echo two >&2") }));
    await h.bbs.waitFor("lg", (t) => t?.state === TaskState.RUNNING);
    const followed = [];
    for await (const l of tasks.taskLogs({ taskGuid: "lg", follow: true })) followed.push(l);
    expect(followed.map((l) => [l.source, l.stream, l.message])).toEqual([
      ["SRC", 0, "one"],
      ["SRC", 1, "two"],
      ["SRC", 0, "Exit status 0"],
    ]);
    await h.bbs.completed("lg");
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
      await h.bbs.desire(task("van", { action: sh("sleep 30") }));
      await h.bbs.waitFor("van", (t) => t?.state === TaskState.RUNNING);
      const [c] = await rt.list(containerLabels(h.cellId, "van"));
      rt.vanish(c.id);
      expect(await h.bbs.completed("van")).toMatchObject({ failed: true, failureReason: "task container does not exist" });
    });

    test("a task the BBS cancelled without telling the cell: the container is deleted", async () => {
      await h.bbs.desire(task("silent", { action: sh("sleep 30") }));
      await h.bbs.waitFor("silent", (t) => t?.state === TaskState.RUNNING);
      h.bbs.apply("cancel", "client", "silent", {});
      await eventually(async () => ((await rt.list(containerLabels(h.cellId, "silent"))).length === 0 ? true : undefined), 10_000, "container deleted");
      expect(h.bbs.tasks.get("silent")?.failureReason).toBe("task was cancelled");
    });

    test("a container nobody owns is removed", async () => {
      const id = await rt.create({ name: containerName(h.cellId, "stray"), image: "diego/busybox:latest", labels: containerLabels(h.cellId, "stray"), env: [], memoryMb: 0, diskMb: 0, cpuShares: 0, maxPids: 0, privileged: false, network: true });
      await rt.start(id);
      await eventually(async () => ((await rt.list(containerLabels(h.cellId, "stray"))).length === 0 ? true : undefined), 10_000, "stray removed");
    });

    test("a task claimed by this cell whose container this process does not own is failed and its container removed", async () => {
      h.bbs.autoPlace = false;
      await h.bbs.desire(task("orph"));
      h.bbs.apply("start", "cell", "orph", { cellId: h.cellId });
      const id = await rt.create({ name: containerName(h.cellId, "orph"), image: "diego/busybox:latest", labels: containerLabels(h.cellId, "orph"), env: [], memoryMb: 0, diskMb: 0, cpuShares: 0, maxPids: 0, privileged: false, network: true });
      await rt.start(id);
      expect(await h.bbs.completed("orph")).toMatchObject({ failed: true, failureReason: "cell disappeared before completion" });
      await eventually(async () => ((await rt.list(containerLabels(h.cellId, "orph"))).length === 0 ? true : undefined), 10_000, "orphan removed");
    });

    test("a task the BBS says runs here but which has no container: completed as missing", async () => {
      h.bbs.autoPlace = false;
      await h.bbs.desire(task("ghost"));
      h.bbs.apply("start", "cell", "ghost", { cellId: h.cellId });
      expect(await h.bbs.completed("ghost")).toMatchObject({ failed: true, failureReason: "task container does not exist" });
    });

    test("a claim that failed for a passing reason is retried (claim and run)", async () => {
      h.bbs.autoPlace = false;
      const t = await h.bbs.desire(task("retry"));
      // Claimed by nobody yet; the cell holds a reservation in `reserved` as if StartTask had failed.
      const c = client();
      const original = h.bbs.apply.bind(h.bbs);
      let refusals = 1;
      h.bbs.apply = ((name: string, ...rest: unknown[]) => {
        if (name === "start" && refusals-- > 0) throw Object.assign(new Error("etcd unavailable"), {});
        return (original as (...a: unknown[]) => unknown)(name, ...rest);
      }) as typeof h.bbs.apply;
      await c.perform({ cellId: h.cellId, tasks: [{ taskGuid: t.taskGuid, rootFs: t.rootFs }] });
      expect(await h.bbs.completed("retry")).toMatchObject({ failed: false });
      c.close();
    });
  });

  test("SIGTERM-style stop drains: refuses new work, lets the running task finish, deregisters", async () => {
    await h.bbs.desire(task("drain", { action: sh("sleep 1; printf done > /tmp/r"), resultFile: "/tmp/r" }));
    await h.bbs.waitFor("drain", (t) => t?.state === TaskState.RUNNING);
    const c = client();
    const stopping = h.cell();
    await eventually(async () => ((await c.state({})).draining ? true : undefined));
    const res = await c.perform({ cellId: h.cellId, tasks: [{ taskGuid: "late", rootFs: "docker:///diego/busybox" }] });
    expect(res.failed).toEqual([expect.objectContaining({ taskGuid: "late", reason: "cell is draining" })]);
    await stopping;
    expect(h.bbs.tasks.get("drain")).toMatchObject({ state: TaskState.COMPLETED, failed: false, result: "done" } as Partial<Task>);
    expect(h.bbs.cells.has(h.cellId)).toBe(false);
    c.close();
  });

  test("a task still running at the drain timeout is stopped and reported", async () => {
    await h.stop();
    h = await startHarness("fake", { drainTimeout: 300 }, { runtime: rt, cellId: uniqueId("drain") });
    await h.bbs.desire(task("long", { action: sh("sleep 30") }));
    await h.bbs.waitFor("long", (t) => t?.state === TaskState.RUNNING);
    await h.cell();
    expect(h.bbs.tasks.get("long")).toMatchObject({ state: TaskState.COMPLETED, failed: true, failureReason: "cell disappeared before completion" } as Partial<Task>);
    expect(await rt.list({})).toEqual([]);
  });
});
