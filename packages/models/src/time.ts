/** Unix time in nanoseconds, the unit of every timestamp in the API. */
export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function msToNanos(ms: number): bigint {
  return BigInt(Math.round(ms)) * 1_000_000n;
}

export function nanosToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}
