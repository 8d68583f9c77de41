import type { Logger } from "pino";

/** Something started that must be stopped, in reverse order of starting. */
export type Stopper = () => Promise<void> | void;

/**
 * Runs a service's composition root: `start` wires and starts its parts and returns their stoppers.
 * SIGTERM or SIGINT stops them in reverse order and exits 0; a second signal exits at once.
 */
export async function runService(logger: Logger, start: () => Promise<Stopper[]>): Promise<void> {
  let stoppers: Stopper[] = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    for (const s of [...stoppers].reverse()) {
      try {
        await s();
      } catch (err) {
        logger.error({ err }, "error while stopping");
      }
    }
    logger.info("stopped");
    logger.flush?.();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  try {
    stoppers = await start();
  } catch (err) {
    logger.fatal({ err }, "failed to start");
    logger.flush?.();
    process.exit(1);
  }
}
