import { compareLargestFirst, orderBatch, score, type CellSnapshot, type TaskRequest } from "../src/index.js";
import { cellSnapshot, taskRequest } from "./support/fixtures.js";

const task = (over: Partial<TaskRequest> = {}): TaskRequest => taskRequest("t", over);
const cell = (over: Partial<CellSnapshot> = {}): CellSnapshot => cellSnapshot("c", over);

describe("score (Diego's formula)", () => {
  /** Diego's formula as written there. */
  const diego = (c: CellSnapshot, t: { memoryMb: number; diskMb: number }, weight = 0.25) => {
    const rem = {
      m: c.available!.memoryMb - t.memoryMb,
      d: c.available!.diskMb - t.diskMb,
      c: c.available!.containers - 1,
    };
    const tot = c.total!;
    const resource = (1 - rem.m / tot.memoryMb + (1 - rem.d / tot.diskMb) + (1 - rem.c / tot.containers)) / 3;
    return resource + weight * c.startingContainerCount + 1000 * c.tasks.length;
  };

  test.each([
    ["empty cell", cell(), { memoryMb: 64, diskMb: 64 }],
    ["half used", cell({ available: { memoryMb: 512, diskMb: 300, containers: 5 } }), { memoryMb: 128, diskMb: 10 }],
    ["starting containers", cell({ startingContainerCount: 3 }), { memoryMb: 1, diskMb: 1 }],
    [
      "tasks present",
      cell({ tasks: [{}, {}], available: { memoryMb: 900, diskMb: 900, containers: 8 } }),
      { memoryMb: 0, diskMb: 0 },
    ],
  ])("%s matches Diego's formula", (_name, c, t) => {
    expect(score(c, t)).toBeCloseTo(diego(c, t), 10);
  });

  test("equal thirds of memory, disk and containers", () => {
    const c = cell({
      total: { memoryMb: 100, diskMb: 100, containers: 100 },
      available: { memoryMb: 100, diskMb: 100, containers: 100 },
    });
    // one container of 100 is 1/100; the whole memory is 1: (1 + 0 + 0.01) / 3
    expect(score(c, { memoryMb: 100, diskMb: 0 })).toBeCloseTo(1.01 / 3, 12);
    expect(score(c, { memoryMb: 0, diskMb: 100 })).toBeCloseTo(1.01 / 3, 12);
  });

  test("each starting container adds the weight, each task 1000", () => {
    const base = score(cell(), { memoryMb: 64, diskMb: 64 });
    expect(score(cell({ startingContainerCount: 2 }), { memoryMb: 64, diskMb: 64 }) - base).toBeCloseTo(0.5, 12);
    expect(score(cell({ startingContainerCount: 2 }), { memoryMb: 64, diskMb: 64 }, 1) - base).toBeCloseTo(2, 12);
    expect(score(cell({ tasks: [{}] }), { memoryMb: 64, diskMb: 64 }) - base).toBeCloseTo(1000, 9);
  });

  test("a resource with no total counts nothing", () => {
    const c = cell({
      total: { memoryMb: 100, diskMb: 0, containers: 10 },
      available: { memoryMb: 100, diskMb: 0, containers: 10 },
    });
    expect(score(c, { memoryMb: 50, diskMb: 0 })).toBeCloseTo((0.5 + 0 + 0.1) / 3, 12);
  });
});

describe("ordering", () => {
  test("largest memory first, then disk, then guid", () => {
    const batch = [
      task({ taskGuid: "small", memoryMb: 10 }),
      task({ taskGuid: "b", memoryMb: 100, diskMb: 5 }),
      task({ taskGuid: "a", memoryMb: 100, diskMb: 5 }),
      task({ taskGuid: "big-disk", memoryMb: 100, diskMb: 500 }),
      task({ taskGuid: "huge", memoryMb: 1000, diskMb: 0 }),
      task({ taskGuid: "none", memoryMb: 0, diskMb: 0 }),
    ];
    expect([...batch].sort(compareLargestFirst).map((t) => t.taskGuid)).toEqual([
      "huge",
      "big-disk",
      "a",
      "b",
      "small",
      "none",
    ]);
  });

  test("duplicates by guid keep the first request", () => {
    const out = orderBatch([
      task({ taskGuid: "x", memoryMb: 1 }),
      task({ taskGuid: "y" }),
      task({ taskGuid: "x", memoryMb: 999 }),
    ]);
    expect(out.map((t) => [t.taskGuid, t.memoryMb])).toEqual([
      ["y", 64],
      ["x", 1],
    ]);
  });
});
