import { schedule, type CellCapability, type CellSnapshot, type ScheduleResult } from "../src/index.js";
import { cellSnapshot, taskRequest } from "./support/fixtures.js";

const task = taskRequest;
const cell = (cellId: string, over: Partial<CellSnapshot> = {}): CellSnapshot =>
  cellSnapshot(cellId, {
    stacks: ["cflinuxfs4"],
    rootfsProviders: [
      { scheme: "docker", names: [] },
      { scheme: "preloaded", names: ["busybox"] },
    ],
    ...over,
  });

const where = (r: ScheduleResult) =>
  Object.fromEntries(r.placements.flatMap((p) => p.tasks.map((t) => [t.taskGuid, p.cellId])));
const failure = (r: ScheduleResult, guid: string) => {
  const f = r.failures.find((x) => x.task.taskGuid === guid);
  return f && { reason: f.reason, permanent: f.permanent, cause: f.cause };
};

describe("failure texts and permanence (docs/contract.md, failure reasons)", () => {
  const cells = [cell("c1"), cell("c2", { placementTags: ["gpu"] }), cell("c3", { optionalPlacementTags: ["ssd"] })];

  test.each([
    ["a stack no cell offers", task("t", { stack: "windows" }), "found no compatible cell for required rootfs"],
    [
      "a preloaded name no cell has",
      task("t", { rootFs: "preloaded:nope" }),
      "found no compatible cell for required rootfs",
    ],
    [
      "a tag no cell offers",
      task("t", { placementTags: ["fpga"] }),
      'found no compatible cell with placement tag "fpga"',
    ],
    [
      "tags no cell offers together",
      task("t", { placementTags: ["gpu", "ssd"] }),
      'found no compatible cell with placement tags "gpu" and "ssd"',
    ],
    ["more memory than any cell has in total", task("t", { memoryMb: 4096 }), "insufficient resources: memory"],
    [
      "more memory and disk than any cell has",
      task("t", { memoryMb: 4096, diskMb: 4096 }),
      "insufficient resources: disk, memory",
    ],
  ])("%s fails permanently with the fixed text", (_name, t, reason) => {
    const r = schedule([t], cells);
    expect(r.placements).toEqual([]);
    expect(failure(r, "t")).toMatchObject({ reason, permanent: true });
  });

  test("a task without tags on cells that all require tags", () => {
    const r = schedule([task("t")], [cell("c", { placementTags: ["gpu"] })]);
    expect(failure(r, "t")).toEqual({
      reason: "found no compatible cell with no placement tags",
      permanent: true,
      cause: "incompatible",
    });
  });

  test("the rootfs text wins only when no cell passes the rootfs stage", () => {
    const r = schedule([task("t", { placementTags: ["fpga"] })], [cell("a", { rootfsProviders: [] }), cell("b")]);
    expect(failure(r, "t")?.reason).toBe('found no compatible cell with placement tag "fpga"');
  });

  test("a task that fits a cell's total but no free capacity waits (not permanent)", () => {
    const busy = cell("c", { available: { memoryMb: 100, diskMb: 1024, containers: 5 } });
    const r = schedule([task("t", { memoryMb: 512 })], [busy]);
    expect(failure(r, "t")).toEqual({
      reason: "insufficient resources: memory",
      permanent: false,
      cause: "insufficient",
    });
  });

  test("waiting for containers, and the intersection over cells", () => {
    const noContainers = cell("a", { available: { memoryMb: 1024, diskMb: 1024, containers: 0 } });
    const noMemory = cell("b", { available: { memoryMb: 10, diskMb: 1024, containers: 3 } });
    expect(failure(schedule([task("t")], [noContainers]), "t")?.reason).toBe("insufficient resources: containers");
    // a lacks containers, b lacks memory: no resource is missing everywhere
    expect(failure(schedule([task("t")], [noContainers, noMemory]), "t")?.reason).toBe("insufficient resources");
  });

  test("permanence looks at the total of compatible cells only", () => {
    const small = cell("small", {
      total: { memoryMb: 256, diskMb: 1024, containers: 10 },
      available: { memoryMb: 256, diskMb: 1024, containers: 10 },
    });
    const bigTagged = cell("big", {
      placementTags: ["gpu"],
      total: { memoryMb: 8192, diskMb: 8192, containers: 10 },
      available: { memoryMb: 8192, diskMb: 8192, containers: 10 },
    });
    expect(failure(schedule([task("t", { memoryMb: 1024 })], [small, bigTagged]), "t")).toMatchObject({
      permanent: true,
      reason: "insufficient resources: memory",
    });
    expect(where(schedule([task("t", { memoryMb: 1024, placementTags: ["gpu"] })], [small, bigTagged]))).toEqual({
      t: "big",
    });
  });

  test("a live cell that did not answer keeps a failure from being permanent", () => {
    const unreachable: CellCapability[] = [{ ...cell("away", { placementTags: ["gpu"] }) }];
    const r = schedule([task("t", { placementTags: ["gpu"] })], [cell("c1")], { unreachableCells: unreachable });
    expect(failure(r, "t")).toEqual({
      reason: 'found no compatible cell with placement tag "gpu"',
      permanent: false,
      cause: "incompatible",
    });
    const big: CellCapability[] = [
      { ...cell("away", { total: { memoryMb: 1 << 20, diskMb: 1 << 20, containers: 10 } }) },
    ];
    expect(
      failure(schedule([task("m", { memoryMb: 1 << 19 })], [cell("c1")], { unreachableCells: big }), "m")?.permanent,
    ).toBe(false);
  });

  test("no cell state at all: unable to communicate, and not permanent", () => {
    const r = schedule([task("t")], []);
    expect(failure(r, "t")).toEqual({
      reason: "unable to communicate to compatible cells",
      permanent: false,
      cause: "unreachable",
    });
    const r2 = schedule([task("t")], [], { unreachableCells: [cell("away")] });
    expect(failure(r2, "t")).toEqual({
      reason: "unable to communicate to compatible cells",
      permanent: false,
      cause: "unreachable",
    });
  });

  test("no cell answered, but no live cell could ever run it: permanent", () => {
    const r = schedule([task("t", { stack: "windows" })], [], { unreachableCells: [cell("away")] });
    expect(failure(r, "t")).toEqual({
      reason: "found no compatible cell for required rootfs",
      permanent: true,
      cause: "incompatible",
    });
  });
});

