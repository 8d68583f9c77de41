import { createLogger, loadConfigOrExit, runService, tlsFilesOf } from "@diego/kit";
import { startAuctioneer } from "./start-auctioneer.js";
import { auctioneerSettings } from "./config.js";

// Composition root: config → start → stop on SIGTERM/SIGINT (releases the lock so a standby takes over at once).
const config = loadConfigOrExit(auctioneerSettings, {
  envPrefix: "DIEGO_AUCTIONEER",
  program: "auctioneer",
  summary:
    "Places pending tasks on cells: batches auction requests from the BBS, fetches cell states, schedules and sends the work.",
  check: tlsFilesOf,
});
const logger = createLogger("auctioneer", config.logLevel);
await runService(logger, async () => {
  const auctioneer = await startAuctioneer(config, { logger });
  return [() => auctioneer.stop()];
});
