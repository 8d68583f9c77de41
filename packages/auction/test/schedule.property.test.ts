import fc from "fast-check";
import { compatibility, demand, fits } from "@diego/models";
import { cellLoad, orderBatch, schedule, score, type CellSnapshot, type TaskRequest } from "../src/index.js";
import { cellSnapshot } from "./support/fixtures.js";

/** The first state of each cell id, as the scheduler keeps it. */
const firstById = (cells: CellSnapshot[]) =>
  cells.filter((c, i) => cells.findIndex((x) => x.cellId === c.cellId) === i);

/**
 * Brute force: for every task, every cell is scored with score() on a mutable copy. The real scheduler
 * must make exactly the same choices (it only skips cells it can prove would lose).
 */
function reference(tasks: TaskRequest[], cells: CellSnapshot[], weight: number, excluded?: Map<string, Set<string>>) {
  const copies = firstById(cells)
    .sort((a, b) => (a.cellId < b.cellId ? -1 : a.cellId > b.cellId ? 1 : 0))
    .map((c) => ({ ...c, available: { ...c.available! }, tasks: [...c.tasks] }));
  const placed = new Map<string, string>();
  for (const t of orderBatch(tasks)) {
    let best: { s: number; load: number; i: number } | undefined;
    copies.forEach((c, i) => {
      if (compatibility(t, c) !== "ok" || !fits(t, c.available) || excluded?.get(t.taskGuid)?.has(c.cellId)) return;
      const cand = { s: score(c, t, weight), load: cellLoad(c, weight), i };
      if (
        !best ||
        cand.s < best.s ||
        (cand.s === best.s && (cand.load < best.load || (cand.load === best.load && cand.i < best.i)))
      )
        best = cand;
    });
    if (!best) continue;
    const c = copies[best.i];
    const need = demand(t);
    c.available.memoryMb -= need.memoryMb;
    c.available.diskMb -= need.diskMb;
    c.available.containers -= 1;
    c.tasks.push(t);
    c.startingContainerCount += 1;
    placed.set(t.taskGuid, c.cellId);
  }
  return placed;
}

const tagArb = fc.constantFrom("a", "b", "c");
const resourcesArb = fc.record({
  memoryMb: fc.integer({ min: 0, max: 4096 }),
  diskMb: fc.integer({ min: 0, max: 4096 }),
  containers: fc.integer({ min: 0, max: 12 }),
});
const cellArb = fc
  .record({
    cellId: fc.constantFrom("c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"),
    stacks: fc.subarray(["s1", "s2"]),
    docker: fc.boolean(),
    preloaded: fc.subarray(["busybox", "other"]),
    placementTags: fc.uniqueArray(tagArb, { maxLength: 2 }),
    optionalPlacementTags: fc.uniqueArray(tagArb, { maxLength: 2 }),
    total: resourcesArb,
    usedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    tasks: fc.integer({ min: 0, max: 3 }),
    startingContainerCount: fc.integer({ min: 0, max: 3 }),
  })
  .map((r): CellSnapshot => ({
    cellId: r.cellId,
    stacks: r.stacks,
    rootfsProviders: [
      ...(r.docker ? [{ scheme: "docker", names: [] }] : []),
      { scheme: "preloaded", names: r.preloaded },
    ],
    placementTags: r.placementTags,
    optionalPlacementTags: r.optionalPlacementTags,
    total: r.total,
    available: {
      memoryMb: Math.floor(r.total.memoryMb * (1 - r.usedFraction)),
      diskMb: Math.floor(r.total.diskMb * (1 - r.usedFraction)),
      containers: Math.floor(r.total.containers * (1 - r.usedFraction)),
    },
    tasks: Array.from({ length: r.tasks }, () => ({})),
    startingContainerCount: r.startingContainerCount,
  }));
const taskArb = fc
  .record({
    taskGuid: fc.stringMatching(/^[a-z0-9]{1,6}$/),
    rootFs: fc.constantFrom("docker:///diego/busybox", "preloaded:busybox", "preloaded:other", "preloaded:none"),
    stack: fc.constantFrom(undefined, "s1", "s2"),
    placementTags: fc.uniqueArray(tagArb, { maxLength: 2 }),
    memoryMb: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 }), fc.constantFrom(64, 128, 256, 512)),
    diskMb: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 }), fc.constantFrom(64, 128)),
  })
  .map((t): TaskRequest => ({ ...t, stack: t.stack }));

