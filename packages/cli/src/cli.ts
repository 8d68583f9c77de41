import { Command, CommanderError, Option } from "commander";
import type { DiegoClient } from "@diego/client";
import { ENV, clientOptionsFrom, connect, type GlobalOptions } from "./connection.js";
import type { CommandContext } from "./context.js";
import { describeError, unwrap } from "./errors.js";
import { EXIT_CODES_HELP, ExitCode, RunExitCode, exitCodeFor, runExitCodeFor } from "./exit-codes.js";
import { jsonSafe, terminalSafe } from "./format/escape.js";
import type { CliIo } from "./io.js";
import { cellsCommand } from "./commands/cells.js";
import { desireCommand } from "./commands/desire.js";
import { getCommand } from "./commands/get.js";
import { lifecycleCommand } from "./commands/lifecycle.js";
import { listCommand, type ListOptions } from "./commands/list.js";
import { logsCommand } from "./commands/logs.js";
import { runCommand } from "./commands/run.js";
import { watchCommand, type WatchCommandOptions } from "./commands/watch.js";
import { collect } from "./labels-option.js";

const ENVIRONMENT_HELP = `Environment:
  ${ENV.bbsAddress}       BBS address host:port, or several comma-separated to fail over (default 127.0.0.1:8889); --bbs-address wins
  ${ENV.caFile}    CA certificate (PEM) for mutual TLS; --ca-file wins
  ${ENV.certFile}  client certificate (PEM); --cert-file wins
  ${ENV.keyFile}   client key (PEM); --key-file wins`;

const EXAMPLES_HELP = `Examples:
  diego run hello.json                 run a task, print its result, clean it up
  diego run hello.json --logs          the same, with the task's output as it runs
  diego desire hello.json              submit a task and return
  cat hello.json | diego desire -      the task file from standard input
  diego list --domain demo --state running --label team=red
  diego get hello-1 --json
  diego resolve hello-1 && diego delete hello-1
  diego watch --domain demo`;

/**
 * Runs the `diego` command with `argv` (without node and script) and returns its exit code. Stateless:
 * every call builds its program and its client from flags and environment and closes the client.
 */
