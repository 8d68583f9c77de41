// ContainerRuntime.reattach on the fake and on Docker: a process started earlier is found again by its
// id, waited for and signalled (what a restarted cell needs to follow it); an unknown one is undefined.
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ContainerRuntime, ExecSpec } from "../src/runtime/container-runtime.js";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { eventually } from "@diego/testing";
import { containerSpec, uniqueId } from "./support/harness.js";
import { CONTRACT_IMAGE } from "./support/runtime-contract.js";

const helperDir = join(tmpdir(), `diego-reattach-helper-${process.pid}`);
const docker = new DockerRuntime({ helperDir });
beforeAll(() => new DockerEngine(docker, helperDir).prepareHelper(CONTRACT_IMAGE));
afterAll(() => rm(helperDir, { recursive: true, force: true }));

const quiet = { stdout: () => undefined, stderr: () => undefined };
const sh = (script: string): ExecSpec => ({ argv: ["/bin/sh", "-c", script], env: [], user: "", dir: "", nofile: 0 });

describe.each([
  ["fake", () => new FakeRuntime() as ContainerRuntime],
  ["docker", () => docker as ContainerRuntime],
])("reattach: %s", (_, make) => {
  let rt: ContainerRuntime;
  let id: string;
  beforeAll(async () => {
    rt = make();
    id = await rt.create(
      containerSpec({
        name: uniqueId("diego-reattach"),
        image: CONTRACT_IMAGE,
        labels: { "diego.reattach-test": "1" },
        memoryMb: 64,
      }),
    );
    await rt.start(id);
  });
  afterAll(() => rt.remove(id));

  test("a running process is found again and gives its exit status", async () => {
    const started = await rt.exec(id, sh("sleep 1; exit 5"), quiet);
    expect(started.id).toBeTruthy();
    const again = await rt.reattach(id, started.id);
    expect(again?.id).toBe(started.id);
    expect(await again!.exited).toEqual({ exitCode: 5, outOfMemory: false });
  }, 30_000);

  test("a process that already exited is found with its exit status", async () => {
    const started = await rt.exec(id, sh("exit 4"), quiet);
    await started.exited;
    expect(await (await rt.reattach(id, started.id))!.exited).toEqual({ exitCode: 4, outOfMemory: false });
  }, 30_000);

  test("a reattached process can be stopped", async () => {
    const started = await rt.exec(id, sh("sleep 30"), quiet);
    const again = (await rt.reattach(id, started.id))!;
    await new Promise((r) => setTimeout(r, 300));
    await again.signal("SIGKILL");
    expect((await again.exited).exitCode).not.toBe(0);
  }, 30_000);

  test("a reattached process delivers its output from the offsets given, what came meanwhile included", async () => {
    let first = "";
    const started = await rt.exec(id, sh("echo one; printf tw; sleep 1; echo o; echo err >&2; sleep 0.5; echo three"), {
      stdout: (c) => (first += c.toString()),
      stderr: () => undefined,
    });
    await eventually("the first line delivered", async () => first.includes("tw"), 10_000, 20);
    // A partial line is not counted: a later reader gets it again, whole.
    expect(started.output?.()).toEqual({ stdout: 4, stderr: 0 });
    let out = "";
    let err = "";
    const again = await rt.reattach(
      id,
      started.id,
      {
        stdout: (c) => (out += c.toString()),
        stderr: (c) => (err += c.toString()),
      },
      started.output!(),
    );
    expect(await again!.exited).toEqual({ exitCode: 0, outOfMemory: false });
    expect({ out, err }).toEqual({ out: "two\nthree\n", err: "err\n" });
    expect(again!.output?.()).toEqual({ stdout: 14, stderr: 4 });
  }, 30_000);

  test("an unknown process, or one of another container, is undefined", async () => {
    expect(await rt.reattach(id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")).toBeUndefined();
    const started = await rt.exec(id, sh("exit 0"), quiet);
    await started.exited;
    expect(
      await rt.reattach("0000000000000000000000000000000000000000000000000000000000000000", started.id),
    ).toBeUndefined();
  }, 30_000);
});