/** Cells made from a few templates, so that scores tie or nearly tie and the tie-breaks matter. */
const similarCellArb = fc
  .record({
    cellId: fc.constantFrom("c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"),
    total: fc.constantFrom(
      { memoryMb: 1024, diskMb: 1024, containers: 8 },
      { memoryMb: 2048, diskMb: 1024, containers: 16 },
    ),
    half: fc.boolean(),
    startingContainerCount: fc.integer({ min: 0, max: 1 }),
    tasks: fc.constantFrom(0, 0, 0, 1),
    tagged: fc.boolean(),
  })
  .map((r): CellSnapshot => ({
    cellId: r.cellId,
    stacks: ["s1"],
    rootfsProviders: [
      { scheme: "docker", names: [] },
      { scheme: "preloaded", names: ["busybox"] },
    ],
    placementTags: [],
    optionalPlacementTags: r.tagged ? ["a"] : [],
    total: r.total,
    available: r.half
      ? { memoryMb: r.total.memoryMb / 2, diskMb: r.total.diskMb / 2, containers: r.total.containers / 2 }
      : { ...r.total },
    tasks: Array.from({ length: r.tasks }, () => ({})),
    startingContainerCount: r.startingContainerCount,
  }));

const input = fc.record({
  cells: fc.oneof(fc.array(cellArb, { maxLength: 10 }), fc.array(similarCellArb, { maxLength: 10 })),
  tasks: fc.array(taskArb, { maxLength: 60 }),
  weight: fc.constantFrom(0, 0.25, 1),
});

test("no cell is ever over-committed, and every task is placed once or has a reason", () => {
  fc.assert(
    fc.property(input, ({ cells, tasks, weight }) => {
      const r = schedule(tasks, cells, { startingContainerWeight: weight });
      const unique = new Set(tasks.map((t) => t.taskGuid));
      const placed = r.placements.flatMap((p) => p.tasks.map((t) => t.taskGuid));
      const failed = r.failures.map((f) => f.task.taskGuid);
      expect([...placed, ...failed].sort()).toEqual([...unique].sort());
      for (const f of r.failures)
        expect(f.reason).toMatch(/^(found no compatible cell|insufficient resources|unable to communicate)/);
      for (const p of r.placements) {
        const c = cells.find((x) => x.cellId === p.cellId)!;
        const used = p.tasks.reduce(
          (a, t) => ({ m: a.m + demand(t).memoryMb, d: a.d + demand(t).diskMb, n: a.n + 1 }),
          { m: 0, d: 0, n: 0 },
        );
        expect(used.m).toBeLessThanOrEqual(c.available!.memoryMb);
        expect(used.d).toBeLessThanOrEqual(c.available!.diskMb);
        expect(used.n).toBeLessThanOrEqual(c.available!.containers);
        for (const t of p.tasks) expect(compatibility(t, c)).toBe("ok");
      }
    }),
    { numRuns: 400 },
  );
});

test("the scheduler picks exactly what scoring every cell would pick", () => {
  fc.assert(
    fc.property(input, fc.boolean(), ({ cells, tasks, weight }, exclude) => {
      const excluded =
        exclude && cells.length && tasks.length
          ? new Map([[tasks[0].taskGuid, new Set([cells[0].cellId])]])
          : undefined;
      const r = schedule(tasks, cells, { startingContainerWeight: weight, excludedCells: excluded });
      const got = new Map(r.placements.flatMap((p) => p.tasks.map((t) => [t.taskGuid, p.cellId] as const)));
      expect(got).toEqual(reference(tasks, cells, weight, excluded));
    }),
    { numRuns: 400 },
  );
});

test("a permanent failure means no compatible cell's total could hold the task", () => {
  fc.assert(
    fc.property(input, ({ cells, tasks }) => {
      const r = schedule(tasks, cells);
      for (const f of r.failures) {
        const couldEver = firstById(cells).some((c) => compatibility(f.task, c) === "ok" && fits(f.task, c.total));
        if (cells.length > 0) expect(f.permanent).toBe(!couldEver);
        else expect(f.permanent).toBe(false);
      }
    }),
    { numRuns: 300 },
  );
});

test("equal tasks on equal cells never differ by more than one per cell", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 400 }), (n, m) => {
      const cells: CellSnapshot[] = Array.from({ length: n }, (_, i) =>
        cellSnapshot(`c${String(i).padStart(3, "0")}`, {
          total: { memoryMb: 100_000, diskMb: 100_000, containers: 1000 },
          available: { memoryMb: 100_000, diskMb: 100_000, containers: 1000 },
        }),
      );
      const tasks = Array.from({ length: m }, (_, i): TaskRequest => ({
        taskGuid: `t${i}`,
        rootFs: "docker:///x/y",
        placementTags: [],
        memoryMb: 128,
        diskMb: 128,
      }));
      const r = schedule(tasks, cells);
      const counts = cells.map((c) => r.placements.find((p) => p.cellId === c.cellId)?.tasks.length ?? 0);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }),
    { numRuns: 100 },
  );
});
