import { SendBudget } from "../src/grpc/send-budget.js";

// The server streams' send budget: first come, first served within the capacity; a message larger than
// the budget goes alone; writes unsent for long stop counting; an abort stops a wait.
const never = new AbortController().signal;

test("writes within the capacity go at once; the next waits for a release, in order", async () => {
  const budget = new SendBudget(100, 60_000);
  const a = await budget.acquire(60, never);
  const b = await budget.acquire(40, never);
  expect(budget.inFlight).toBe(100);
  const order: string[] = [];
  const c = budget.acquire(50, never).then((r) => (order.push("c"), r));
  const d = budget.acquire(10, never).then((r) => (order.push("d"), r));
  await new Promise((r) => setImmediate(r));
  expect(order).toEqual([]); // d fits but waits behind c: no overtaking
  a();
  await Promise.all([c, d]);
  expect(order).toEqual(["c", "d"]);
  expect(budget.inFlight).toBe(100);
  b();
  (await c)();
  (await d)();
  expect(budget.inFlight).toBe(0);
});

test("a message larger than the whole budget goes when nothing else is in flight", async () => {
  const budget = new SendBudget(10, 60_000);
  const big = await budget.acquire(1_000, never);
  expect(budget.inFlight).toBe(1_000);
  big();
  big(); // a second release changes nothing
  expect(budget.inFlight).toBe(0);
});

test("a write unsent after the park time stops counting, so idle readers cannot starve the rest", async () => {
  const budget = new SendBudget(100, 50);
  await budget.acquire(100, never); // a reader that never reads: never released
  const next = budget.acquire(100, never);
  await expect(next).resolves.toBeInstanceOf(Function);
});

test("an abort ends the wait without taking room", async () => {
  const budget = new SendBudget(10, 60_000);
  const held = await budget.acquire(10, never);
  const abort = new AbortController();
  const waiting = budget.acquire(5, abort.signal);
  abort.abort();
  (await waiting)();
  expect(budget.inFlight).toBe(10);
  held();
  expect(budget.inFlight).toBe(0);
});
