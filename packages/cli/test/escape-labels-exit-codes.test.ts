import { jsonSafe, terminalSafe } from "../src/format/escape.js";
import { parseLabelOptions } from "../src/labels-option.js";
import { runExitCodeFor, runExitCodeOf } from "../src/exit-codes.js";
import { DiegoError } from "@diego/models";

test.each([
  ["plain text", "hello, world", "", "hello, world"],
  ["unicode that is shown", "naïve ☃ 日本", "", "naïve ☃ 日本"],
  ["an ANSI colour", "\u001b[31mred\u001b[0m", "", "\\e[31mred\\e[0m"],
  ["a window-title OSC", "\u001b]0;pwned\u0007", "", "\\e]0;pwned\\x07"],
  ["a carriage return that would overwrite the line", "ok\rFAKE", "", "ok\\rFAKE"],
  ["newline and tab, escaped", "a\nb\tc", "", "a\\nb\\tc"],
  ["newline and tab, kept", "a\nb\tc", "\n\t", "a\nb\tc"],
  ["NUL, backspace, DEL", "a\u0000b\bc\u007f", "", "a\\x00b\\x08c\\x7f"],
  ["a C1 CSI", "x\u009b31m", "", "x\\x9b31m"],
  ["a bidi override (Trojan Source)", "abc\u202edcb", "", "abc\\u{202e}dcb"],
  ["a bidi isolate", "\u2066x\u2069", "", "\\u{2066}x\\u{2069}"],
  ["a line separator", "a\u2028b", "", "a\\u{2028}b"],
])("terminalSafe: %s", (_name, input, keep, expected) => {
  expect(terminalSafe(input, keep)).toBe(expected);
});

test.each([
  ["DEL and C1 inside a string", { a: "x\u007f\u009b" }],
  ["bidi controls", { a: "\u202e\u2066" }],
  ["what JSON.stringify escapes itself", { a: "\u001b[31m\n" }],
  ["nothing to do", { a: "plain", n: 1 }],
])("jsonSafe keeps the JSON value and leaves no raw control character: %s", (_name, value) => {
  const text = jsonSafe(JSON.stringify(value));
  expect(JSON.parse(text)).toEqual(value);
  // eslint-disable-next-line no-control-regex -- the point of the check
  expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
});

test.each([
  [[], undefined, ""],
  [["a=1"], { a: "1" }, ""],
  [["a=1", "b=x=y"], { a: "1", b: "x=y" }, ""],
  [["a="], { a: "" }, ""],
  [["a=1", "a=1"], { a: "1" }, ""],
  [["a"], undefined, '--label: must be key=value (got "a")'],
  [["=1"], undefined, '--label: must be key=value (got "=1")'],
  [["a=1", "a=2"], undefined, '--label: gives "a" twice, with different values'],
])("parseLabelOptions(%j)", (values, expected, error) => {
  if (error) {
    expect(() => parseLabelOptions(values)).toThrow(
      expect.objectContaining({ violations: [{ field: "--label", message: error.slice("--label: ".length) }] }),
    );
  } else expect(parseLabelOptions(values)).toEqual(expected);
});

test.each([
  ["succeeded", { failed: false, exitStatus: 0 }, false, 0],
  ["exited 3", { failed: true, exitStatus: 3 }, false, 3],
  ["exited 127 (command not found)", { failed: true, exitStatus: 127 }, false, 127],
  ["killed by SIGKILL (137)", { failed: true, exitStatus: 137 }, false, 137],
  ["exited 0 but the result was unreadable", { failed: true, exitStatus: 0 }, false, 124],
  ["no run action ran (timeout, placement, image)", { failed: true, exitStatus: undefined }, false, 124],
  ["an exit status out of range", { failed: true, exitStatus: 300 }, false, 124],
  ["cancelled by this run's Ctrl-C", { failed: true, exitStatus: 143 }, true, 130],
])("run's code for a task that %s", (_name, task, cancelled, expected) => {
  expect(runExitCodeOf(task, cancelled)).toBe(expected);
});

test.each([
  ["INVALID_ARGUMENT", 121],
  ["UNAVAILABLE", 122],
  ["DEADLINE_EXCEEDED", 122],
  ["ALREADY_EXISTS", 123],
  ["NOT_FOUND", 123],
  ["FAILED_PRECONDITION", 123],
  ["INTERNAL", 125],
  ["CANCELLED", 130],
] as const)("run's code for its own error %s is %d", (code, expected) => {
  expect(runExitCodeFor(new DiegoError(code, "x"))).toBe(expected);
});
