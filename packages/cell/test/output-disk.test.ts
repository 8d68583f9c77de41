// The output files on Docker hold only output not consumed yet: what the owner says it has kept is
// punched out of them (docs/reliability.md, "Output files"), their offsets unchanged.
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "@diego/testing";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { containerSpec, uniqueId } from "./support/harness.js";
import { CONTRACT_IMAGE } from "./support/runtime-contract.js";

const helperDir = join(tmpdir(), `diego-output-disk-helper-${process.pid}`);
const docker = new DockerRuntime({ helperDir });
beforeAll(() => new DockerEngine(docker, helperDir).prepareHelper(CONTRACT_IMAGE));
afterAll(() => rm(helperDir, { recursive: true, force: true }));

const newContainer = (name: string) =>
  docker.create(
    containerSpec({ name: uniqueId(name), image: CONTRACT_IMAGE, labels: { "diego.output-disk-test": "1" } }),
  );

test("kept output is given back to the disk; what follows is still delivered", async () => {
  const id = await newContainer("diego-output-disk");
  try {
    await docker.start(id);
    let bytes = 0;
    let tail = "";
    // 4 MiB of 1 KiB lines, then a pause, then one more line.
    const script = "head -c 4190208 /dev/zero | tr '\\0' x | fold -w 1023; echo; sleep 2; echo done";
    const h = await docker.exec(
      id,
      { argv: ["/bin/sh", "-c", script], env: [], user: "", dir: "", nofile: 0 },
      {
        stdout: (c) => {
          bytes += c.length;
          tail = (tail + c.toString()).slice(-10);
        },
        stderr: () => undefined,
      },
    );
    await eventually("4 MiB delivered", async () => bytes >= 4 * 1024 * 1024, 30_000, 50);
    h.release!(h.output!());
    const info = await docker.docker.getContainer(id).inspect();
    const dir = `/proc/${info.State.Pid}/root/.diego-output`;
    const file = join(
      dir,
      (await readdir(dir)).find((f) => f.endsWith(".out"))!,
    );
    await eventually(
      "the file's consumed bytes punched out",
      async () => {
        const s = await stat(file);
        return s.size >= 4 * 1024 * 1024 && s.blocks * 512 < 1024 * 1024;
      },
      10_000,
      50,
    );
    expect((await h.exited).exitCode).toBe(0);
    expect(tail).toBe("xxxx\ndone\n");
    expect(h.output!()).toEqual({ stdout: bytes, stderr: 0 });
  } finally {
    await docker.remove(id);
  }
}, 60_000);

// A task that points its output file at a path of the host (a symlink, which the host would resolve
// against its own root) gets nothing of the host's, even from a cell that reattaches to it after a
// restart: the cell reads the file the process really has open, or the engine reads it inside the
// container once the process is gone.
test.each([
  ["while the process runs", "sleep 3"],
  ["after it exited", "true"],
])(
  "an output file replaced by a symlink to a host file reads nothing of the host (%s)",
  async (_, then) => {
    const canary = join(tmpdir(), `diego-output-canary-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(canary, "HOST-SECRET\n");
    const id = await newContainer("diego-output-escape");
    try {
      await docker.start(id);
      const script = `f=$(readlink /proc/$$/fd/1); rm -f "$f"; ln -s ${canary} "$f"; echo replaced >&2; ${then}`;
      let first = "";
      const h = await docker.exec(
        id,
        { argv: ["/bin/sh", "-c", script], env: [], user: "", dir: "", nofile: 0 },
        { stdout: () => undefined, stderr: (c) => (first += c.toString()) },
      );
      await eventually("the file replaced", async () => first.includes("replaced"), 20_000, 50);
      if (then === "true") await h.exited;
      // A restarted cell follows the process from the start of its files.
      let out = "";
      const again = await docker.reattach(
        id,
        h.id,
        { stdout: (c) => (out += c.toString()), stderr: () => undefined },
        { stdout: 0, stderr: 0 },
      );
      expect(again).toBeDefined();
      await again!.exited;
      expect(out).not.toContain("HOST-SECRET");
    } finally {
      await docker.remove(id);
      await rm(canary, { force: true });
    }
  },
  60_000,
);