describe("placement", () => {
  test("equal tasks spread evenly over equal cells (locality penalty)", () => {
    const cells = [cell("a"), cell("b"), cell("c")];
    const r = schedule(
      Array.from({ length: 7 }, (_, i) => task(`t${i}`)),
      cells,
    );
    const counts = r.placements.map((p) => p.tasks.length);
    expect(counts.reduce((a, b) => a + b)).toBe(7);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  test("tasks already on a cell push new ones elsewhere", () => {
    const r = schedule(
      [task("t")],
      [cell("a", { tasks: [{}] }), cell("b", { available: { memoryMb: 200, diskMb: 200, containers: 2 } })],
    );
    expect(where(r)).toEqual({ t: "b" });
  });

  test("starting containers weigh against a cell", () => {
    const r = schedule([task("t")], [cell("a", { startingContainerCount: 1 }), cell("b")]);
    expect(where(r)).toEqual({ t: "b" });
  });

  test("among equally loaded cells the emptier one wins", () => {
    const r = schedule(
      [task("t")],
      [cell("a", { available: { memoryMb: 512, diskMb: 1024, containers: 10 } }), cell("b")],
    );
    expect(where(r)).toEqual({ t: "b" });
  });

  test("later tasks of the batch see the capacity reserved by earlier ones", () => {
    const only = cell("only", {
      total: { memoryMb: 300, diskMb: 1000, containers: 10 },
      available: { memoryMb: 300, diskMb: 1000, containers: 10 },
    });
    const r = schedule(
      [task("a", { memoryMb: 200 }), task("b", { memoryMb: 200 }), task("c", { memoryMb: 100 })],
      [only],
    );
    expect(where(r)).toEqual({ a: "only", c: "only" });
    expect(failure(r, "b")).toEqual({
      reason: "insufficient resources: memory",
      permanent: false,
      cause: "insufficient",
    });
  });

  test("largest first: a big task is not starved by small ones that arrived before it", () => {
    const c = cell("c", {
      total: { memoryMb: 1000, diskMb: 1000, containers: 10 },
      available: { memoryMb: 1000, diskMb: 1000, containers: 10 },
    });
    const small = Array.from({ length: 5 }, (_, i) => task(`s${i}`, { memoryMb: 100 }));
    const r = schedule([...small, task("big", { memoryMb: 600 })], [c]);
    expect(where(r).big).toBe("c");
    expect(r.failures.map((f) => f.task.taskGuid)).toEqual(["s4"]);
  });

  test("0 memory and disk need only a container", () => {
    const full = cell("c", { available: { memoryMb: 0, diskMb: 0, containers: 1 } });
    expect(where(schedule([task("t", { memoryMb: 0, diskMb: 0 })], [full]))).toEqual({ t: "c" });
  });

  test("excluded cells are skipped for that task only", () => {
    const excluded = new Map([["t1", new Set(["a"])]]);
    const r = schedule([task("t1"), task("t2", { memoryMb: 1 })], [cell("a"), cell("b", { tasks: [{}] })], {
      excludedCells: excluded,
    });
    expect(where(r)).toEqual({ t1: "b", t2: "a" });
  });

  test("preloaded and stack tasks go only to the cells that have them", () => {
    const cells = [
      cell("docker-only", { rootfsProviders: [{ scheme: "docker", names: [] }], stacks: [] }),
      cell("full"),
    ];
    const r = schedule([task("p", { rootFs: "preloaded:busybox" }), task("s", { stack: "cflinuxfs4" })], cells);
    expect(where(r)).toEqual({ p: "full", s: "full" });
  });

  test("the result does not depend on the order of tasks or cells", () => {
    const cells = [
      cell("a"),
      cell("b", { startingContainerCount: 1 }),
      cell("c", { available: { memoryMb: 800, diskMb: 900, containers: 9 } }),
    ];
    const tasks = Array.from({ length: 20 }, (_, i) =>
      task(`t${i}`, { memoryMb: (i * 37) % 100, diskMb: (i * 11) % 50 }),
    );
    const one = schedule(tasks, cells);
    const two = schedule([...tasks].reverse(), [...cells].reverse());
    expect(where(two)).toEqual(where(one));
    expect(two.placements.map((p) => p.cellId)).toEqual(one.placements.map((p) => p.cellId));
  });

  test("duplicate guids are placed once and input is not modified", () => {
    const cells = [cell("a")];
    const before = JSON.stringify(cells);
    const r = schedule([task("x"), task("x")], cells);
    expect(r.placements[0].tasks).toHaveLength(1);
    expect(JSON.stringify(cells)).toBe(before);
  });

  test("a cell id reported twice counts once", () => {
    const r = schedule(
      [task("x"), task("y")],
      [cell("a", { available: { memoryMb: 64, diskMb: 64, containers: 1 } }), cell("a")],
    );
    expect(r.placements).toHaveLength(1);
    expect(r.placements[0].tasks).toHaveLength(1);
    expect(r.failures).toHaveLength(1);
  });
});
