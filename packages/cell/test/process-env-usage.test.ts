// The pure parts of a process's set-up and measure: env layering, CF_INSTANCE_*, the cell's address, cgroup
// paths and the engine's stats.
import { cellIp, instanceVariables } from "../src/actions/instance-env.js";
import { cgroupPaths, usageFromStats } from "../src/runtime/cgroup-usage.js";
import { createdEnv, layerEnv } from "../src/runtime/env-layers.js";

describe("layerEnv", () => {
  test.each([
    [
      "later layers win, at the first place of the name",
      [
        ["A=1", "B=1"],
        ["B=2", "C=2"],
      ],
      ["A=1", "B=2", "C=2"],
    ],
    ["later entries of one layer win", [["A=1", "A=2"]], ["A=2"]],
    ["a value may hold `=`", [["A=x=y"]], ["A=x=y"]],
    ["a bare name is an empty value", [["A"]], ["A="]],
    ["no layers, nothing", [], []],
  ])("%s", (_name, layers, want) => {
    expect(layerEnv(...layers)).toEqual(want);
  });
});

describe("createdEnv (a container's env, as the engine makes it at create)", () => {
  test.each([
    [
      "the given env first, then the image's entries it does not name",
      ["B=t", "C=t"],
      ["A=i", "B=i"],
      ["B=t", "C=t", "A=i"],
    ],
    ["no env: the image's", [], ["A=i"], ["A=i"]],
    ["a bare name names the image's too", ["A"], ["A=i"], ["A"]],
  ])("%s", (_name, env, image, want) => {
    expect(createdEnv(env, image)).toEqual(want);
  });
});

describe("CF_INSTANCE_*", () => {
  test("the cell's and container's addresses, no ports; the task's and the action's env override them", () => {
    const vars = instanceVariables("10.0.0.5", "172.17.0.3");
    expect(vars).toEqual([
      "CF_INSTANCE_IP=10.0.0.5",
      "CF_INSTANCE_INTERNAL_IP=172.17.0.3",
      "CF_INSTANCE_ADDR=",
      "CF_INSTANCE_PORT=",
      "CF_INSTANCE_PORTS=[]",
    ]);
    expect(layerEnv(vars, ["CF_INSTANCE_PORT=8080"], ["CF_INSTANCE_IP=x"])).toEqual(
      expect.arrayContaining(["CF_INSTANCE_IP=x", "CF_INSTANCE_PORT=8080", "CF_INSTANCE_INTERNAL_IP=172.17.0.3"]),
    );
  });

  const interfaces = {
    lo: [{ address: "127.0.0.1", family: "IPv4", internal: true }],
    eth0: [
      { address: "fe80::1", family: "IPv6", internal: false },
      { address: "10.1.2.3", family: "IPv4", internal: false },
    ],
  } as never;
  test.each([
    ["127.0.0.1:1800", "127.0.0.1"],
    ["cell-7.example:1800", "cell-7.example"],
    ["[fd00::7]:1800", "fd00::7"],
    ["0.0.0.0:1800", "10.1.2.3"],
    ["[::]:1800", "10.1.2.3"],
  ])("cellIp(%s) is %s", (address, want) => {
    expect(cellIp(address, interfaces)).toBe(want);
  });
  test("a wildcard on a host without external IPv4 is 127.0.0.1", () => {
    expect(cellIp("0.0.0.0:1800", {})).toBe("127.0.0.1");
  });
});

describe("cgroupPaths", () => {
  test.each([
    [
      "cgroup v1 (hybrid)",
      "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n",
      { memory: "/docker/abc", cpuacct: "/docker/abc", unified: "/docker/abc" },
    ],
    ["cgroup v2", "0::/system.slice/docker-abc.scope\n", { unified: "/system.slice/docker-abc.scope" }],
    ["nothing readable", "", {}],
  ])("%s", (_name, text, want) => {
    expect(cgroupPaths(text)).toEqual(want);
  });
});

describe("usageFromStats", () => {
  test.each([
    [
      "v1: max_usage and total_usage",
      { memory_stats: { max_usage: 52_000_000, usage: 1000 }, cpu_stats: { cpu_usage: { total_usage: 7 } } },
      { peakMemoryBytes: 52_000_000n, cpuTimeNs: 7n },
    ],
    [
      "v2: no max_usage, the current usage",
      { memory_stats: { usage: 4096 }, cpu_stats: { cpu_usage: { total_usage: 9 } } },
      { peakMemoryBytes: 4096n, cpuTimeNs: 9n },
    ],
    ["a stopped container's empty stats", { memory_stats: {}, cpu_stats: {} }, undefined],
  ])("%s", (_name, stats, want) => {
    expect(usageFromStats(stats)).toEqual(want);
  });
});