export async function runCli(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let client: DiegoClient | undefined;
  let address = io.env[ENV.bbsAddress] || "127.0.0.1:8889";
  let tls = false;
  /** The subcommand being run (`run` has exit codes of its own). */
  let subcommand = "";

  const program = new Command("diego")
    .description("Command-line client of diego: submit, follow and manage tasks on the BBS.")
    .addOption(
      new Option(
        "--bbs-address <host:port>",
        `BBS gRPC address, or several comma-separated (env ${ENV.bbsAddress}; default 127.0.0.1:8889)`,
      ),
    )
    .addOption(new Option("--ca-file <file>", `CA certificate for mutual TLS (env ${ENV.caFile})`))
    .addOption(new Option("--cert-file <file>", `client certificate for mutual TLS (env ${ENV.certFile})`))
    .addOption(new Option("--key-file <file>", `client key for mutual TLS (env ${ENV.keyFile})`))
    .addOption(new Option("--timeout <duration>", "deadline of each request, e.g. 500ms, 10s (default 10s)"))
    .addOption(new Option("--json", "one JSON object per line (snake_case, int64 as integers) instead of tables"))
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("after", `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n\n${EXAMPLES_HELP}\n`)
    .showHelpAfterError("(run diego --help for usage)")
    .exitOverride()
    .hook("preSubcommand", (_program, sub) => {
      subcommand = sub.name();
    })
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  /** Wraps a command: builds its context from the global options, maps its errors to messages and exit codes. */
  const action =
    <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const globals = command.optsWithGlobals() as GlobalOptions;
      const options = clientOptionsFrom(globals, io.env);
      address = options.address!;
      tls = options.tls !== undefined;
      const json = Boolean(globals.json);
      // Everything printed passes through here: no control character from the server reaches the terminal.
      const safe = (text: string) => terminalSafe(text, "\n\t");
      const ctx: CommandContext = {
        io,
        json,
        address,
        tls,
        now,
        client: () => (client ??= connect(options)),
        out: (line) => io.stdout.write(`${json ? jsonSafe(line) : safe(line)}\n`),
        write: (text) => io.stdout.write(safe(text)),
        data: (text) => io.stdout.write(io.stdout.isTTY ? safe(text) : text),
        err: (text) => io.stderr.write(safe(text)),
      };
      exitCode = await fn(ctx, ...(args.slice(0, -1) as A));
    };

  program
    .command("desire")
    .description("submit a task from a TaskCreateRequest JSON file (- for standard input); prints it as stored")
    .argument("<file>", "task file, or - for standard input")
    .action(action((ctx, file: string) => desireCommand(ctx, file)));

  program
    .command("run")
    .description(
      "submit a task, follow it to completion, print its result, resolve and delete it (exits with the task's exit status if it failed)",
    )
    .argument("<file>", "task file, or - for standard input")
    .option("--wait", "follow the task to completion (the default)", true)
    .option("--no-wait", "only submit the task, like desire")
    .option("--logs", "print the task's output while it runs", false)
    .option("--no-resolve", "leave the completed task in the BBS instead of resolving and deleting it")
    .option("--poll-interval <duration>", "how often to read the task when no event came (default 1s)")
    .action(
      action((ctx, file: string, opts: { wait: boolean; logs: boolean; resolve: boolean; pollInterval?: string }) =>
        runCommand(ctx, file, opts),
      ),
    );

  program
    .command("get")
    .description("show one task")
    .argument("<guid>", "task guid")
    .action(action((ctx, guid: string) => getCommand(ctx, guid)));

  program
    .command("list")
    .description("list tasks, oldest first")
    .option("--domain <domain>", "only tasks of this domain")
    .option("--cell <cell-id>", "only tasks on this cell")
    .option("--state <state>", "only tasks in this state: pending, claimed, running, completed, resolving")
    .option("--label <key=value>", "only tasks with this label (repeatable: every one must match)", collect)
    .action(action((ctx, opts: ListOptions) => listCommand(ctx, opts)));

  for (const [verb, text] of [
    ["cancel", "cancel tasks that are pending, claimed or running (they complete as failed: task was cancelled)"],
    ["resolve", "mark completed tasks as being resolved (COMPLETED -> RESOLVING)"],
    ["delete", "remove resolving tasks"],
  ] as const) {
    program
      .command(verb)
      .description(text)
      .argument("<guid...>", "task guids")
      .action(action((ctx, guids: string[]) => lifecycleCommand(ctx, verb, guids)));
  }

  program
    .command("watch")
    .description("print every task event from now on, until Ctrl-C; a cut stream is resumed")
    .option("--domain <domain>", "only events of this domain")
    .option("--label <key=value>", "only events of tasks with this label (repeatable: every one must match)", collect)
    .option(
      "--unreachable-timeout <duration>",
      "give up (exit 3) when the BBS stays unreachable this long (default 60s)",
    )
    .action(action((ctx, opts: WatchCommandOptions) => watchCommand(ctx, opts)));

  program
    .command("logs")
    .description("print a task's output")
    .argument("<guid>", "task guid")
    .option("-f, --follow", "keep printing until the task completes (or Ctrl-C)", false)
    .action(action((ctx, guid: string, opts: { follow?: boolean }) => logsCommand(ctx, guid, opts)));

  program
    .command("cells")
    .description("list the live cells with their available/total memory, disk and containers")
    .action(action((ctx) => cellsCommand(ctx)));

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return ExitCode.usage;
    }
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (err) {
    const run = subcommand === "run";
    if (err instanceof CommanderError)
      return err.exitCode === 0 ? ExitCode.ok : run ? RunExitCode.usage : ExitCode.usage;
    const { context, error } = unwrap(err);
    io.stderr.write(terminalSafe(describeError(error, address, context, tls), "\n"));
    return run ? runExitCodeFor(error) : exitCodeFor(error);
  } finally {
    client?.close();
  }
}
