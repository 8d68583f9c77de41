import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { TaskState } from "@diego/proto";
import { buildImages, eventually, fixtureTask, ImageCluster, uniqueGuid, waitForState } from "../src/index.js";

// The project's image, built here from Debian's repositories (scripts/build-image), runs the whole
// control plane: etcd, the BBS and the auctioneer as containers configured by environment, and a
// cell from the same image with the engine's socket; a task completes through them
// (docs/deployment.md).
const run = promisify(execFile);
const tag = "latest";
let cluster: ImageCluster;

beforeAll(async () => {
  await buildImages(tag);
  cluster = await ImageCluster.start(`diego:${tag}`);
}, 900_000);

afterAll(async () => {
  await cluster?.stop();
}, 120_000);

test("the image is small, runs the BBS and auctioneer as a non-root user, and names its commands", async () => {
  const inspect = JSON.parse((await run("docker", ["image", "inspect", `diego:${tag}`])).stdout)[0];
  expect(inspect.Config.User).toBe("10001:10001");
  expect(inspect.Size).toBeLessThan(400 * 1024 * 1024);
  const help = await run("docker", ["run", "--rm", `diego:${tag}`, "help"]);
  expect(help.stdout).toMatch(/bbs/);
  for (const role of ["bbs", "auctioneer", "etcd"]) {
    const user = (
      await run("docker", ["inspect", "--format", "{{.Config.User}}", `${cluster.name}-${role}`])
    ).stdout.trim();
    expect(user === "" || user === "10001:10001").toBe(true);
    const ro = (
      await run("docker", ["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", `${cluster.name}-${role}`])
    ).stdout.trim();
    expect(ro).toBe("true");
  }
  const engine = JSON.parse((await run("docker", ["image", "inspect", `diego-engine:${tag}`])).stdout)[0];
  expect(engine.Config.Entrypoint).toEqual(["/usr/local/bin/diego-engine"]);
});

test("a task desired through the containerised BBS runs on the containerised cell and completes with its result", async () => {
  await eventually("the cell to be listed", async () =>
    (await cluster.cells.listCells({})).cells.some((c) => c.cellId === cluster.cellId),
  );
  const guid = uniqueGuid("image");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await cluster.logs()}`);
  });
  expect(task).toMatchObject({ failed: false, result: "42", cellId: cluster.cellId });
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
});
