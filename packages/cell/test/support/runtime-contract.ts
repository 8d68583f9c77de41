// One contract for every ContainerRuntime: the fake and Docker both pass it (test/runtime-contract.test.ts).
import { pack } from "tar-stream";
import { firstFile } from "../../src/runtime/tar-files.js";
import type { ContainerRuntime, ContainerSpec, ExecSpec } from "../../src/runtime/container-runtime.js";
import { uniqueId } from "./harness.js";

export const CONTRACT_IMAGE = "diego/busybox:latest";

export async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  for (const [name, text] of Object.entries(files)) p.entry({ name, size: Buffer.byteLength(text) }, text);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function run(rt: ContainerRuntime, id: string, script: string, extra: Partial<ExecSpec> = {}) {
  let stdout = "";
  let stderr = "";
  const h = await rt.exec(
    id,
    { argv: ["/bin/sh", "-c", script], env: [], user: "", dir: "", nofile: 0, ...extra },
    {
      stdout: (c) => (stdout += c.toString()),
      stderr: (c) => (stderr += c.toString()),
    },
  );
  const r = await h.exited;
  return { ...r, stdout, stderr };
}

export function runtimeContract(name: string, make: () => ContainerRuntime): void {
  describe(`ContainerRuntime contract: ${name}`, () => {
    let rt: ContainerRuntime;
    const label = uniqueId("contract");
    const created: string[] = [];
    const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
      name: uniqueId(`diego-contract-${name}`),
      image: CONTRACT_IMAGE,
      labels: { "diego.contract": label },
      env: ["A=from-container", "B=b"],
      memoryMb: 64,
      diskMb: 0,
      cpuShares: 512,
      maxPids: 100,
      privileged: false,
      network: true,
      ...over,
    });
    const started = async (over: Partial<ContainerSpec> = {}) => {
      const id = await rt.create(spec(over));
      created.push(id);
      await rt.start(id);
      return id;
    };

    beforeAll(() => {
      rt = make();
    });
    afterAll(async () => {
      for (const id of created) await rt.remove(id);
    });

    test("knows which images are present, by the id a container made from one has", async () => {
      const imageId = await rt.imageId(CONTRACT_IMAGE);
      expect(imageId).toEqual(expect.any(String));
      expect(await rt.imageOf(await started())).toBe(imageId);
      expect(await rt.imageId("diego/no-such-image-here:never")).toBeUndefined();
    });

    test("a pull of an image that exists nowhere fails with a reason", async () => {
      await expect(rt.pullImage("localhost:1/diego/nothing:never")).rejects.toThrow(/./);
    });

    test("runs processes with exit codes, output and env layered over the container's", async () => {
      const id = await started();
      const r = await run(rt, id, 'echo "$A $B"; echo oops >&2; exit 3', { env: ["A=from-exec"] });
      expect(r).toEqual({ exitCode: 3, outOfMemory: false, stdout: "from-exec b\n", stderr: "oops\n" });
      expect((await run(rt, id, "true")).exitCode).toBe(0);
    });

    test("several processes run side by side in one container", async () => {
      const id = await started();
      const [a, b] = await Promise.all([run(rt, id, "sleep 0.3; echo a"), run(rt, id, "echo b")]);
      expect(a.stdout).toBe("a\n");
      expect(b.stdout).toBe("b\n");
    });

    test("SIGTERM stops a process; one that ignores it stops with SIGKILL", async () => {
      const id = await started();
      let h = await rt.exec(
        id,
        { argv: ["/bin/sh", "-c", "sleep 30"], env: [], user: "", dir: "", nofile: 0 },
        { stdout: () => {}, stderr: () => {} },
      );
      await new Promise((r) => setTimeout(r, 300));
      await h.signal("SIGTERM");
      expect((await h.exited).exitCode).toBe(143);
      h = await rt.exec(
        id,
        { argv: ["/bin/sh", "-c", "trap '' TERM; sleep 30"], env: [], user: "", dir: "", nofile: 0 },
        { stdout: () => {}, stderr: () => {} },
      );
      await new Promise((r) => setTimeout(r, 300));
      await h.signal("SIGTERM");
      const raced = await Promise.race([h.exited, new Promise((r) => setTimeout(() => r("still running"), 500))]);
      expect(raced).toBe("still running");
      await h.signal("SIGKILL");
      expect((await h.exited).exitCode).toBe(137);
    });

    test("a process stopped before it starts never runs; one signalled the instant it starts stops", async () => {
      const id = await started();
      const io = { stdout: () => {}, stderr: () => {} };
      const stopped = new AbortController();
      stopped.abort();
      const never = { argv: ["/bin/sh", "-c", "echo x > /tmp/never"], env: [], user: "", dir: "", nofile: 0 };
      await expect(rt.exec(id, never, io, stopped.signal)).rejects.toMatchObject({ code: "CANCELLED" });
      const began = Date.now();
      const h = await rt.exec(
        id,
        { argv: ["/bin/sh", "-c", "sleep 1; echo x > /tmp/late"], env: [], user: "", dir: "", nofile: 0 },
        io,
      );
      await h.signal("SIGTERM");
      expect((await h.exited).exitCode).toBe(143);
      expect(Date.now() - began).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 1500));
      await expect(rt.getArchive(id, "/tmp/late")).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(rt.getArchive(id, "/tmp/never")).rejects.toMatchObject({ code: "NOT_FOUND" });
    });

    test("baseEnv goes under the container's env and the process's", async () => {
      const id = await started();
      const r = await run(rt, id, 'echo "$A $B $C $D"', { env: ["D=exec"], baseEnv: ["A=base", "C=base", "D=base"] });
      expect(r.stdout).toBe("from-container b base exec\n");
    });

    test("address: the container's IP on its network, empty without one", async () => {
      expect(await rt.address(await started())).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(await rt.address(await started({ network: false }))).toBe("");
    });

    test("usage: peak memory and CPU time of a running container; undefined once it is gone", async () => {
      const id = await started();
      await run(rt, id, "true");
      const u = await rt.usage(id);
      expect(u?.peakMemoryBytes).toBeGreaterThan(0n);
      expect(u?.cpuTimeNs).toBeGreaterThan(0n);
      await rt.remove(id);
      expect(await rt.usage(id)).toBeUndefined();
    });

    test("files go in with putArchive and come out with getArchive", async () => {
      const id = await started();
      await rt.putArchive(id, "/tmp", await tarOf({ "hello.txt": "hi there" }));
      expect((await run(rt, id, "cat /tmp/hello.txt")).stdout).toBe("hi there");
      await run(rt, id, "printf result > /tmp/out");
      const file = await firstFile(await rt.getArchive(id, "/tmp/out"));
      expect(file?.data.toString()).toBe("result");
      await expect(rt.getArchive(id, "/tmp/none")).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(rt.putArchive(id, "/no/such/dir", await tarOf({ x: "y" }))).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
    });

    test("isDirectory: true for a directory, false for a file or nothing", async () => {
      const id = await started();
      await rt.putArchive(id, "/tmp", await tarOf({ "plain.txt": "x" }));
      expect(await rt.isDirectory(id, "/tmp")).toBe(true);
      expect(await rt.isDirectory(id, "/tmp/plain.txt")).toBe(false);
      expect(await rt.isDirectory(id, "/no/such/place")).toBe(false);
    });

    test("the helper busybox can make directories", async () => {
      const id = await started();
      const h = await rt.exec(
        id,
        { argv: ["/.diego/busybox", "mkdir", "-p", "/tmp/a/b"], env: [], user: "", dir: "", nofile: 0 },
        { stdout: () => {}, stderr: () => {} },
      );
      expect((await h.exited).exitCode).toBe(0);
      await rt.putArchive(id, "/tmp/a/b", await tarOf({ f: "x" }));
    });

    test("lists containers by label, reports events, and removes them (twice is fine)", async () => {
      const events: string[] = [];
      const mine = uniqueId("only");
      const unwatch = rt.watch(
        { "diego.contract": label, "diego.only": mine },
        (e) => events.push(e.action),
        () => {},
      );
      await new Promise((r) => setTimeout(r, 200));
      const s = spec({ labels: { "diego.contract": label, "diego.only": mine } });
      const id = await rt.create(s);
      await rt.start(id);
      const listed = await rt.list({ "diego.only": mine });
      expect(listed).toEqual([
        { id, name: s.name, labels: expect.objectContaining({ "diego.only": mine }), status: "running" },
      ]);
      await rt.remove(id);
      await rt.remove(id);
      expect(await rt.list({ "diego.only": mine })).toEqual([]);
      const until = Date.now() + 10_000;
      while (!events.includes("destroy") && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      unwatch();
      expect(events).toEqual(expect.arrayContaining(["create", "start", "destroy"]));
    });

    test("a second container with the same name is refused", async () => {
      const s = spec();
      const id = await rt.create(s);
      created.push(id);
      await expect(rt.create(s)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    });
  });
}
