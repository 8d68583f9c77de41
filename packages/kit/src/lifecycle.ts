import type { Logger } from "pino";

/** Something started that must be stopped, in reverse order of starting. */
export type Stopper = () => Promise<void> | void;

/**
 * Runs a service's composition root: `start` wires and starts its parts and returns their stoppers.
 * SIGTERM or SIGINT stops them in reverse order and exits 0; a signal that arrives while `start` is
 * still running stops the service as soon as it has started. A second signal exits at once.
 */
export async function runService(logger: Logger, start: () => Promise<Stopper[]>): Promise<void> {
  let stoppers: Stopper[] | undefined;
  let signalled: string | undefined;
  const stop = async () => {
    logger.info({ signal: signalled }, "stopping");
    for (const s of [...(stoppers ?? [])].reverse()) {
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
  const onSignal = (signal: string) => {
    if (signalled) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    signalled = signal;
    if (stoppers) void stop();
    else logger.info({ signal }, "signal while starting: stopping once started");
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  try {
    stoppers = await start();
  } catch (err) {
    logger.fatal({ err }, "failed to start");
    logger.flush?.();
    process.exit(1);
  }
  if (signalled) await stop();
}
