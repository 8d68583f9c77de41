import { transition } from "@diego/models";
import { EventHub } from "../src/events/event-hub.js";
import { MemoryTaskStore } from "../src/store/memory-task-store.js";
import { taskRequest } from "./support/tasks.js";

test("a subscriber that falls behind its buffer is cut off; the others go on", async () => {
  const store = new MemoryTaskStore();
  const hub = new EventHub(store, 5);
  hub.start();
  const slow = hub.subscribe("");
  const fast = hub.subscribe("");
  const seen: string[] = [];
  const reading = (async () => {
    for await (const ev of fast) {
      if (ev.event?.case === "created") seen.push(ev.event.value.task!.taskGuid!);
      if (seen.length === 20) break;
    }
  })();
  for (let i = 0; i < 20; i++) {
    const req = taskRequest({ taskGuid: `hub-${i}` });
    await store.apply(req.taskGuid, (c) => transition("desire", "client", c, { request: req }, 1n));
  }
  await reading;
  expect(seen).toHaveLength(20);
  const err = await (async () => {
    for await (const _ of slow) void _;
  })().catch((e: { code: string }) => e.code);
  expect(err).toBe("RESOURCE_EXHAUSTED");
  expect(hub.size).toBe(0);
  hub.stop();
});

test("a domain filter passes only that domain", async () => {
  const store = new MemoryTaskStore();
  const hub = new EventHub(store, 100);
  hub.start();
  const sub = hub.subscribe("mine");
  for (const domain of ["other", "mine", "other", "mine"]) {
    const req = taskRequest({ domain });
    await store.apply(req.taskGuid, (c) => transition("desire", "client", c, { request: req }, 1n));
  }
  const domains: string[] = [];
  for await (const ev of sub) {
    if (ev.event?.case === "created") domains.push(ev.event.value.task!.domain!);
    if (domains.length === 2) break;
  }
  expect(domains).toEqual(["mine", "mine"]);
  hub.stop();
});
