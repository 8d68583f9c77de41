// run, download and upload steps on the fake runtime (the same steps run on Docker in docker-actions.test.ts).
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { DownloadActionSchema, RunActionSchema, UploadActionSchema } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { firstFile } from "../src/runtime/tar-files.js";
import { DownloadCache } from "../src/actions/download-cache.js";
import { downloadStep } from "../src/actions/download-step.js";
import { runStep } from "../src/actions/run-step.js";
import type { StepContext } from "../src/actions/step.js";
import { uploadStep } from "../src/actions/upload-step.js";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { HttpFixture, sha256, tarball } from "./support/http-fixtures.js";

let rt: FakeRuntime;
let id: string;
let http: HttpFixture;
let cacheDir: string;
let cache: DownloadCache;
let lines: string[];

const ctx = (signal = new AbortController().signal): StepContext => ({
  signal,
  logSource: "TASK",
  log: (stream, line, source) => lines.push(`${source}/${stream}: ${line}`),
});
const run = (init: MessageInitShape<typeof RunActionSchema>) => create(RunActionSchema, init);

beforeAll(async () => {
  http = await HttpFixture.start();
  cacheDir = await mkdtemp(join(tmpdir(), "diego-cache-test-"));
});
afterAll(async () => {
  await http.close();
  await rm(cacheDir, { recursive: true, force: true });
});
beforeEach(async () => {
  rt = new FakeRuntime();
  id = await rt.create({
    name: "c",
    image: "diego/busybox:latest",
    labels: {},
    env: ["A=task", "B=task"],
    memoryMb: 0,
    diskMb: 0,
    cpuShares: 0,
    maxPids: 0,
    privileged: false,
    network: true,
  });
  await rt.start(id);
  cache = new DownloadCache(cacheDir, 1024 * 1024);
  await cache.init();
  lines = [];
});
const deps = () => ({ runtime: rt, containerId: id, gracefulShutdownMs: 200, cache });

describe("run", () => {
  test("success logs the output and `Exit status 0`", async () => {
    expect(
      await runStep(run({ path: "/bin/sh", args: ["-c", "echo hi; echo err >&2"] }), ctx(), deps()),
    ).toBeUndefined();
    expect(lines).toEqual(["TASK/stdout: hi", "TASK/stderr: err", "TASK/stdout: Exit status 0"]);
  });
  test("non-zero exit: `<source>: Exited with status N`, the action's log_source winning", async () => {
    expect((await runStep(run({ path: "/bin/sh", args: ["-c", "exit 3"] }), ctx(), deps()))?.message).toBe(
      "TASK: Exited with status 3",
    );
    expect(
      (await runStep(run({ path: "/bin/sh", args: ["-c", "exit 1"], logSource: "MINE" }), ctx(), deps()))?.message,
    ).toBe("MINE: Exited with status 1");
  });
  test("out of memory adds ` (out of memory)`", async () => {
    expect((await runStep(run({ path: "/bin/sh", args: ["-c", "fake-oom"] }), ctx(), deps()))?.message).toBe(
      "TASK: Exited with status 137 (out of memory)",
    );
  });
  test("action env layers over task env", async () => {
    await runStep(
      run({ path: "/bin/sh", args: ["-c", "echo $A $B"], env: [{ name: "B", value: "action" }] }),
      ctx(),
      deps(),
    );
    expect(lines[0]).toBe("TASK/stdout: task action");
  });
  test("suppress_log_output keeps the output out of the logs", async () => {
    await runStep(run({ path: "/bin/sh", args: ["-c", "echo secret"], suppressLogOutput: true }), ctx(), deps());
    expect(lines).toEqual([]);
  });
  test("cancel: SIGTERM first", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await runStep(run({ path: "/bin/sh", args: ["-c", "sleep 30"] }), ctx(ac.signal), deps());
    expect(err?.cancelled).toBe(true);
    expect(lines).toContain("TASK/stdout: Exit status 143");
  });
  test("cancel: SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await runStep(run({ path: "/bin/sh", args: ["-c", "trap '' TERM; sleep 30"] }), ctx(ac.signal), deps());
    expect(err?.cancelled).toBe(true);
    expect(lines).toContain("TASK/stdout: Exit status 137");
  });
  test("a process that cannot start fails with the runtime's error", async () => {
    await rt.remove(id);
    const err = await runStep(run({ path: "/bin/true" }), ctx(), deps());
    expect(err?.message).toMatch(/No such container/);
    expect(lines[0]).toMatch(/^TASK\/stderr: failed-creating-process: /);
  });
});

