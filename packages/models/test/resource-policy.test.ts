import { applyResourcePolicy, NO_RESOURCE_POLICY } from "../src/resource-policy.js";

// The operator's default and maximum memory_mb and disk_mb (docs/limits.md).
const policy = { defaultMemoryMb: 256, maxMemoryMb: 4096, defaultDiskMb: 1024, maxDiskMb: 8192 };

test.each([
  ["0 takes the defaults", { memoryMb: 0, diskMb: 0 }, { memoryMb: 256, diskMb: 1024 }, []],
  ["given values stay", { memoryMb: 64, diskMb: 64 }, { memoryMb: 64, diskMb: 64 }, []],
  ["at the maximum", { memoryMb: 4096, diskMb: 8192 }, { memoryMb: 4096, diskMb: 8192 }, []],
  ["over the maximum", { memoryMb: 4097, diskMb: 9000 }, { memoryMb: 4097, diskMb: 9000 }, ["memory_mb", "disk_mb"]],
])("%s", (_what, task, sized, bad) => {
  const out = applyResourcePolicy(task, policy);
  expect({ memoryMb: out.memoryMb, diskMb: out.diskMb }).toEqual(sized);
  expect(out.violations.map((v) => v.field)).toEqual(bad);
  for (const v of out.violations)
    expect(v.message).toMatch(/must be at most \d+ on this cluster \(--max-(memory|disk)-mb\)/);
});

test("without a policy nothing changes", () => {
  expect(applyResourcePolicy({ memoryMb: 0, diskMb: 0 }, NO_RESOURCE_POLICY)).toEqual({
    memoryMb: 0,
    diskMb: 0,
    violations: [],
  });
});
