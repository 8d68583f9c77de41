// Run actions on the real Docker engine, through the action runner: stops that land while a process starts,
// exit statuses, the working directory, CF_INSTANCE_* and usage.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ActionSchema } from "@diego/proto";
import { ImageHomes } from "../src/actions/container-files.js";
import { DownloadCache } from "../src/actions/download-cache.js";
import { actionRunner, runTree } from "../src/actions/run-action.js";
import type { StepContext } from "../src/actions/step.js";
import { overriding, type ContainerRuntime, type ContainerSpec } from "../src/runtime/container-runtime.js";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { firstFile } from "../src/runtime/tar-files.js";
import { CONTRACT_IMAGE, tarOf } from "./support/runtime-contract.js";
import { uniqueId } from "./support/harness.js";

type ActionInit = MessageInitShape<typeof ActionSchema>;
const sh = (script: string, extra: Record<string, unknown> = {}): ActionInit => ({
  action: { case: "run", value: { path: "/bin/sh", args: ["-c", script], ...extra } },
});
const action = (init: ActionInit) => create(ActionSchema, init);

let workDir: string;
let docker: DockerRuntime;
let cache: DownloadCache;
const created: string[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "diego-run-step-"));
  docker = new DockerRuntime({ helperDir: join(workDir, "helper") });
  await new DockerEngine(docker, join(workDir, "helper")).prepareHelper(CONTRACT_IMAGE);
  cache = new DownloadCache(join(workDir, "downloads"), 1024 * 1024);
  await cache.init();
});
afterAll(async () => {
  for (const id of created) await docker.remove(id);
  await rm(workDir, { recursive: true, force: true });
});

async function container(over: Partial<ContainerSpec> = {}): Promise<string> {
  const id = await docker.create({
    name: uniqueId("diego-run-step"),
    image: CONTRACT_IMAGE,
    labels: { "diego.test": "run-step" },
    env: [],
    memoryMb: 256,
    diskMb: 0,
    cpuShares: 0,
    maxPids: 0,
    privileged: false,
    network: true,
    ...over,
  });
  created.push(id);
  await docker.start(id);
  return id;
}

function context(signal = new AbortController().signal): { ctx: StepContext; lines: string[] } {
  const lines: string[] = [];
  return { lines, ctx: { signal, logSource: "LOG", log: (_s, line, source) => lines.push(`${source}: ${line}`) } };
}

/** The runner of one container, on `runtime` (Docker, or Docker seen through a hook), with Diego's 10 s grace. */
const runnerOf = (id: string, runtime: ContainerRuntime = docker, instanceIp = "10.9.8.7") =>
  actionRunner({ runtime, containerId: id, cache, gracefulShutdownMs: 10_000, instanceIp });

async function exists(id: string, path: string): Promise<boolean> {
  return docker.getArchive(id, path).then(
    (s) => (s.resume(), true),
    () => false,
  );
}

async function fileText(id: string, path: string): Promise<string | undefined> {
  return (await firstFile(await docker.getArchive(id, path)))?.data.toString("utf8");
}

const settle = () => new Promise((r) => setTimeout(r, 2000));

describe("stops are never lost", () => {
  test("a cancel the instant the process starts: SIGTERM once it has a pid, its side effect never happens", async () => {
    const id = await container();
    const stop = new AbortController();
    // Docker itself, with a hook that cancels the moment exec returns: the process is just starting (pid 0).
    const hooked: ContainerRuntime = Object.assign(Object.create(docker) as DockerRuntime, {
      exec: async (...args: Parameters<DockerRuntime["exec"]>) => {
        const handle = await docker.exec(...args);
        stop.abort();
        return handle;
      },
    });
    const { ctx } = context(stop.signal);
    const began = Date.now();
    const err = await runnerOf(id, hooked)(action(sh("sleep 1; touch /tmp/x")), ctx);
    const took = Date.now() - began;
    expect(err?.cancelled).toBe(true);
    expect(took).toBeLessThan(8000); // well inside the 10 s grace period: SIGTERM ended it
    await settle();
    expect(await exists(id, "/tmp/x")).toBe(false);
  });

  test("a cancel before the process starts: it never runs", async () => {
    const id = await container();
    const stop = new AbortController();
    const run = runnerOf(id);
    const { ctx } = context(stop.signal);
    const step = run(action(sh("touch /tmp/early")), ctx);
    stop.abort();
    expect((await step)?.cancelled).toBe(true);
    await settle();
    expect(await exists(id, "/tmp/early")).toBe(false);
  });

  test("a stop while the wrapper waits for the cell: the wrapper exits, the program never runs", async () => {
    const id = await container();
    // Not stopped when the exec is made, stopped by the time the cell would let the wrapper go.
    let looks = 0;
    const signal = {
      get aborted() {
        return ++looks > 1;
      },
    } as AbortSignal;
    const io = { stdout: () => undefined, stderr: () => undefined };
    const spec = { argv: ["/bin/touch", "/tmp/held"], env: [], user: "", dir: "/", nofile: 0 };
    await expect(docker.exec(id, spec, io, signal)).rejects.toMatchObject({ code: "CANCELLED" });
    await settle();
    expect(await exists(id, "/tmp/held")).toBe(false);
  });

  test("a 20 ms timeout, shorter than the start-up: the timeout text, and nothing runs", async () => {
    const id = await container();
    const { ctx } = context();
    const began = Date.now();
    const err = await runnerOf(id)(
      action({
        action: { case: "timeout", value: { timeoutMs: 20n, action: sh("touch /tmp/y0; sleep 1; touch /tmp/y") } },
      }),
      ctx,
    );
    expect(err?.message).toBe("exceeded 20ms timeout");
    expect(Date.now() - began).toBeLessThan(8000);
    await settle();
    expect(await exists(id, "/tmp/y0")).toBe(false);
    expect(await exists(id, "/tmp/y")).toBe(false);
  });

  test("a codependent sibling's failure stops the others at once", async () => {
    const id = await container();
    const { ctx } = context();
    const began = Date.now();
    const outcome = await runTree(
      runnerOf(id),
      action({ action: { case: "codependent", value: { actions: [sh("exit 3"), sh("sleep 1; touch /tmp/z")] } } }),
      ctx,
    );
    expect(outcome).toMatchObject({ error: { message: "LOG: Exited with status 3" }, exitStatus: 3 });
    expect(Date.now() - began).toBeLessThan(8000);
    await settle();
    expect(await exists(id, "/tmp/z")).toBe(false);
  });
});

