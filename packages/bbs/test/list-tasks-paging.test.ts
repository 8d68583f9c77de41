import { toBinary } from "@bufbuild/protobuf";
import { createClient, type ServiceClient } from "@diego/kit";
import { DiegoError, LIMITS } from "@diego/models";
import { ListTasksResponseSchema, TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { connect, etcdUrl, silent, uniquePrefix, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

// ListTasks pages against a BBS on the real etcd: guid order, every filter combined, bounded bytes, and
// a page_token that outlives the BBS instance that issued it.

type Tasks = ServiceClient<(typeof TaskService)["method"]>;
type ListRequest = Parameters<Tasks["listTasks"]>[0];

let etcd: EtcdConnection;
let prefix: string;
let bbs: RunningBbs;
let tasks: Tasks;
const config = () => ({
  etcdEndpoints: [etcdUrl()],
  etcdPrefix: prefix,
  listenAddress: "127.0.0.1:0",
  statusAddress: "127.0.0.1:0",
});

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("paging");
  bbs = await startBbs(config(), { logger: silent });
  tasks = createClient(TaskService, bbs.address);
});

afterAll(async () => {
  tasks.close();
  await bbs.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

/** Every page of the query, following next_page_token. */
async function allPages(client: Tasks, req: ListRequest) {
  const pages: string[][] = [];
  let pageToken = "";
  for (;;) {
    const res = await client.listTasks({ ...req, pageToken });
    pages.push(res.tasks.map((t) => t.taskGuid));
    if (!res.nextPageToken) return pages;
    pageToken = res.nextPageToken;
  }
}

const ofThisRun = (guids: string[]) => guids.filter((g) => g.startsWith(`task-${process.pid}-`));

test("pages come in guid order, every task once, and the labels selector combines with domain and state", async () => {
  const desired: { guid: string; team: string }[] = [];
  for (let i = 0; i < 30; i++) {
    const team = i % 3 === 0 ? "red" : "blue";
    const req = taskRequest({ domain: "paged", labels: { team, n: String(i) } });
    await tasks.desireTask(req);
    desired.push({ guid: req.taskGuid, team });
  }
  for (let i = 0; i < 4; i++) await tasks.desireTask(taskRequest({ domain: "other", labels: { team: "red" } }));
  const lifecycle = createClient(TaskLifecycleService, bbs.address);
  const claimed = desired.filter((d) => d.team === "red").slice(0, 3);
  for (const d of claimed) await lifecycle.startTask({ taskGuid: d.guid, cellId: "cell-1" });
  lifecycle.close();

  const sorted = (ds: { guid: string }[]) => ds.map((d) => d.guid).sort();
  const pages = await allPages(tasks, { domain: "paged", pageSize: 4 });
  expect(pages.flat()).toEqual(sorted(desired));
  expect(pages).toHaveLength(Math.ceil(30 / 4));
  expect(pages.slice(0, -1).every((p) => p.length === 4)).toBe(true);

  const red = (await allPages(tasks, { domain: "paged", labels: { team: "red" }, pageSize: 3 })).flat();
  expect(red).toEqual(sorted(desired.filter((d) => d.team === "red")));
  const redAnywhere = ofThisRun((await allPages(tasks, { labels: { team: "red" }, pageSize: 5 })).flat());
  expect(redAnywhere).toHaveLength(red.length + 4);
  const redClaimed = await allPages(tasks, {
    domain: "paged",
    labels: { team: "red" },
    state: TaskState.CLAIMED,
    cellId: "cell-1",
    pageSize: 2,
  });
  expect(redClaimed.flat()).toEqual(sorted(claimed));
  const one = await tasks.listTasks({ domain: "paged", labels: { team: "red", n: "3" } });
  expect(one.tasks.map((t) => t.labels)).toEqual([{ team: "red", n: "3" }]);
  expect(one.nextPageToken).toBe("");

  // Without page_size: the default page holds them all here, and the list ends at once.
  const whole = await tasks.listTasks({ domain: "paged" });
  expect(whole.tasks).toHaveLength(30);
  expect(whole.nextPageToken).toBe("");
});

test("a page_token goes on after its guid on another BBS instance; tasks removed meanwhile are not listed", async () => {
  const guids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const req = taskRequest({ domain: "resumed-list" });
    await tasks.desireTask(req);
    guids.push(req.taskGuid);
  }
  guids.sort();
  const first = await tasks.listTasks({ domain: "resumed-list", pageSize: 2 });
  expect(first.tasks.map((t) => t.taskGuid)).toEqual(guids.slice(0, 2));

  const other = await startBbs(config(), { logger: silent });
  const otherTasks = createClient(TaskService, other.address);
  try {
    await otherTasks.cancelTask({ taskGuid: guids[2] });
    await otherTasks.resolvingTask({ taskGuid: guids[2] });
    await otherTasks.deleteTask({ taskGuid: guids[2] });
    const second = await otherTasks.listTasks({ domain: "resumed-list", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.tasks.map((t) => t.taskGuid)).toEqual(guids.slice(3, 5));
  } finally {
    otherTasks.close();
    await other.stop();
  }
});

test("a page stays within the byte budget and still lists every task", async () => {
  const big = "x".repeat(60 * 1024);
  const count = Math.ceil((LIMITS.listPageBytes * 1.5) / big.length);
  for (let i = 0; i < count; i++)
    await tasks.desireTask(taskRequest({ domain: "big", env: [{ name: "BIG", value: big }] }));
  const first = await tasks.listTasks({ domain: "big", pageSize: LIMITS.listPageSizeMax });
  expect(first.tasks.length).toBeGreaterThan(0);
  expect(first.tasks.length).toBeLessThan(count);
  expect(first.nextPageToken).not.toBe("");
  const tasksBytes = toBinary(ListTasksResponseSchema, { ...first, nextPageToken: "" }).length;
  expect(tasksBytes).toBeLessThanOrEqual(LIMITS.listPageBytes);
  const pages = await allPages(tasks, { domain: "big", pageSize: LIMITS.listPageSizeMax });
  expect(new Set(pages.flat()).size).toBe(count);
});

test("a bad page_size or page_token is INVALID_ARGUMENT naming the field and the limit", async () => {
  const violations = (req: ListRequest) =>
    tasks.listTasks(req).then(
      () => [],
      (err: DiegoError) => {
        expect(err.code).toBe("INVALID_ARGUMENT");
        return err.violations.map((v) => `${v.field}: ${v.message}`);
      },
    );
  expect(await violations({ pageSize: LIMITS.listPageSizeMax + 1 })).toEqual([
    `page_size: must be at most ${LIMITS.listPageSizeMax}`,
  ]);
  expect(await violations({ pageSize: -5 })).toEqual([expect.stringMatching(/^page_size: must be >= 0/)]);
  expect(await violations({ pageToken: "not-a-token" })).toEqual([
    "page_token: is not a next_page_token this BBS issued; start again with none",
  ]);
});
