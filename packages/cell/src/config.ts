import { configWithDefaults, egressSettings, setting, tlsSettings, type ConfigOf } from "@diego/kit";
import { z } from "zod";

/** Every setting of the cell (flags --kebab-case, env DIEGO_CELL_*, or a JSON file). Durations in ms. */
export const cellSettings = {
  cellId: setting("string", "This cell's id, unique in the cluster (required).", {
    check: z.string().regex(/^[A-Za-z0-9_.-]+$/, "use only A-Z a-z 0-9 _ . -"),
  }),
  listenAddress: setting("string", "host:port of the CellRepService gRPC server.", { default: "127.0.0.1:1800" }),
  advertiseAddress: setting(
    "string",
    "host:port the BBS and auctioneer use to reach this cell; default the listen address.",
    { optional: true },
  ),
  statusAddress: setting("string", "host:port of the HTTP server for /metrics, /healthz, /readyz.", {
    default: "127.0.0.1:1900",
  }),
  bbsAddress: setting("string", "BBS gRPC host:port, or several comma-separated.", { default: "127.0.0.1:8889" }),
  zone: setting("string", "Availability zone reported to the auctioneer.", { default: "" }),
  stacks: setting("list", "Stacks this cell offers (comma-separated).", { default: ["linux"] }),
  preloaded: setting("map", "preloaded:NAME root filesystems as NAME=local image, comma-separated.", {
    default: { busybox: "diego/busybox:latest" },
  }),
  placementTags: setting("list", "Tags a task must name to run here.", { default: [] as string[] }),
  optionalPlacementTags: setting("list", "Tags a task may name and still run here.", { default: [] as string[] }),
  memoryMb: setting("integer", "Memory to hand out to tasks, MiB; 0 = the host's total memory.", {
    default: 0,
    check: z.number().int().min(0),
  }),
  diskMb: setting("integer", "Disk to hand out to tasks, MiB; 0 = the size of the Docker data root's filesystem.", {
    default: 0,
    check: z.number().int().min(0),
  }),
  maxContainers: setting("integer", "Most task containers at once.", { default: 250, check: z.number().int().min(1) }),
  maxPids: setting("integer", "Process limit of a container whose task sets no max_pids; 0 = none.", {
    default: 1024,
    check: z.number().int().min(0),
  }),
  containerPool: setting(
    "boolean",
    'Keep never-used containers ready for the image and disk shapes tasks recently used, so a claimed task takes one instead of creating one (docs/performance.md, "The container pool").',
    { default: false },
  ),
  containerPoolSize: setting("integer", "Ready containers the pool keeps per shape.", {
    default: 2,
    check: z.number().int().min(1).max(64),
  }),
  containerPoolMaxShapes: setting(
    "integer",
    "Most shapes (image, disk_mb, privileged) the pool keeps: the most recently used.",
    {
      default: 4,
      check: z.number().int().min(1).max(64),
    },
  ),
  containerPoolShapeIdle: setting(
    "duration",
    "A shape no task used for this long leaves the pool (its containers are removed).",
    {
      default: 600_000,
      check: z.number().min(1_000),
    },
  ),
  heartbeatTtl: setting("duration", "TTL of the cell's presence; a heartbeat goes every third of it.", {
    default: 15_000,
    check: z.number().min(300),
  }),
  reconcileInterval: setting("duration", "Period of the full reconcile pass against the BBS.", {
    default: 30_000,
    check: z.number().min(100),
  }),
  reservedExpiration: setting("duration", "A reservation whose claim keeps failing is dropped after this long.", {
    default: 60_000,
  }),
  resultFileMaxBytes: setting("integer", "Bytes of result_file kept as the task's result.", {
    default: 10_240,
    check: z.number().int().min(1),
  }),
  logRetention: setting("duration", "How long a task's logs stay after it ends.", { default: 600_000 }),
  maxTaskProcesses: setting(
    "integer",
    "Run actions of one task whose processes may run at once (parallel and codependent children); one more fails naming this setting.",
    { default: 64, check: z.number().int().min(1) },
  ),
  logStoreMaxBytes: setting(
    "integer",
    "Bytes of task output the cell keeps across all tasks; past it the logs of finished tasks go (oldest first), then the oldest lines of the biggest running ones.",
    {
      default: 256 * 1024 * 1024,
      check: z
        .number()
        .int()
        .min(1024 * 1024),
    },
  ),
  gracefulShutdownInterval: setting("duration", "Stopping a process: SIGTERM, then this long, then SIGKILL.", {
    default: 10_000,
  }),
  drainTimeout: setting("duration", "On SIGTERM, how long running tasks may go on before they are stopped.", {
    default: 60_000,
  }),
  allowPrivileged: setting(
    "boolean",
    "Run privileged tasks (root on this host, every capability); refused where the host cannot give Docker's Privileged mode.",
    { default: false },
  ),
  network: setting("boolean", "Give containers outbound network (Docker bridge); false = no network.", {
    default: true,
  }),
  dockerSocket: setting("string", "Unix socket of the Docker engine.", { default: "/var/run/docker.sock" }),
  workDir: setting(
    "string",
    "Directory for the download cache, the helper binary and the outcome journal (keep it across restarts); default <tmp>/diego-cell-<cellId>.",
    { optional: true },
  ),
  logTailBytes: setting("integer", "Bytes of a task's last output per stream (stdout, stderr) sent with its outcome.", {
    default: 16 * 1024,
    check: z
      .number()
      .int()
      .min(0)
      .max(256 * 1024),
  }),
  reportTimeout: setting("duration", "Deadline of each CompleteTask / RejectTask call to the BBS.", {
    default: 10_000,
    check: z.number().min(100),
  }),
  reportRetryMax: setting(
    "duration",
    "Longest wait between two attempts to report an outcome (the waits grow from 200 ms, jittered); reports are retried until the BBS answers.",
    { default: 5_000, check: z.number().min(200) },
  ),
  helperImage: setting("string", "Image whose /bin/busybox (static) is mounted into every container at /.diego.", {
    default: "diego/busybox:latest",
  }),
  downloadCacheMb: setting("integer", "Size of the download cache, MiB.", {
    default: 1024,
    check: z.number().int().min(0),
  }),
  maxConcurrentDownloads: setting("integer", "Downloads at once.", { default: 5, check: z.number().int().min(1) }),
  ...tlsSettings,
  ...egressSettings,
  downloadMaxMb: setting("integer", "Size one download may have, MiB.", {
    default: 1024,
    check: z.number().int().min(1),
  }),
  downloadTimeout: setting("duration", "Time one download may take in all, redirects included.", { default: 600_000 }),
  downloadIdleTimeout: setting("duration", "A download that receives nothing for this long fails.", {
    default: 30_000,
  }),
  downloadsPerTask: setting(
    "integer",
    "Downloads one task may run at once (its share of --max-concurrent-downloads); 0 = half of it.",
    {
      default: 0,
      check: z.number().int().min(0),
    },
  ),
  uploadMaxMb: setting("integer", "Size one upload may send, MiB.", { default: 1024, check: z.number().int().min(1) }),
  metricLabelKeys: setting(
    "list",
    "Task label keys that become labels (label_<key>) of the per-task counters, comma-separated; keep them few and low in values.",
    { default: [] },
  ),
  logLevel: setting("string", "trace, debug, info, warn or error.", { default: "info" }),
};

export type CellConfig = ConfigOf<typeof cellSettings>;

/** A full config from the defaults and the given values (for tests and in-process use). */
export function cellConfig(values: Partial<CellConfig> & { cellId: string }): CellConfig {
  return configWithDefaults(cellSettings, values);
}