describe("exit status", () => {
  test("of the failing run through serial and parallel; 0 for a success", async () => {
    const id = await container();
    const run = runnerOf(id);
    const tree = action({
      action: {
        case: "serial",
        value: {
          actions: [sh("exit 0"), { action: { case: "parallel", value: { actions: [sh("true"), sh("exit 4")] } } }],
        },
      },
    });
    expect(await runTree(run, tree, context().ctx)).toMatchObject({ exitStatus: 4 });
    expect(await runTree(run, action(sh("true")), context().ctx)).toEqual({ exitStatus: 0 });
  });
});

describe("working directory", () => {
  test("a run without dir starts in its user's home: vcap writes `thingy` there, root is in /root", async () => {
    const id = await container();
    const run = runnerOf(id);
    expect(
      await run(action(sh("echo x > thingy; pwd > /tmp/vcap-pwd", { user: "vcap" })), context().ctx),
    ).toBeUndefined();
    expect(await fileText(id, "/home/vcap/thingy")).toBe("x\n");
    expect(await fileText(id, "/tmp/vcap-pwd")).toBe("/home/vcap\n");
    expect(await run(action(sh("pwd > /tmp/root-pwd")), context().ctx)).toBeUndefined();
    expect(await fileText(id, "/tmp/root-pwd")).toBe("/root\n");
    expect(await run(action(sh("pwd > /tmp/dir-pwd", { dir: "/tmp" })), context().ctx)).toBeUndefined();
    expect(await fileText(id, "/tmp/dir-pwd")).toBe("/tmp\n");
  });

  test("a home the image lacks is made, owned by the user", async () => {
    const id = await container();
    const passwd = `${await fileText(id, "/etc/passwd")}ghost:x:3000:3000:ghost:/home/ghost:/bin/sh\n`;
    await docker.putArchive(id, "/etc", await tarOf({ passwd }));
    const err = await runnerOf(id)(
      action(sh("echo x > thingy; stat -c %u /home/ghost > /tmp/owner", { user: "ghost" })),
      context().ctx,
    );
    expect(err).toBeUndefined();
    expect(await fileText(id, "/home/ghost/thingy")).toBe("x\n");
    expect(await fileText(id, "/tmp/owner")).toBe("3000\n");
  });

  test("a new container of an image seen before starts in the home the image holds, without reading it again", async () => {
    const homes = new ImageHomes();
    let passwdReads = 0;
    const counting = overriding(docker, {
      getArchive: (c, path) => {
        if (path === "/etc/passwd") passwdReads++;
        return docker.getArchive(c, path);
      },
    });
    const runIn = (id: string) =>
      actionRunner({
        runtime: counting,
        containerId: id,
        cache,
        gracefulShutdownMs: 10_000,
        imageHomes: homes,
        pristine: true,
      });
    for (const _ of [1, 2]) {
      const id = await container();
      expect(await runIn(id)(action(sh("pwd > /tmp/pwd", { user: "vcap" })), context().ctx)).toBeUndefined();
      expect(await fileText(id, "/tmp/pwd")).toBe("/home/vcap\n");
    }
    expect(passwdReads).toBe(1);
  });
});

