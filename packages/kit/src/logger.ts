import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON logs on stdout (pipe through pino-pretty to read them). Lines about a task carry taskGuid,
 * cellId and domain: use `taskLogger`.
 */
export function createLogger(service: string, level = process.env.DIEGO_LOG_LEVEL ?? "info"): Logger {
  return pino({ name: service, level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A child logger for one task, so every line about it carries its guid, cell and domain. */
export function taskLogger(logger: Logger, task: { taskGuid: string; domain?: string; cellId?: string }): Logger {
  const fields: Record<string, string> = { taskGuid: task.taskGuid };
  if (task.domain) fields.domain = task.domain;
  if (task.cellId) fields.cellId = task.cellId;
  return logger.child(fields);
}