describe("download", () => {
  const dl = (init: MessageInitShape<typeof DownloadActionSchema>) => create(DownloadActionSchema, init);
  const read = async (path: string) => (await firstFile(await rt.getArchive(id, path)))?.data.toString();

  test("a plain file is placed at `to`, with progress lines when artifact is set", async () => {
    http.serve("/plain.txt", "plain content");
    expect(
      await downloadStep(
        dl({ from: http.url("/plain.txt"), to: "/app/conf/file.txt", artifact: "conf" }),
        ctx(),
        deps(),
      ),
    ).toBeUndefined();
    expect(await read("/app/conf/file.txt")).toBe("plain content");
    expect(lines).toEqual(["TASK/stdout: Downloading conf...", "TASK/stdout: Downloaded conf (13B)"]);
  });
  test("tar and tgz archives are extracted at `to`", async () => {
    http.serve("/a.tar", await tarball({ "x.txt": "from tar" }));
    http.serve("/a.tgz", await tarball({ "dir/y.txt": "from tgz" }, true));
    expect(await downloadStep(dl({ from: http.url("/a.tar"), to: "/t1" }), ctx(), deps())).toBeUndefined();
    expect(await downloadStep(dl({ from: http.url("/a.tgz"), to: "/t2" }), ctx(), deps())).toBeUndefined();
    expect(await read("/t1/x.txt")).toBe("from tar");
    expect(await read("/t2/dir/y.txt")).toBe("from tgz");
  });
  test("a checksum is verified", async () => {
    http.serve("/sum.txt", "summed");
    expect(
      await downloadStep(
        dl({ from: http.url("/sum.txt"), to: "/s", checksumAlgorithm: "sha256", checksumValue: sha256("summed") }),
        ctx(),
        deps(),
      ),
    ).toBeUndefined();
    const err = await downloadStep(
      dl({
        from: http.url("/sum.txt"),
        to: "/s",
        artifact: "thing",
        checksumAlgorithm: "sha256",
        checksumValue: sha256("other"),
      }),
      ctx(),
      deps(),
    );
    expect(err?.message).toBe("Downloading thing failed");
    expect(lines.some((l) => /checksum mismatch/.test(l))).toBe(true);
  });
  test("a missing URL fails with `Downloading failed`", async () => {
    expect((await downloadStep(dl({ from: http.url("/missing"), to: "/m" }), ctx(), deps()))?.message).toBe(
      "Downloading failed",
    );
  });
  test("cache_key keeps the file and revalidates it with its ETag", async () => {
    http.serve("/cached.txt", "cache me");
    const before = http.gets.length;
    await downloadStep(dl({ from: http.url("/cached.txt"), to: "/c1", cacheKey: "k1" }), ctx(), deps());
    await downloadStep(dl({ from: http.url("/cached.txt"), to: "/c2", cacheKey: "k1" }), ctx(), deps());
    expect(http.gets.slice(before).map((g) => g.status)).toEqual([200, 304]);
    expect(await read("/c2")).toBe("cache me");
    expect(await cache.size()).toBe(8);
  });
  test("a redirect into a denied range is not followed; the reason says so", async () => {
    http.serve("/secret", "etcd!");
    http.redirects.set("/to-loopback", `http://127.0.0.1:${http.port}/secret`);
    const before = http.gets.length;
    const err = await downloadStep(dl({ from: http.url("/to-loopback"), to: "/r" }), ctx(), deps());
    expect(err?.message).toMatch(/^Downloading refused by the egress policy: address 127.0.0.1 is in a range/);
    expect(http.gets.slice(before).map((g) => g.path)).toEqual(["/to-loopback"]);
  });
  test("a download larger than its limit fails naming the limit; a per-task share of the pool", async () => {
    const limited = new DownloadCache(join(cacheDir, "limited"), 1024, 2, { maxBytes: 5, perTask: 1 });
    await limited.init();
    http.serve("/big", "0123456789");
    await expect(limited.fetch(http.url("/big"))).rejects.toThrow("more than the 5 a download may have");
    http.serve("/small", "0123");
    const [a, b] = await Promise.all([
      limited.fetch(http.url("/small"), { owner: "t1" }),
      limited.fetch(http.url("/small"), { owner: "t1" }),
    ]);
    expect([a.size, b.size]).toEqual([4, 4]);
    await Promise.all([a.release(), b.release()]);
  });
  test("the cache stays within its size, dropping the least recently used", async () => {
    const small = new DownloadCache(join(cacheDir, "small"), 20);
    await small.init();
    http.serve("/ten-a", "aaaaaaaaaa");
    http.serve("/ten-b", "bbbbbbbbbb");
    http.serve("/ten-c", "cccccccccc");
    for (const [p, key] of [
      ["/ten-a", "a"],
      ["/ten-b", "b"],
      ["/ten-c", "c"],
    ]) {
      const f = await small.fetch(http.url(p), { cacheKey: key });
      await f.release();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await small.size()).toBeLessThanOrEqual(20);
  });
});

