import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { transition } from "@diego/models";
import {
  EnvironmentVariableSchema,
  TaskEventSchema,
  TaskSchema,
  TaskState,
  type TaskCreateRequest,
  type TaskEvent,
} from "@diego/proto";
import { encodeEvent, EventHub, type Subscription } from "../src/events/event-hub.js";
import { MemoryTaskStore } from "../src/store/memory-task-store.js";
import { LazyTaskChange } from "../src/store/task-change.js";
import { bytesCarrySecrets, encodeTask } from "../src/store/task-entry.js";
import type { TaskChange } from "../src/store/task-store.js";
import { taskRequest } from "./support/tasks.js";

const all = { domain: "", labels: {} };

/** What a client receives: the hub's encoded-once events, decoded. */
const wire = (ev: TaskEvent) => fromBinary(TaskEventSchema, toBinary(TaskEventSchema, ev));

async function desire(store: MemoryTaskStore, overrides: Partial<TaskCreateRequest> = {}) {
  const req = taskRequest(overrides);
  await store.apply(req.taskGuid, (c) => transition("desire", "client", c, { request: req }, 1n));
  return req.taskGuid;
}

/** Reads `n` events after the live marker (which it returns first). */
async function take(sub: Subscription, n: number): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for await (const ev of sub) {
    out.push(wire(ev));
    if (out.length === n + 1) break;
  }
  return out;
}

const guidOf = (ev: TaskEvent) =>
  ev.event.case === "created" || ev.event.case === "removed"
    ? ev.event.value.task!.taskGuid
    : ev.event.case === "changed"
      ? ev.event.value.after!.taskGuid
      : "(live)";

function started(limits: ConstructorParameters<typeof EventHub>[1] = {}) {
  const store = new MemoryTaskStore();
  const hub = new EventHub(store, limits);
  hub.start();
  return { store, hub };
}

test("the first message is the live marker; every event carries a resume_token", async () => {
  const { store, hub } = started();
  const sub = hub.subscribe(all);
  const g = await desire(store);
  const [live, created] = await take(sub, 1);
  expect(live.event.case).toBe("live");
  expect(live.resumeToken).not.toBe("");
  expect(created.event.case).toBe("created");
  expect(guidOf(created)).toBe(g);
  expect(created.resumeToken).not.toBe(live.resumeToken);
  hub.stop();
});

test("a subscriber that falls behind its buffer is cut off; the others go on", async () => {
  const { store, hub } = started({ bufferSize: 5 });
  const slow = hub.subscribe(all);
  const fast = hub.subscribe(all);
  const reading = take(fast, 20);
  for (let i = 0; i < 20; i++) await desire(store, { taskGuid: `hub-${i}` });
  expect((await reading).slice(1).map(guidOf)).toHaveLength(20);
  const err = await (async () => {
    for await (const _ of slow) void _;
  })().catch((e: { code: string }) => e.code);
  expect(err).toBe("RESOURCE_EXHAUSTED");
  expect(hub.size).toBe(0);
  hub.stop();
});

test("a subscriber is cut off by bytes too, not only by count", async () => {
  const { store, hub } = started({ bufferSize: 1000, bufferBytes: 20_000 });
  const slow = hub.subscribe(all);
  for (let i = 0; i < 5; i++) await desire(store, { annotation: "x".repeat(8_000) });
  const err = await take(slow, 5).catch((e: { code: string; message: string }) => e);
  expect(err).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
  expect((err as { message: string }).message).toContain("20000 bytes");
  hub.stop();
});

test("domain and labels selectors pass only what matches (every label pair)", async () => {
  const { store, hub } = started();
  const byDomain = hub.subscribe({ domain: "mine", labels: {} });
  const byLabels = hub.subscribe({ domain: "", labels: { team: "a", env: "prod" } });
  await desire(store, { domain: "other", taskGuid: "o1" });
  await desire(store, { domain: "mine", taskGuid: "m1" });
  await desire(store, { domain: "other", taskGuid: "l1", labels: { team: "a", env: "prod", x: "y" } });
  await desire(store, { domain: "other", taskGuid: "l2", labels: { team: "a" } });
  await desire(store, { domain: "mine", taskGuid: "m2", labels: { team: "a", env: "prod" } });
  expect((await take(byDomain, 2)).slice(1).map(guidOf)).toEqual(["m1", "m2"]);
  expect((await take(byLabels, 2)).slice(1).map(guidOf)).toEqual(["l1", "m2"]);
  hub.stop();
});

test("resuming after an event's token replays what followed it: nothing missed, nothing repeated", async () => {
  const { store, hub } = started();
  const first = hub.subscribe(all);
  for (let i = 0; i < 3; i++) await desire(store, { taskGuid: `r-${i}` });
  const seen = await take(first, 2); // cut after r-1
  for (let i = 3; i < 6; i++) await desire(store, { taskGuid: `r-${i}` });
  const resumed = hub.subscribe(all, "", seen[2].resumeToken);
  const rest = await take(resumed, 4);
  expect(rest[0].event.case).toBe("live");
  expect(rest.slice(1).map(guidOf)).toEqual(["r-2", "r-3", "r-4", "r-5"]);
  // The live marker's token resumes from now.
  const fromLive = hub.subscribe(all, "", rest[0].resumeToken);
  await desire(store, { taskGuid: "r-6" });
  expect((await take(fromLive, 1)).slice(1).map(guidOf)).toEqual(["r-6"]);
  hub.stop();
});

