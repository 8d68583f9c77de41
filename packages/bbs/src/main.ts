// The BBS's composition root: configuration → startBbs → run until SIGTERM/SIGINT.
import { createLogger, loadConfigOrExit, runService, tlsFilesOf } from "@diego/kit";
import { bbsSettings } from "./config.js";
import { startBbs } from "./start-bbs.js";

const config = loadConfigOrExit(bbsSettings, {
  envPrefix: "DIEGO_BBS",
  program: "bbs",
  summary:
    "The BBS: the task API (diego.bbs.v1), task state in etcd, convergence, completion callbacks, cell presence and locks.",
  check: tlsFilesOf,
});
const logger = createLogger("bbs", config.logLevel);
await runService(logger, async () => {
  const bbs = await startBbs(config, { logger });
  return [() => bbs.stop()];
});