describe("upload", () => {
  const up = (init: MessageInitShape<typeof UploadActionSchema>) => create(UploadActionSchema, init);
  beforeEach(async () => {
    await runStep(run({ path: "/bin/sh", args: ["-c", "printf payload > /tmp/out.bin"] }), ctx(), deps());
    lines = [];
  });
  test("POSTs the file with its digests", async () => {
    const before = http.uploads.length;
    expect(await uploadStep(up({ from: "/tmp/out.bin", to: http.url("/up/1") }), ctx(), deps())).toBeUndefined();
    const u = http.uploads[before];
    expect(u.path).toBe("/up/1");
    expect(u.body.toString()).toBe("payload");
    expect(u.headers["content-type"]).toBe("application/octet-stream");
    expect(u.headers["content-md5"]).toBe(createHash("md5").update("payload").digest("base64"));
    expect(u.headers["content-digest"]).toMatch(/^sha-256=:.+=:$/);
  });
  test("retries failures, 3 attempts in all", async () => {
    http.uploadStatuses = [500, 503];
    const before = http.uploads.length;
    expect(await uploadStep(up({ from: "/tmp/out.bin", to: http.url("/up/2") }), ctx(), deps())).toBeUndefined();
    expect(http.uploads.length - before).toBe(3);
    http.uploadStatuses = [500, 500, 500];
    const err = await uploadStep(
      up({ from: "/tmp/out.bin", to: http.url("/up/3"), artifact: "droplet" }),
      ctx(),
      deps(),
    );
    expect(err?.message).toBe("Failed to upload payload for droplet");
  });
  test("an upload to a denied address is refused and nothing is sent; one over its size limit fails", async () => {
    const before = http.uploads.length;
    const refused = await uploadStep(
      up({ from: "/tmp/out.bin", to: `http://127.0.0.1:${http.port}/v3/kv/put` }),
      ctx(),
      deps(),
    );
    expect(refused?.message).toMatch(/^Upload refused by the egress policy: address 127.0.0.1/);
    const big = await uploadStep(up({ from: "/tmp/out.bin", to: http.url("/up/5") }), ctx(), {
      ...deps(),
      uploadMaxBytes: 3,
    });
    expect(big?.message).toBe("the file is larger than the 3 bytes an upload may send");
    expect(http.uploads.length).toBe(before);
  });
  test("a file that is not there fails", async () => {
    expect((await uploadStep(up({ from: "/tmp/none", to: http.url("/up/4") }), ctx(), deps()))?.message).toBe(
      "Failed to establish stream from container",
    );
  });
});
