import { configWithDefaults, setting, tlsSettings, type ConfigOf } from "@diego/kit";
import { z } from "zod";

/** Every setting of the auctioneer (flags --kebab-case, env DIEGO_AUCTIONEER_*, or a JSON file). Durations in ms. */
export const auctioneerSettings = {
  listenAddress: setting("string", "host:port of the AuctioneerService gRPC server.", { default: "127.0.0.1:9016" }),
  statusAddress: setting("string", "host:port of the HTTP server for /metrics, /healthz, /readyz.", {
    default: "127.0.0.1:9017",
  }),
  advertiseAddress: setting(
    "string",
    "host:port the BBS uses to reach this auctioneer, published in the `auctioneer` lock; default the listen address.",
    { optional: true },
  ),
  bbsAddress: setting("string", "BBS gRPC host:port, or several comma-separated.", { default: "127.0.0.1:8889" }),
  lockTtl: setting(
    "duration",
    "TTL of the `auctioneer` lock; the holder refreshes it every third of it, a standby takes over within it.",
    { default: 15_000, check: z.number().min(300) },
  ),
  lockRetryInterval: setting("duration", "How often a standby tries to take the lock.", {
    default: 1_000,
    check: z.number().min(50),
  }),
  cellStateTimeout: setting(
    "duration",
    "Deadline of each cell's State call; a cell that misses it sits out the round.",
    { default: 5_000, check: z.number().min(10) },
  ),
  communicationTimeout: setting("duration", "Deadline of Perform calls to cells and of calls to the BBS.", {
    default: 10_000,
    check: z.number().min(10),
  }),
  startingContainerWeight: setting(
    "number",
    "Score added per container a cell is still starting (Diego's starting_container_weight).",
    { default: 0.25, check: z.number().min(0) },
  ),
  retryInterval: setting(
    "duration",
    "First wait of a task kept for free capacity or for cells to answer; doubled each round (jittered) up to --max-retry-interval.",
    { default: 1_000, check: z.number().min(10) },
  ),
  maxRetryInterval: setting("duration", "The longest wait between auctions of a task kept for capacity.", {
    default: 8_000,
    check: z.number().min(10),
  }),
  cellListInterval: setting(
    "duration",
    "How often an auction lists the live cells from the BBS (new cells are fetched, gone ones dropped).",
    { default: 1_000, check: z.number().min(10) },
  ),
  cellStateRefreshInterval: setting(
    "duration",
    "How often an auction fetches every live cell's State again, as a check of the cell cache.",
    { default: 30_000, check: z.number().min(100) },
  ),
  waitingTaskExpiry: setting(
    "duration",
    "A waiting task the BBS has not sent again for this long is forgotten (the BBS re-sends pending tasks every convergence pass).",
    { default: 120_000, check: z.number().min(100) },
  ),
  maxCellRefusals: setting(
    "integer",
    "Cells that may refuse a task at Perform before it is rejected with the last cell's reason.",
    { default: 3, check: z.number().int().min(1) },
  ),
  maxConcurrentRequests: setting(
    "integer",
    "Most calls to cells (State, Perform) and BBS rejections in flight at once.",
    { default: 1000, check: z.number().int().min(1) },
  ),
  ...tlsSettings,
  logLevel: setting("string", "trace, debug, info, warn or error.", { default: "info" }),
};

export type AuctioneerConfig = ConfigOf<typeof auctioneerSettings>;

/** A full config from the defaults and the given values (for tests and in-process use). */
export function auctioneerConfig(values: Partial<AuctioneerConfig> = {}): AuctioneerConfig {
  return configWithDefaults(auctioneerSettings, values);
}
