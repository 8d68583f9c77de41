import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, configTemplate, loadConfig, setting } from "../src/config.js";

const spec = {
  listenAddress: setting("string", "gRPC listen address", { default: "127.0.0.1:8889" }),
  workers: setting("integer", "worker count", { default: 4, check: z.number().int().min(1) }),
  kickTaskDuration: setting("duration", "kick after", { default: 30_000 }),
  verbose: setting("boolean", "talk more", { default: false }),
  stacks: setting("list", "stacks", { default: ["linux"] }),
  preloaded: setting("map", "preloaded images", { default: {} as Record<string, string> }),
  cellId: setting("string", "cell id"),
  caFile: setting("string", "CA file", { optional: true }),
};
const base = { envPrefix: "DIEGO_TEST", program: "test", summary: "a test", env: {} };

function load(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const result = loadConfig(spec, { ...base, argv, env });
  if ("help" in result) throw new Error("unexpected help");
  return result.config;
}

test("defaults, flags, env and types", () => {
  const config = load(
    [
      "--cell-id",
      "c1",
      "--kick-task-duration",
      "1m30s",
      "--verbose",
      "--stacks",
      "a,b",
      "--preloaded",
      "busybox=diego/busybox:latest",
    ],
    {
      DIEGO_TEST_WORKERS: "8",
    },
  );
  expect(config).toEqual({
    listenAddress: "127.0.0.1:8889",
    workers: 8,
    kickTaskDuration: 90_000,
    verbose: true,
    stacks: ["a", "b"],
    preloaded: { busybox: "diego/busybox:latest" },
    cellId: "c1",
    caFile: undefined,
  });
});

test("flags win over env, env over the file", () => {
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  const file = join(dir, "c.json");
  writeFileSync(file, JSON.stringify({ workers: 2, listenAddress: "0.0.0.0:1", cellId: "from-file" }));
  const config = load(["--config", file, "--workers", "3"], { DIEGO_TEST_LISTEN_ADDRESS: "1.2.3.4:5" });
  expect(config).toMatchObject({ workers: 3, listenAddress: "1.2.3.4:5", cellId: "from-file" });
});

test("errors name the setting", () => {
  expect(() => load(["--cell-id", "c", "--workers", "zero"])).toThrow(/--workers: must be an integer/);
  expect(() => load(["--cell-id", "c", "--workers", "0"])).toThrow(/--workers/);
  expect(() => load(["--cell-id", "c"], { DIEGO_TEST_KICK_TASK_DURATION: "soon" })).toThrow(
    /DIEGO_TEST_KICK_TASK_DURATION: must be a duration/,
  );
  expect(() => load([])).toThrow(/--cell-id \(DIEGO_TEST_CELL_ID\) is required/);
  expect(() => load(["--cell-id", "c", "--no-such-flag", "1"])).toThrow(ConfigError);
});

test("--help lists every setting with its env name and default", () => {
  const result = loadConfig(spec, { ...base, argv: ["--help"] });
  expect("help" in result).toBe(true);
  const help = (result as { help: string }).help;
  for (const flag of ["--listen-address", "--workers", "--kick-task-duration", "--cell-id", "--ca-file"])
    expect(help).toContain(flag);
  expect(help).toContain("DIEGO_TEST_KICK_TASK_DURATION; default 30000ms");
  expect(help).toContain("default required");
});

test("configTemplate documents every setting as JSON with comments that --config reads back", () => {
  const text = configTemplate(spec, { ...base, values: { cellId: "cell-9", workers: 7 } });
  for (const key of Object.keys(spec)) expect(text).toContain(`"${key}"`);
  expect(text).toContain("// --kick-task-duration, DIEGO_TEST_KICK_TASK_DURATION; default 30000ms");
  const dir = mkdtempSync(join(tmpdir(), "cfg-"));
  const file = join(dir, "c.json");
  writeFileSync(file, text);
  expect(load(["--config", file])).toMatchObject({ cellId: "cell-9", workers: 7, stacks: ["linux"] });
  // Every commented-out default, uncommented, loads as that default.
  writeFileSync(file, text.replace(/^ {2}\/\/ (".*)$/gm, "  $1"));
  expect(load(["--config", file])).toMatchObject({
    kickTaskDuration: 30_000,
    verbose: false,
    preloaded: {},
    listenAddress: "127.0.0.1:8889",
  });
});