test("a process that writes and exits at once is read through its own descriptors, not the archive", async () => {
  const id = await container();
  const archive = docker.getArchive.bind(docker);
  let outputReads = 0;
  docker.getArchive = (c, path) => {
    if (path.startsWith("/.diego-output/")) outputReads++;
    return archive(c, path);
  };
  try {
    const { lines, ctx } = context();
    expect(await runnerOf(id)(action(sh("echo out; echo err >&2")), ctx)).toBeUndefined();
    expect(lines.slice(0, 2).sort()).toEqual(["LOG: err", "LOG: out"]);
    expect(outputReads).toBe(0);
  } finally {
    docker.getArchive = archive;
  }
});

describe("files read through the container's main process", () => {
  const counting = () => {
    const archive = docker.getArchive.bind(docker);
    const reads = { n: 0, restore: () => (docker.getArchive = archive) };
    docker.getArchive = (c, path) => {
      reads.n++;
      return archive(c, path);
    };
    return reads;
  };

  test("a regular file: no archive read; the first maxBytes, and whether more followed", async () => {
    const id = await container();
    expect(await runnerOf(id)(action(sh("printf 0123456789 > /tmp/result")), context().ctx)).toBeUndefined();
    const reads = counting();
    try {
      const whole = await docker.readFile(id, "/tmp/result", 100);
      const cut = await docker.readFile(id, "/tmp/result", 4);
      expect(whole && { data: whole.data.toString(), truncated: whole.truncated }).toEqual({
        data: "0123456789",
        truncated: false,
      });
      expect(cut && { data: cut.data.toString(), truncated: cut.truncated }).toEqual({ data: "0123", truncated: true });
      expect(reads.n).toBe(0);
    } finally {
      reads.restore();
    }
  });

  test("a symlink (to the host's files or any) is not a regular file; a missing one is NOT_FOUND", async () => {
    const id = await container();
    expect(
      await runnerOf(id)(action(sh("ln -s /etc/shadow /tmp/link; mkdir /tmp/dir")), context().ctx),
    ).toBeUndefined();
    expect(await docker.readFile(id, "/tmp/link", 100)).toBeUndefined();
    await expect(docker.readFile(id, "/tmp/none", 100)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});

describe("the output directory", () => {
  const mode = async (id: string) => {
    const { lines, ctx } = context();
    expect(await runnerOf(id)(action(sh("stat -c %a /.diego-output")), ctx)).toBeUndefined();
    return lines[0];
  };

  test("is there before the first process, anyone may write to it (mode 1777)", async () => {
    expect(await mode(await container())).toBe("LOG: 1777");
  });

  test("an image whose user is not root gets it too, and its processes run as that user", async () => {
    // Committed from a container never started: the image has no output directory of its own.
    const base = await docker.docker.createContainer({ Image: CONTRACT_IMAGE, Cmd: ["true"] });
    const image = `diego-test/busybox-vcap:${process.pid}`;
    const [repo, tag] = image.split(":");
    await base.commit({ repo, tag, changes: "USER vcap" });
    await base.remove();
    try {
      const id = await container({ image });
      expect(await mode(id)).toBe("LOG: 1777");
      const { lines, ctx } = context();
      expect(await runnerOf(id)(action(sh("id -u; echo out; echo err >&2; printf r > /tmp/r")), ctx)).toBeUndefined();
      expect(lines.slice(0, 3).sort()).toEqual(["LOG: 2000", "LOG: err", "LOG: out"]);
      // Its main process runs as vcap: files are read through the engine.
      expect((await docker.readFile(id, "/tmp/r", 10))?.data.toString()).toBe("r");
    } finally {
      for (const id of created.splice(0)) await docker.remove(id);
      await docker.docker.getImage(image).remove({ force: true });
    }
  });
});

test("CF_INSTANCE_* reach every process, under the task's and the action's env", async () => {
  const id = await container({ env: ["CF_INSTANCE_PORT=from-task"] });
  const internal = await docker.address(id);
  expect(internal).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  const script =
    'echo "$CF_INSTANCE_IP|$CF_INSTANCE_INTERNAL_IP|$CF_INSTANCE_ADDR|$CF_INSTANCE_PORT|$CF_INSTANCE_PORTS" > /tmp/env';
  const err = await runnerOf(id)(
    action(sh(script, { env: [{ name: "CF_INSTANCE_ADDR", value: "from-action" }] })),
    context().ctx,
  );
  expect(err).toBeUndefined();
  expect(await fileText(id, "/tmp/env")).toBe(`10.9.8.7|${internal}|from-action|from-task|[]\n`);
});

test("usage: a process that allocates 50 MB shows a peak of at least that", async () => {
  const id = await container();
  const err = await runnerOf(id)(action(sh("dd if=/dev/zero of=/dev/null bs=50M count=1")), context().ctx);
  expect(err).toBeUndefined();
  const usage = await docker.usage(id);
  expect(usage?.peakMemoryBytes).toBeGreaterThanOrEqual(50n * 1024n * 1024n);
  expect(usage?.cpuTimeNs).toBeGreaterThan(0n);
});
