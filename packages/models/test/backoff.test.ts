import { backoffDelay } from "../src/backoff.js";

const o = { initialMs: 100, maxMs: 1_000 };

test.each([
  [1, 0, 50],
  [1, 1, 100],
  [2, 1, 200],
  [3, 0.5, 300],
  [4, 1, 800],
  [5, 1, 1_000],
  [50, 0, 500],
])("attempt %i with random %d waits %i ms", (attempt, r, want) => {
  expect(backoffDelay(attempt, o, () => r)).toBe(want);
});
