// The output files' pure parts: the wrapper argv, the key read back from an exec's arguments, and how
// far output was delivered in whole lines (docs/reliability.md, "Output files").
import { MAX_LINE_BYTES } from "../src/logs/line-splitter.js";
import {
  heldArgv,
  mainProcessId,
  outputKeyOf,
  outputPaths,
  parseMainProcessId,
  statusPath,
  wrappedArgv,
} from "../src/runtime/output-files.js";
import { LineOffset } from "../src/runtime/output-offsets.js";

const KEY = "0123456789abcdef01234567";

test("the wrapper appends both streams to the key's files, marks it on the exec's stdout, then execs the program itself", () => {
  const argv = wrappedArgv("/.diego/busybox", ["/bin/echo", "a b"], 0, KEY);
  expect(argv).toEqual(["/.diego/busybox", "sh", "-c", expect.any(String), KEY, "/bin/echo", "a b"]);
  expect(argv[3]).toMatch(
    new RegExp(
      `^exec 9>&1 >>/\\.diego-output/${KEY}\\.out 2>>/\\.diego-output/${KEY}\\.err && \\{ trap '' PIPE; printf \\+ >&9 `,
    ),
  );
  expect(argv[3]).toMatch(/ exec "\$@"$/);
  expect(wrappedArgv("/h", ["x"], 512, KEY)[3]).toMatch(/^ulimit -n 512 && exec 9>&1 >>/);
  expect(outputPaths(KEY)).toEqual({ stdout: `/.diego-output/${KEY}.out`, stderr: `/.diego-output/${KEY}.err` });
});

test.each([
  ["the wrapper's own", wrappedArgv("/h", ["x"], 0, KEY).slice(1), KEY],
  ["with nofile", wrappedArgv("/h", ["x"], 9, KEY).slice(1), KEY],
  ["a plain exec", ["-c", "echo"], undefined],
  ["a shell script of the task", ["sh", "-c", "echo hi", KEY], undefined],
  ["no arguments", undefined, undefined],
])("outputKeyOf: %s", (_, args, key) => {
  expect(outputKeyOf(args)).toBe(key);
});

test.each([
  ["nothing", [], 0],
  ["a whole line", ["ab\n"], 3],
  ["a partial line after a whole one", ["ab\ncd"], 3],
  ["a line finished in a later chunk", ["ab\ncd", "e\nf"], 7],
  ["an empty line", ["\n"], 1],
])("LineOffset: %s", (_, chunks, at) => {
  const o = new LineOffset(10);
  for (const c of chunks as string[]) o.advance(Buffer.from(c));
  expect(o.value).toBe(10 + (at as number));
});

test("LineOffset counts a long line's full pieces, as LineSplitter cuts them", () => {
  const o = new LineOffset();
  o.advance(Buffer.from("x\n"));
  o.advance(Buffer.alloc(MAX_LINE_BYTES * 2 + 5, 65));
  expect(o.value).toBe(2 + MAX_LINE_BYTES * 2);
  expect(o.total).toBe(2 + MAX_LINE_BYTES * 2 + 5);
});

test("a process the main process starts stops itself before the program, under its nofile", () => {
  const argv = heldArgv("/h", ["/bin/echo", "a b"], 64, KEY);
  expect(argv).toEqual(["/h", "sh", "-c", expect.any(String), KEY, "/bin/echo", "a b"]);
  expect(argv[3]).toMatch(/^ulimit -n 64 && kill -STOP \$\$ && /);
  expect(argv[3]).toMatch(/ exec "\$@"$/);
  expect(heldArgv("/h", ["x"], 0, KEY)[3]).toMatch(/^kill -STOP \$\$ && /);
  expect(statusPath(KEY)).toBe(`/.diego-output/${KEY}.status`);
});

test.each([
  ["its own", mainProcessId(KEY, 42), { key: KEY, pid: 42 }],
  ["an exec id", "0123456789abcdef".repeat(4), undefined],
  ["a bad key", `main:xyz:42`, undefined],
  ["no pid", `main:${KEY}:`, undefined],
  ["pid 0", `main:${KEY}:0`, undefined],
  ["something after", `main:${KEY}:42:1`, undefined],
])("parseMainProcessId: %s", (_, id, want) => {
  expect(parseMainProcessId(id)).toEqual(want);
});
