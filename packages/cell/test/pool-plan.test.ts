import type { ContainerSpec } from "../src/runtime/container-runtime.js";
import {
  keptShapes,
  limitMismatches,
  limitsOf,
  limitUpdate,
  NO_LIMITS,
  pickComing,
  pickReady,
  planPool,
  shapeOf,
  shapeKey,
  updatable,
  type ContainerLimits,
  type PoolShape,
  type PoolState,
  type PooledContainer,
} from "../src/runtime/pool-plan.js";

const shape = (image: string, diskMb = 0, privileged = false, imageId = ""): PoolShape => ({
  image,
  imageId,
  diskMb,
  privileged,
  network: true,
});
const A = shape("a:1");
const B = shape("b:1");
const C = shape("a:1", 20);
const settings = { size: 2, maxShapes: 2, shapeIdleMs: 1_000 };

function state(used: Array<[PoolShape, number]>, containers: PooledContainer[] = []): PoolState {
  return {
    shapes: new Map(used.map(([s, at]) => [shapeKey(s), { shape: s, lastUsed: at, limits: NO_LIMITS }])),
    containers,
  };
}
const L = (memory: number, cpuShares: number, pidsLimit: number): ContainerLimits => ({
  memory,
  memorySwap: memory,
  cpuShares,
  pidsLimit,
});
/** Shape A last used at 1,000 with `limits`, and these containers. */
function limited(limits: ContainerLimits, containers: PooledContainer[]): PoolState {
  return { shapes: new Map([[shapeKey(A), { shape: A, lastUsed: 1_000, limits }]]), containers };
}
const ready = (id: string, s: PoolShape, limits = NO_LIMITS): PooledContainer => ({
  id,
  key: shapeKey(s),
  state: "ready",
  limits,
});
const creating = (s: PoolShape): PooledContainer => ({
  id: "",
  key: shapeKey(s),
  state: "creating",
  limits: NO_LIMITS,
});

describe("which shapes are kept", () => {
  test.each([
    ["none used", [], 0, []],
    ["one recent", [[A, 900]], 1_000, [A]],
    ["idle past shapeIdleMs", [[A, 0]], 1_001, []],
    [
      "the maxShapes most recent",
      [
        [A, 100],
        [B, 300],
        [C, 200],
      ],
      1_000,
      [B, C],
    ],
  ] as Array<[string, Array<[PoolShape, number]>, number, PoolShape[]]>)("%s", (_name, used, now, want) => {
    expect([...keptShapes(state(used), settings, now)].sort()).toEqual(want.map(shapeKey).sort());
  });

  test("disk is part of the shape, so is privileged, so is the id the image reference named", () => {
    expect(shapeKey(A)).not.toBe(shapeKey(C));
    expect(shapeKey(A)).not.toBe(shapeKey(shape("a:1", 0, true)));
    expect(shapeKey(shape("a:1", 0, false, "sha256:1"))).not.toBe(shapeKey(shape("a:1", 0, false, "sha256:2")));
  });
});

describe("the plan", () => {
  test.each([
    ["fills a kept shape to size", state([[A, 1_000]]), { create: [A, A], evict: [], forget: [] }],
    ["counts containers being created", state([[A, 1_000]], [creating(A)]), { create: [A], evict: [], forget: [] }],
    [
      "a full shape asks nothing",
      state([[A, 1_000]], [ready("1", A), ready("2", A)]),
      { create: [], evict: [], forget: [] },
    ],
    [
      "evicts the ready containers of a shape gone idle, forgets it once they are gone",
      state([[A, 0]], [ready("1", A)]),
      { create: [], evict: ["1"], forget: [] },
    ],
    ["forgets an idle shape with no containers", state([[A, 0]]), { create: [], evict: [], forget: [shapeKey(A)] }],
    [
      "replaces a ready container its shape's last limits cannot be given (a limit would have to go)",
      limited(NO_LIMITS, [ready("with", A, L(32, 512, 100)), ready("none", A)]),
      { create: [A], evict: ["with"], forget: [] },
    ],
    [
      "keeps one whose limits an update can turn into the last ones",
      limited(L(64, 256, 50), [ready("with", A, L(32, 512, 100)), ready("none", A)]),
      { create: [], evict: [], forget: [] },
    ],
    [
      "evicts the least recently used shape past maxShapes; fills the most recent first",
      state(
        [
          [A, 1_000],
          [B, 1_500],
          [C, 1_800],
        ],
        [ready("a", A), ready("b", B), ready("c", C)],
      ),
      { create: [C, B], evict: ["a"], forget: [] },
    ],
    ["keeps nothing with size 0", state([[A, 1_000]]), { create: [], evict: [], forget: [shapeKey(A)] }, 0],
  ] as Array<[string, PoolState, object, number?]>)("%s", (...[, s, want, size]) => {
    // (The size is read from the row: a fourth parameter would be jest's done callback.)
    expect(planPool(s, { ...settings, size: typeof size === "number" ? size : settings.size }, 1_900)).toEqual(want);
  });
});

