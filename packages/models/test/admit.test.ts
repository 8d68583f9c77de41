import {
  admit,
  compatibility,
  demand,
  fits,
  placementTagsMatch,
  shortages,
  type AdmitCell,
  type AdmitTask,
  type Resources,
} from "../src/index.js";

const task = (over: Partial<AdmitTask> = {}): AdmitTask => ({
  rootFs: "docker:///diego/busybox",
  placementTags: [],
  memoryMb: 64,
  diskMb: 64,
  ...over,
});

const cell = (over: Partial<AdmitCell & { available: Resources }> = {}): AdmitCell & { available: Resources } => ({
  stacks: [],
  rootfsProviders: [{ scheme: "docker", names: [] }],
  placementTags: [],
  optionalPlacementTags: [],
  available: { memoryMb: 1024, diskMb: 1024, containers: 10 },
  ...over,
});

describe("compatibility", () => {
  const preloaded = [{ scheme: "preloaded", names: ["busybox", "cflinuxfs4"] }];
  test.each([
    ["docker image on a docker cell", task(), cell(), "ok"],
    ["docker image with registry and tag", task({ rootFs: "docker://registry.example.com/org/img#1.0" }), cell(), "ok"],
    ["docker image on a cell without docker", task(), cell({ rootfsProviders: preloaded }), "rootfs"],
    [
      "preloaded name the cell lists",
      task({ rootFs: "preloaded:busybox" }),
      cell({ rootfsProviders: preloaded }),
      "ok",
    ],
    [
      "preloaded name the cell lacks",
      task({ rootFs: "preloaded:other" }),
      cell({ rootfsProviders: preloaded }),
      "rootfs",
    ],
    ["preloaded on a docker-only cell", task({ rootFs: "preloaded:busybox" }), cell(), "rootfs"],
    ["unparsable root_fs", task({ rootFs: "ftp://x" }), cell(), "rootfs"],
    ["stack offered", task({ stack: "cflinuxfs4" }), cell({ stacks: ["cflinuxfs4"] }), "ok"],
    ["stack not offered", task({ stack: "cflinuxfs4" }), cell({ stacks: ["cflinuxfs3"] }), "rootfs"],
    ["no stack asked, cell has stacks", task(), cell({ stacks: ["cflinuxfs4"] }), "ok"],
    ["stack wrong and tags wrong: rootfs stage first", task({ stack: "x", placementTags: ["a"] }), cell(), "rootfs"],
    ["tag the cell does not offer", task({ placementTags: ["gpu"] }), cell(), "tags"],
    ["required tag named", task({ placementTags: ["gpu"] }), cell({ placementTags: ["gpu"] }), "ok"],
    ["required tag missing from task", task(), cell({ placementTags: ["gpu"] }), "tags"],
    ["optional tag named", task({ placementTags: ["ssd"] }), cell({ optionalPlacementTags: ["ssd"] }), "ok"],
    ["privileged on a cell that does not allow it", task({ privileged: true }), cell(), "privileged"],
    ["privileged on a cell that allows it", task({ privileged: true }), cell({ allowPrivileged: true }), "ok"],
    ["unprivileged anywhere", task({ privileged: false }), cell({ allowPrivileged: false }), "ok"],
    ["tags wrong and privileged: tags stage first", task({ privileged: true, placementTags: ["a"] }), cell(), "tags"],
  ] as const)("%s", (_name, t, c, expected) => {
    expect(compatibility(t, c)).toBe(expected);
  });

  // R ⊆ T ⊆ R ∪ O
  test.each([
    [[], [], [], true],
    [["a"], [], [], false],
    [[], ["a"], [], false],
    [["a"], ["a"], [], true],
    [["a", "b"], ["a"], ["b"], true],
    [["a"], ["a"], ["b"], true],
    [["b"], ["a"], ["b"], false],
    [["a", "c"], ["a"], ["b"], false],
    [["b"], [], ["b", "c"], true],
    [[], [], ["b"], true],
  ])("task tags %j, required %j, optional %j → %s", (t, r, o, expected) => {
    expect(placementTagsMatch(t, r, o)).toBe(expected);
  });
});

describe("fit", () => {
  const cap = { memoryMb: 100, diskMb: 50, containers: 1 };
  test.each([
    [{ memoryMb: 100, diskMb: 50 }, cap, []],
    [{ memoryMb: 101, diskMb: 50 }, cap, ["memory"]],
    [{ memoryMb: 10, diskMb: 51 }, cap, ["disk"]],
    [{ memoryMb: 10, diskMb: 10 }, { ...cap, containers: 0 }, ["containers"]],
    [{ memoryMb: 500, diskMb: 500 }, { memoryMb: 0, diskMb: 0, containers: 0 }, ["containers", "disk", "memory"]],
    // 0 means no limit and needs no capacity
    [{ memoryMb: 0, diskMb: 0 }, { memoryMb: 0, diskMb: 0, containers: 1 }, []],
    [{ memoryMb: -5, diskMb: 0 }, { memoryMb: 0, diskMb: 0, containers: 1 }, []],
  ])("%j in %j lacks %j", (t, c, expected) => {
    expect(shortages(t, c)).toEqual(expected);
    expect(fits(t, c)).toBe(expected.length === 0);
  });

  test("a task takes its memory, disk and one container", () => {
    expect(demand({ memoryMb: 64, diskMb: 32 })).toEqual({ memoryMb: 64, diskMb: 32, containers: 1 });
    expect(demand({ memoryMb: 0, diskMb: 0 })).toEqual({ memoryMb: 0, diskMb: 0, containers: 1 });
  });
});

describe("admit", () => {
  const full = { memoryMb: 10, diskMb: 10, containers: 0 };
  test.each([
    ["fits a compatible cell", task(), cell(), { admitted: true }],
    [
      "root_fs refused before capacity",
      task({ rootFs: "preloaded:none" }),
      cell({ available: full }),
      { admitted: false, stage: "rootfs", reason: "found no compatible cell for required rootfs" },
    ],
    [
      "stack refused with the root_fs text",
      task({ stack: "cflinuxfs4" }),
      cell(),
      { admitted: false, stage: "rootfs", reason: "found no compatible cell for required rootfs" },
    ],
    [
      "placement tags",
      task({ placementTags: ["gpu"] }),
      cell(),
      { admitted: false, stage: "tags", reason: 'found no compatible cell with placement tag "gpu"' },
    ],
    [
      "privilege",
      task({ privileged: true }),
      cell(),
      { admitted: false, stage: "privileged", reason: "found no compatible cell that allows privileged tasks" },
    ],
    [
      "capacity: every resource short, sorted",
      task({ memoryMb: 64, diskMb: 64 }),
      cell({ available: full }),
      {
        admitted: false,
        stage: "capacity",
        reason: "insufficient resources: containers, disk, memory",
        shortages: ["containers", "disk", "memory"],
      },
    ],
    [
      "capacity: memory only",
      task({ memoryMb: 2048, diskMb: 0 }),
      cell(),
      { admitted: false, stage: "capacity", reason: "insufficient resources: memory", shortages: ["memory"] },
    ],
    ["0 memory and disk take nothing but a container", task({ memoryMb: 0, diskMb: 0 }), cell(), { admitted: true }],
  ] as const)("%s", (_name, t, c, expected) => {
    expect(admit(t, c)).toEqual(expected);
  });
});
