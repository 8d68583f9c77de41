// The walls of the house as ESLint rules (docs/architecture.md, "Rooms and walls"):
// - `diego/floors`: the pure packages (models, auction) import no I/O module;
// - `diego/rooms`: inside a package nothing imports upward: a room imports only rooms listed before it.
import { existsSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";

/** Modules that do I/O (files, network, processes, engines, logs). */
export const IO_MODULES = [
  "fs",
  "fs/promises",
  "net",
  "tls",
  "http",
  "https",
  "http2",
  "dgram",
  "dns",
  "child_process",
  "cluster",
  "worker_threads",
  "@grpc/grpc-js",
  "etcd3",
  "dockerode",
  "pino",
  "@diego/kit",
];

/** Packages that must stay pure. */
export const FLOOR_PACKAGES = ["models", "auction"];

/**
 * The rooms of each package from the bottom up: a directory or a top-level file of src/ (without .ts).
 * A room may import itself and the rooms before it, never one after it. A room not listed is not checked.
 */
export const ROOMS = {
  cell: [
    "runtime",
    "logs",
    "capacity",
    "metrics",
    "actions",
    "executor",
    "cell",
    "reconcile",
    "handlers",
    "heartbeat",
    "config",
    "packaged-config",
    "start-cell",
    "index",
    "main",
  ],
  bbs: [
    "keys",
    "etcd",
    "metrics",
    "grpc-clients",
    "store",
    "events",
    "cells",
    "leader",
    "locks",
    "auctioneer-client",
    "callbacks",
    "controller",
    "convergence",
    "handlers",
    "config",
    "start-bbs",
    "index",
    "main",
  ],
  auctioneer: [
    "batcher",
    "tracked-tasks",
    "ports",
    "round-plan",
    "cell-cache",
    "fetch-cell-states",
    "metrics",
    "auction-runner",
    "grpc-ports",
    "handlers",
    "lock-keeper",
    "config",
    "start-auctioneer",
    "index",
    "main",
  ],
  kit: ["authz", "grpc", "config", "metrics", "logger", "lifecycle", "status-server", "index"],
  cli: [
    "io",
    "exit-codes",
    "errors",
    "context",
    "format",
    "progress-line",
    "log-follower",
    "task-file-input",
    "connection",
    "commands",
    "cli",
    "index",
    "main",
  ],
  client: ["task-state", "run-to-completion", "diego-client", "task-file", "testing", "index"],
};

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** { pkg, room } of a file under packages/<pkg>/src, else undefined. */
function placeOf(file) {
  const rel = relative(ROOT, file).split(sep);
  if (rel[0] !== "packages" || rel[2] !== "src" || rel.length < 4) return undefined;
  const room = rel.length === 4 ? rel[3].replace(/\.(ts|js)$/, "") : rel[3];
  return { pkg: rel[1], room };
}

function isIoModule(source) {
  const name = source.startsWith("node:") ? source.slice("node:".length) : source;
  return IO_MODULES.some((m) => name === m || name.startsWith(`${m}/`));
}

const floors = {
  meta: {
    type: "problem",
    schema: [],
    messages: { io: "{{pkg}} is pure: it may not import the I/O module {{source}}" },
  },
  create(context) {
    const place = placeOf(context.filename);
    if (!place || !FLOOR_PACKAGES.includes(place.pkg)) return {};
    const check = (node, source) => {
      if (typeof source === "string" && isIoModule(source))
        context.report({ node, messageId: "io", data: { pkg: `@diego/${place.pkg}`, source } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value),
    };
  },
};

const rooms = {
  meta: {
    type: "problem",
    schema: [],
    messages: { up: "{{from}} may not import {{to}}: in @diego/{{pkg}} the rooms go {{order}} (bottom first)" },
  },
  create(context) {
    const place = placeOf(context.filename);
    const order = place && ROOMS[place.pkg];
    if (!order || !order.includes(place.room)) return {};
    const check = (node, source) => {
      if (typeof source !== "string" || !source.startsWith(".")) return;
      const target = placeOf(resolve(dirname(context.filename), source.replace(/\.js$/, ".ts")));
      if (!target || target.pkg !== place.pkg || target.room === place.room) return;
      const to = order.indexOf(target.room);
      if (to > order.indexOf(place.room))
        context.report({
          node,
          messageId: "up",
          data: { from: place.room, to: target.room, pkg: place.pkg, order: order.join(" < ") },
        });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
    };
  },
};

/** Rooms listed that do not exist (a renamed directory must be renamed here too). */
export function missingRooms() {
  const out = [];
  for (const [pkg, order] of Object.entries(ROOMS))
    for (const room of order) {
      const base = resolve(ROOT, "packages", pkg, "src", room);
      if (!existsSync(base) && !existsSync(`${base}.ts`)) out.push(`${pkg}/${room}`);
    }
  return out;
}

export default { rules: { floors, rooms } };
