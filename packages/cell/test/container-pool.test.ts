// The container pool on the real Docker engine (docs/performance.md, "The container pool").
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@diego/kit";
import { eventually } from "@diego/testing";
import { cellLabels, containerName, taskGuidOf } from "../src/executor/labels.js";
import type { ContainerSpec } from "../src/runtime/container-runtime.js";
import { ContainerPool, dockerPoolEngine } from "../src/runtime/container-pool.js";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { LABEL_POOL } from "../src/runtime/pool-plan.js";
import { poolNamePrefix } from "../src/start-cell.js";
import { TaskState } from "@diego/proto";
import { CellProcess, processJournaled, RestartableBbs } from "./support/restartable-bbs.js";
import { removeCellContainers, startHarness, uniqueId, type Harness } from "./support/harness.js";

const IMAGE = "diego/busybox:latest";

describe("the pool itself", () => {
  const cellId = uniqueId("pool-cell");
  const helperDir = join(tmpdir(), `diego-pool-test-${cellId}`, "helper");
  const runtime = new DockerRuntime({ helperDir });
  let pool: ContainerPool;

  beforeAll(async () => {
    await new DockerEngine(runtime, helperDir).prepareHelper(IMAGE);
  });
  afterAll(async () => {
    await pool?.stop();
    await removeCellContainers(runtime, cellId);
  });

  const spec = (guid: string): ContainerSpec => ({
    name: containerName(cellId, guid),
    image: IMAGE,
    labels: {},
    env: [],
    memoryMb: 48,
    diskMb: 0,
    cpuShares: 256,
    maxPids: 40,
    privileged: false,
    network: false,
  });

  /** A started pool of `size` per shape for the cell `cell`. */
  const startPool = async (cell: string, size: number) => {
    const made = new ContainerPool({
      engine: dockerPoolEngine(runtime),
      settings: { size, maxShapes: size, shapeIdleMs: 60_000 },
      labels: cellLabels(cell),
      namePrefix: poolNamePrefix(cell),
      logger: createLogger("pool-test", "silent"),
    });
    await made.start();
    return made;
  };

  test("a claimed container is never handed out again; it has the task's name and limits", async () => {
    const labels = cellLabels(cellId);
    pool = await startPool(cellId, 2);
    // The first task of a shape finds none: the pool learns the shape and fills it.
    expect(await pool.claim(spec("first"))).toBeUndefined();
    await eventually("the pool to fill", async () => pool.readyFor(spec("x")) === 2, 60_000);

    // Three claims at once for two ready containers: two take them, the third waits for the one the pool
    // starts making as it runs dry. Each gets a container of its own.
    const guids = ["t1", "t2", "t3"];
    const claimed = await Promise.all(guids.map((g) => pool.claim(spec(g))));
    const ids = claimed.filter((id): id is string => id !== undefined);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    expect(pool.stats()).toMatchObject({ hits: 3, misses: 1 });

    // The pool refills with new containers, never the claimed ones.
    await eventually("the pool to refill", async () => pool.readyFor(spec("x")) === 2, 60_000);
    const listed = await runtime.list(labels);
    const unclaimed = listed.filter((c) => pool.isUnclaimed(c)).map((c) => c.id);
    expect(unclaimed).toHaveLength(2);
    for (const id of ids) expect(unclaimed).not.toContain(id);
    // More claims still never hand out a claimed container.
    const again = await Promise.all(["t4", "t5"].map((g) => pool.claim(spec(g))));
    for (const id of again) expect(ids).not.toContain(id);

    for (const id of ids) {
      const info = await runtime.docker.getContainer(id).inspect();
      const guid = taskGuidOf({ name: info.Name.replace(/^\//, ""), labels: info.Config.Labels }, cellId);
      expect(claimed[guids.indexOf(guid!)]).toBe(id);
      expect(info.State.Running).toBe(true);
      expect(info.HostConfig).toMatchObject({
        Memory: 48 << 20,
        MemorySwap: 48 << 20,
        CpuShares: 256,
        PidsLimit: 40,
      });
    }
  }, 120_000);

  test("a claim finding none ready takes the one being made rather than making one more", async () => {
    const otherCell = `${cellId}-c`;
    const other = await startPool(otherCell, 1);
    try {
      // The first claim of a shape finds none; the pool starts making one at once (it ran dry).
      expect(await other.claim(spec("c0"))).toBeUndefined();
      expect(other.stats()).toMatchObject({ ready: 0, creating: 1 });
      // Two claims while it is made: the first waits for it, the second finds none (never the same).
      const [a, b] = await Promise.all([other.claim(spec("c1")), other.claim(spec("c2"))]);
      expect(a).toEqual(expect.any(String));
      expect(b).toBeUndefined();
      expect(other.stats()).toMatchObject({ hits: 1, misses: 2, created: 1 });
      const info = await runtime.docker.getContainer(a!).inspect();
      expect(info.Name).toBe(`/${containerName(cellId, "c1")}`);
      expect(info.HostConfig).toMatchObject({ Memory: 48 << 20, CpuShares: 256, PidsLimit: 40 });
    } finally {
      await other.stop();
      await removeCellContainers(runtime, otherCell);
    }
  }, 120_000);

  test("a pooled container whose image is not the one the task's reference names is not used", async () => {
    const otherCell = `${cellId}-b`;
    const other = await startPool(otherCell, 1);
    try {
      // Tasks that found the reference naming another image than the one the pool makes containers of
      // (the reference moved between the task's look and the pool's create).
      const moved = (guid: string): ContainerSpec => ({ ...spec(guid), imageId: "sha256:not-what-it-names" });
      expect(await other.claim(moved("learn"))).toBeUndefined();
      await eventually("the pool to fill", async () => other.readyFor(moved("x")) === 1, 60_000);
      expect(await other.claim(moved("m1"))).toBeUndefined();
      expect(other.stats()).toMatchObject({ hits: 0, discarded: 1 });
    } finally {
      await other.stop();
      await removeCellContainers(runtime, otherCell);
    }
  }, 120_000);
});

describe("through a cell", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness("docker", { containerPool: true, containerPoolSize: 2 });
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
  });

  test("tasks at once never share a container: each sees a fresh one", async () => {
    const pool = h.cell.cell.parts.pool!;
    const run = async () => {
      const guid = uniqueId("pooled");
      await h.cluster.desire({
        taskGuid: guid,
        domain: "pool-test",
        rootFs: "docker:///diego/busybox",
        memoryMb: 64,
        // A container some task used has /tmp/used: this one fails then.
        action: {
          action: {
            case: "run",
            value: {
              path: "/bin/sh",
              args: ["-c", "test ! -e /tmp/used && touch /tmp/used && hostname > /tmp/r"],
            },
          },
        },
        resultFile: "/tmp/r",
      });
      return h.cluster.completed(guid, 90_000);
    };
    const first = await run();
    expect(first.failed).toBe(false);
    await eventually("the pool to fill", async () => pool.stats().ready === 2, 60_000);
    // Reported in the cell's state; no task capacity held.
    await eventually("the first task's reservation released", async () => h.cell.cell.runners.size === 0, 30_000);
    const state = h.cell.cell.state();
    expect(state.pooledContainerCount).toBe(2);
    expect(state.available).toEqual(state.total);
    const tasks = await Promise.all([run(), run(), run(), run()]);
    for (const t of tasks) expect(t).toMatchObject({ failed: false, failureReason: "" });
    const hosts = [first, ...tasks].map((t) => t.result.trim());
    expect(new Set(hosts).size).toBe(hosts.length);
    expect(pool.stats().hits).toBeGreaterThanOrEqual(2);
    expect((await h.cluster.presence(h.cellId)) !== undefined).toBe(true);
  }, 180_000);

  test("a task with env takes a pooled container; its processes see the env as in a new one", async () => {
    const pool = h.cell.cell.parts.pool!;
    await eventually("a ready container", async () => pool.stats().ready > 0, 60_000);
    const hits = pool.stats().hits;
    const guid = uniqueId("pooled-env");
    await h.cluster.desire({
      taskGuid: guid,
      domain: "pool-test",
      rootFs: "docker:///diego/busybox",
      memoryMb: 64,
      env: [
        { name: "GREETING", value: "hello" },
        { name: "PATH", value: "/bin:/usr/bin" },
      ],
      action: {
        action: {
          case: "run",
          value: {
            path: "/bin/sh",
            args: ["-c", 'printf "%s|%s|%s|%s" "$GREETING" "$PATH" "$OTHER" "$CF_INSTANCE_PORTS" > /tmp/r'],
            env: [{ name: "OTHER", value: "from-action" }],
          },
        },
      },
      resultFile: "/tmp/r",
    });
    const t = await h.cluster.completed(guid, 90_000);
    expect({ failed: t.failed, reason: t.failureReason, result: t.result }).toEqual({
      failed: false,
      reason: "",
      result: "hello|/bin:/usr/bin|from-action|[]",
    });
    expect(pool.stats().hits).toBe(hits + 1);
  }, 120_000);

  test("a task whose image reference moved since the pool filled gets the image it names now", async () => {
    const pool = h.cell.cell.parts.pool!;
    const ref = `diego/pool-retag-${process.pid}`;
    const docker = new DockerRuntime({ helperDir: join(tmpdir(), "unused") }).docker;
    await docker.getImage(IMAGE).tag({ repo: ref, tag: "latest" });
    const run = async () => {
      const guid = uniqueId("retag");
      await h.cluster.desire({
        taskGuid: guid,
        domain: "pool-test",
        rootFs: `docker:///${ref}`,
        memoryMb: 64,
        action: {
          action: {
            case: "run",
            value: { path: "/bin/sh", args: ["-c", "cat /marker > /tmp/r || echo none > /tmp/r"] },
          },
        },
        resultFile: "/tmp/r",
      });
      return (await h.cluster.completed(guid, 90_000)).result.trim();
    };
    try {
      expect(await run()).toBe("none");
      await eventually("the pool to fill for the image", async () => pool.stats().ready >= 2, 60_000);
      // The reference now names a new image, with /marker.
      const maker = await docker.createContainer({ Image: ref, Cmd: ["/bin/sh", "-c", "echo v2 > /marker"] });
      await maker.start();
      await maker.wait();
      await maker.commit({ repo: ref, tag: "latest" });
      await maker.remove();
      expect(await run()).toBe("v2");
    } finally {
      await docker
        .getImage(`${ref}:latest`)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }, 180_000);
});

test("a restarted cell removes the pooled containers it left unclaimed and follows the task in a claimed one, env and all", async () => {
  const bbs = await RestartableBbs.start();
  const cellId = uniqueId("pool-restart");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  const cell = new CellProcess(cellId, bbs.address, workDir, ["--container-pool", "--container-pool-size", "2"]);
  const run = (script: string) => ({
    action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script] } },
  });
  const desire = (taskGuid: string, ...scripts: string[]) =>
    bbs.tasks.desireTask({
      taskGuid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      resultFile: "/tmp/result",
      env: [{ name: "GREETING", value: "hello" }],
      action:
        scripts.length === 1 ? run(scripts[0]!) : { action: { case: "serial", value: { actions: scripts.map(run) } } },
    });
  const unclaimed = async () =>
    (await runtime.list(cellLabels(cellId))).filter((c) => c.name.startsWith(poolNamePrefix(cellId)));
  try {
    cell.start();
    await bbs.waitForCell(cellId);
    await desire(`${cellId}-first`, "printf 1 > /tmp/result");
    await bbs.waitForState(`${cellId}-first`, TaskState.COMPLETED, 90_000);
    await eventually("the pool to fill", async () => (await unclaimed()).length === 2, 60_000, 200);
    const guid = `${cellId}-across`;
    // Quiet from its start (docs/reliability.md): the restarted cell follows it in its pooled container,
    // then starts its second process with the task's env, which it asks the BBS for again.
    await desire(guid, "sleep 5", 'printf "$GREETING across" > /tmp/result');
    await bbs.waitForState(guid, TaskState.RUNNING);
    await processJournaled(workDir, guid);
    const mine = (await runtime.list(cellLabels(cellId))).find((c) => taskGuidOf(c, cellId) === guid);
    expect(mine?.labels[LABEL_POOL]).toBeDefined(); // it took a pooled container
    await cell.kill();
    const left = await unclaimed();
    expect(left.length).toBeGreaterThan(0);

    cell.start();
    const t = await bbs.waitForState(guid, TaskState.COMPLETED, 120_000);
    expect({ failed: t.failed, failureReason: t.failureReason, result: t.result }).toEqual({
      failed: false,
      failureReason: "",
      result: "hello across",
    });
    const now = await runtime.list(cellLabels(cellId));
    expect(now.filter((c) => left.some((l) => l.id === c.id))).toEqual([]);
  } finally {
    await cell.stop();
    await bbs.stop();
    await removeCellContainers(runtime, cellId);
    await rm(workDir, { recursive: true, force: true });
  }
}, 240_000);
