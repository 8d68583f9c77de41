export interface BackoffOptions {
  /** The wait before the first retry. */
  initialMs: number;
  /** The longest wait (the cap). */
  maxMs: number;
}

/**
 * The wait before retry number `attempt` (1 for the first): exponential from `initialMs`, capped at
 * `maxMs`, with "full jitter" (uniform between half and all of it) so that many callers that
 * failed together do not retry together. `random` is injectable for tests.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(o.maxMs, o.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}
