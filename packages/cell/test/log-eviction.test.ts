import { planEviction, type LogUsage } from "../src/logs/log-eviction.js";

const done = (taskGuid: string, bytes: number, endedSeq: number): LogUsage => ({
  taskGuid,
  bytes,
  ended: true,
  endedSeq,
});
const live = (taskGuid: string, bytes: number): LogUsage => ({ taskGuid, bytes, ended: false, endedSeq: 0 });

test.each<[string, LogUsage[], number, string[], Record<string, number>]>([
  ["under the budget: nothing goes", [done("a", 10, 1), live("b", 10)], 20, [], {}],
  ["the oldest finished log goes first", [done("new", 10, 2), done("old", 10, 1), live("r", 10)], 25, ["old"], {}],
  [
    "finished logs go, oldest first, until it fits",
    [done("b", 10, 2), done("a", 10, 1), live("r", 10)],
    10,
    ["a", "b"],
    {},
  ],
  ["finished logs go before any running one is cut", [done("f", 1, 1), live("r", 100)], 99, ["f"], { r: 1 }],
  ["then the biggest running log is cut towards the next", [live("big", 100), live("small", 10)], 60, [], { big: 50 }],
  ["logs at the same size are cut together", [live("a", 50), live("b", 50), live("c", 10)], 70, [], { a: 20, b: 20 }],
  ["cut past the next size: both shrink", [live("a", 30), live("b", 20)], 30, [], { a: 15, b: 5 }],
  ["a log with no bytes is left alone", [live("empty", 0), live("r", 20)], 10, [], { r: 10 }],
])("%s", (_name, logs, budget, evict, trim) => {
  const plan = planEviction(logs, budget);
  expect(plan.evict).toEqual(evict);
  expect(Object.fromEntries(plan.trim)).toEqual(trim);
});
