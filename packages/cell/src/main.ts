// The cell agent's composition root: config → wire → start; SIGTERM drains and stops.
import { createLogger, loadConfigOrExit, runService, tlsFilesOf } from "@diego/kit";
import { cellSettings } from "./config.js";
import { startCell } from "./start-cell.js";

const config = loadConfigOrExit(cellSettings, {
  envPrefix: "DIEGO_CELL",
  program: "cell",
  summary:
    "The diego cell agent: offers this host's capacity, runs tasks in Docker containers, reports them to the BBS.",
  check: tlsFilesOf,
});
const logger = createLogger("cell", config.logLevel).child({ cellId: config.cellId });

await runService(logger, async () => {
  const stop = await startCell(config, { logger });
  return [stop];
});