test("a token older than what is kept is OUT_OF_RANGE; a foreign one INVALID_ARGUMENT or OUT_OF_RANGE", async () => {
  const { store, hub } = started({ historySize: 3 });
  const sub = hub.subscribe(all);
  for (let i = 0; i < 6; i++) await desire(store);
  const events = await take(sub, 6);
  expect(() => hub.subscribe(all, "", events[1].resumeToken)).toThrow(
    expect.objectContaining({ code: "OUT_OF_RANGE" }),
  );
  expect(() => hub.subscribe(all, "", events[3].resumeToken)).not.toThrow();
  expect(() => hub.subscribe(all, "", "nonsense")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  expect(() => hub.subscribe(all, "", "mem-000000000000.1.0")).toThrow(
    expect.objectContaining({ code: "OUT_OF_RANGE" }),
  );
  hub.stop();
});

test("the kept history stays the last historySize events as thousands are dropped", async () => {
  const { store, hub } = started({ historySize: 5 });
  const sub = hub.subscribe(all);
  const reading = take(sub, 3_000);
  for (let i = 0; i < 3_000; i++) await desire(store, { taskGuid: `h-${i}` });
  const events = await reading;
  expect(() => hub.subscribe(all, "", events[2_994].resumeToken)).toThrow(
    expect.objectContaining({ code: "OUT_OF_RANGE" }),
  );
  const resumed = hub.subscribe(all, "", events[2_995].resumeToken);
  expect((await take(resumed, 5)).slice(1).map(guidOf)).toEqual(["h-2995", "h-2996", "h-2997", "h-2998", "h-2999"]);
  hub.stop();
});

test("one caller may hold only so many streams; closing one frees its place", () => {
  const { hub } = started({ maxWatchersPerCaller: 2 });
  const a = hub.subscribe(all, "me");
  hub.subscribe(all, "me");
  expect(() => hub.subscribe(all, "me")).toThrow(expect.objectContaining({ code: "RESOURCE_EXHAUSTED" }));
  hub.subscribe(all, "someone-else");
  a.close();
  expect(() => hub.subscribe(all, "me")).not.toThrow();
  hub.stop();
});

describe("events encoded from the stored bytes", () => {
  const plain = create(TaskSchema, { taskGuid: "p", domain: "d", state: TaskState.RUNNING, labels: { a: "b" } });
  const secret = create(TaskSchema, {
    taskGuid: "s",
    domain: "d",
    imagePassword: "hunter2",
    secretEnv: [{ name: "TOKEN", value: "x" }],
  });
  /** The same change without its stored bytes: the hub decodes, redacts and encodes its tasks. */
  const decodedOnly = (c: LazyTaskChange): TaskChange => ({
    kind: c.kind,
    guid: c.guid,
    domain: c.domain,
    revision: c.revision,
    before: () => c.before(),
    after: () => c.after(),
  });

  test.each([
    { what: "created", change: () => new LazyTaskChange("created", "p", 1, undefined, encodeTask(plain)) },
    {
      what: "changed",
      change: () =>
        new LazyTaskChange("changed", "p", 2, encodeTask(plain), encodeTask({ ...plain, state: TaskState.COMPLETED })),
    },
    { what: "removed", change: () => new LazyTaskChange("removed", "p", 3, encodeTask(plain), undefined) },
    {
      what: "changed with secrets",
      change: () => new LazyTaskChange("changed", "s", 4, encodeTask(secret), encodeTask({ ...secret, result: "r" })),
    },
    {
      what: "created with secrets",
      change: () => new LazyTaskChange("created", "s", 5, undefined, encodeTask(secret)),
    },
  ])("$what: the same event as decoding and encoding the tasks, never with a secret", ({ change }) => {
    const fast = toBinary(TaskEventSchema, encodeEvent(change(), "t"));
    const slow = toBinary(TaskEventSchema, encodeEvent(decodedOnly(change()), "t"));
    expect(Buffer.from(fast)).toEqual(Buffer.from(slow));
    const event = fromBinary(TaskEventSchema, fast);
    const text = JSON.stringify(toJson(TaskEventSchema, event));
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("TOKEN");
  });

  test.each([
    { task: plain, secret: false },
    { task: { ...plain, imagePassword: "pw" }, secret: true },
    { task: { ...plain, secretEnv: [create(EnvironmentVariableSchema, { name: "A", value: "1" })] }, secret: true },
  ])("bytesCarrySecrets is $secret", ({ task, secret }) => {
    expect(bytesCarrySecrets(encodeTask(task))).toBe(secret);
  });

  test("bytes that do not parse count as carrying secrets", () => {
    expect(bytesCarrySecrets(Uint8Array.of(0x0a, 0x7f))).toBe(true);
  });
});
