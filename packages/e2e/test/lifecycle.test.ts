import { TaskState, type TaskEvent } from "@diego/proto";
import {
  Cluster,
  containersOf,
  eventually,
  fixtureTask,
  HttpReceiver,
  uniqueGuid,
  waitForState,
} from "../src/index.js";

// Against the live cluster: cancel of a running task, completion callbacks, the watch stream.
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start();
}, 180_000);

afterAll(() => cluster?.stop());

const sleeper = (guid: string, extra: Record<string, never> | Record<string, unknown> = {}) =>
  fixtureTask("hello.json", guid, { action: { run: { path: "/bin/sleep", args: ["300"] } }, ...(extra as object) });

test("cancel of a running task: COMPLETED with the reason, container gone", async () => {
  const guid = uniqueGuid("cancel");
  await cluster.tasks.desireTask(sleeper(guid));
  await waitForState(cluster.tasks, guid, [TaskState.RUNNING]);
  expect((await containersOf(guid)).length).toBeGreaterThan(0);
  await cluster.tasks.cancelTask({ taskGuid: guid });
  const task = await cluster.tasks.getTask({ taskGuid: guid });
  expect(task).toMatchObject({ state: TaskState.COMPLETED, failed: true, failureReason: "task was cancelled" });
  await eventually("the cancelled container to be gone", async () => (await containersOf(guid)).length === 0, 60_000);
  await expect(cluster.tasks.cancelTask({ taskGuid: guid })).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  await expect(cluster.tasks.cancelTask({ taskGuid: "no-such" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
});

test("a completion callback gets the whole task as JSON, 503 is retried, then the task is deleted", async () => {
  const receiver = await new HttpReceiver((_req, i) => ({ status: i === 0 ? 503 : 200 })).listen();
  try {
    const guid = uniqueGuid("callback");
    await cluster.tasks.desireTask(fixtureTask("hello.json", guid, { completion_callback_url: receiver.url("/done") }));
    await eventually("two callback attempts", () => receiver.requests.length >= 2, 120_000);
    const [first, second] = receiver.requests;
    expect(first.method).toBe("POST");
    expect(first.url).toBe("/done");
    expect(first.headers["content-type"]).toMatch(/^application\/json/);
    expect(second.body.toString()).toBe(first.body.toString());
    const text = second.body.toString();
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toMatchObject({
      task_guid: guid,
      domain: "demo",
      failed: false,
      result: "42",
      annotation: "first task",
      cell_id: expect.any(String),
    });
    expect(["COMPLETED", "RESOLVING"]).toContain(body.state);
    expect(text).toMatch(/"created_at":\d{19}[,}]/);
    expect(text).not.toContain("image_password");
    await eventually(
      "the task to be deleted after delivery",
      async () => {
        const err = await cluster.tasks.getTask({ taskGuid: guid }).then(
          () => undefined,
          (e: { code: string }) => e,
        );
        return err?.code === "NOT_FOUND";
      },
      60_000,
    );
    expect(receiver.requests).toHaveLength(2);
  } finally {
    await receiver.close();
  }
});

test("the watch stream shows a task created, each change and removed", async () => {
  const domain = uniqueGuid("watched");
  const guid = uniqueGuid("watch");
  const controller = new AbortController();
  const events: TaskEvent[] = [];
  const watching = (async () => {
    for await (const ev of cluster.tasks.watchTasks({ domain }, { signal: controller.signal })) events.push(ev);
  })().catch(() => undefined);
  // Another domain's task must not show up.
  const other = uniqueGuid("other");
  await new Promise((r) => setTimeout(r, 500));
  await cluster.tasks.desireTask(fixtureTask("hello.json", other));
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid, { domain }));
  await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
  await eventually("the removed event", () => events.some((e) => e.event.case === "removed"), 30_000);
  controller.abort();
  await watching;
  const kinds = events.map((e) => e.event.case).filter((k) => k !== "live");
  expect(kinds[0]).toBe("created");
  expect(kinds[kinds.length - 1]).toBe("removed");
  const afterStates = events.flatMap((e) => (e.event.case === "changed" ? [e.event.value.after!.state] : []));
  for (const s of [TaskState.CLAIMED, TaskState.RUNNING, TaskState.COMPLETED, TaskState.RESOLVING])
    expect(afterStates).toContain(s);
  for (const e of events) {
    if (e.event.case === "live") continue;
    const t = e.event.case === "changed" ? e.event.value.after : e.event.value?.task;
    expect(t?.domain).toBe(domain);
  }
  await waitForState(cluster.tasks, other, [TaskState.COMPLETED]);
  await cluster.tasks.resolvingTask({ taskGuid: other });
  await cluster.tasks.deleteTask({ taskGuid: other });
});
