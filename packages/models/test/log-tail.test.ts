import { logTailOf } from "../src/log-tail.js";

const line = (stream: "stdout" | "stderr", message: string) => ({ stream, message });

test("each stream keeps its own newest lines within the budget, in order", () => {
  const lines = [
    line("stdout", "aaaa"),
    line("stderr", "e1"),
    line("stdout", "bbbb"),
    line("stdout", "cccc"),
    line("stderr", "e2"),
  ];
  expect(logTailOf(lines, 8)).toEqual([
    line("stderr", "e1"),
    line("stdout", "bbbb"),
    line("stdout", "cccc"),
    line("stderr", "e2"),
  ]);
});

test("a line larger than what is left ends its stream's tail (no gap in the kept part)", () => {
  expect(logTailOf([line("stdout", "old"), line("stdout", "x".repeat(10)), line("stdout", "new")], 8)).toEqual([
    line("stdout", "new"),
  ]);
  expect(logTailOf([], 8)).toEqual([]);
});