describe("claims", () => {
  test("take the oldest ready container of the shape, never one being created or of another shape", () => {
    const list = [creating(A), ready("b", B), ready("a1", A), ready("a2", A)];
    expect(pickReady(list, shapeKey(A), NO_LIMITS)?.id).toBe("a1");
    expect(pickReady([creating(A), ready("b", B)], shapeKey(A), NO_LIMITS)).toBeUndefined();
  });

  test("a claim finding none ready waits for the oldest one being made that no other claim waits for", () => {
    const first = creating(A);
    const second = creating(A);
    const list = [creating(B), first, second, ready("a-promised", A)];
    list[3]!.promised = true;
    expect(pickReady(list, shapeKey(A), NO_LIMITS)).toBeUndefined(); // a promised one is no other claim's
    expect(pickComing(list, shapeKey(A), NO_LIMITS)).toBe(first);
    first.promised = true;
    expect(pickComing(list, shapeKey(A), NO_LIMITS)).toBe(second);
    second.promised = true;
    expect(pickComing(list, shapeKey(A), NO_LIMITS)).toBeUndefined();
    // Nor one an update cannot give the limits wanted.
    const limited = { ...creating(A), limits: L(64, 512, 100) };
    expect(pickComing([limited], shapeKey(A), L(0, 512, 100))).toBeUndefined();
  });

  test("prefer a container made with the limits wanted; else one an update can give them", () => {
    const list = [ready("none", A), ready("big", A, L(64, 512, 100)), ready("exact", A, L(32, 512, 100))];
    expect(pickReady(list, shapeKey(A), L(32, 512, 100))?.id).toBe("exact");
    expect(pickReady(list, shapeKey(A), L(16, 256, 50))?.id).toBe("none");
    // No limit wanted where every container has one: an update cannot take a limit away.
    expect(pickReady([ready("big", A, L(64, 512, 100))], shapeKey(A), L(0, 512, 100))).toBeUndefined();
  });

  test.each([
    ["from none to any", NO_LIMITS, L(32, 512, 100), true],
    ["memory taken away", L(32, 512, 100), L(0, 512, 100), false],
    ["cpu shares taken away", L(32, 512, 100), L(32, 0, 100), false],
    ["pids limit taken away", L(32, 512, 100), L(32, 512, 0), false],
    ["every limit changed", L(32, 512, 100), L(64, 256, 50), true],
  ])("updatable: %s", (_name, from, want, ok) => {
    expect(updatable(from, want)).toBe(ok);
  });

  test.each([
    ["the same: nothing", L(32, 512, 100), L(32, 512, 100), {}],
    ["only what differs", L(32, 512, 100), L(32, 256, 100), { CpuShares: 256 }],
    ["memory and swap together", L(32, 512, 100), L(64, 512, 100), { Memory: 64, MemorySwap: 64 }],
  ])("the update from a container's limits: %s", (_name, from, want, update) => {
    expect(limitUpdate(want, from)).toEqual(update);
  });

  const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
    name: "n",
    image: "a:1",
    labels: {},
    env: [],
    memoryMb: 32,
    diskMb: 0,
    cpuShares: 512,
    maxPids: 100,
    privileged: false,
    network: true,
    ...over,
  });

  test.each([
    ["by image, disk, privileged, network", spec({ diskMb: 5 }), shape("a:1", 5)],
    ["env is not part of it (each process gets it)", spec({ env: ["A=1"] }), shape("a:1")],
    ["the image's id is", spec({ imageId: "sha256:1" }), shape("a:1", 0, false, "sha256:1")],
  ])("the shape: %s", (_name, s, want) => {
    expect(shapeOf(s)).toEqual(want);
  });

  test.each([
    ["every limit", spec(), { Memory: 32 << 20, MemorySwap: 32 << 20, CpuShares: 512, PidsLimit: 100 }],
    ["none: nothing to update", spec({ memoryMb: 0, cpuShares: 0, maxPids: 0 }), {}],
    [
      "memory only, swap the same (no extra swap)",
      spec({ cpuShares: 0, maxPids: 0 }),
      { Memory: 32 << 20, MemorySwap: 32 << 20 },
    ],
  ])("the update for %s", (_name, s, want) => {
    expect(limitUpdate(limitsOf(s), NO_LIMITS)).toEqual(want);
  });

  test.each([
    ["exact", { memory: 1, memorySwap: 1, cpuShares: 2, pidsLimit: 3 }, []],
    ["swap differs", { memory: 1, memorySwap: 2, cpuShares: 2, pidsLimit: 3 }, ["memorySwap"]],
    ["pids not applied", { memory: 1, memorySwap: 1, cpuShares: 2, pidsLimit: 0 }, ["pidsLimit"]],
  ])("limits read back: %s", (_name, got, want) => {
    expect(limitMismatches({ memory: 1, memorySwap: 1, cpuShares: 2, pidsLimit: 3 }, got)).toEqual(want);
  });
});
