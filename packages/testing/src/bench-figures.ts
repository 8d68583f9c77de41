// Figures the benchmarks share (docs/performance.md): percentiles and steady-state rates.

/** The p-th percentile of xs (nearest rank). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/**
 * `total` calls of `fn`, `concurrency` at a time, timed in steady state: from the `concurrency`-th
 * completion to the last, so the first calls, which find an idle engine (and a cell a full container
 * pool), are not counted. Gives the seconds and the calls counted; the benchmarks' throughput figures
 * (docs/performance.md).
 */
export async function steadyRate(
  total: number,
  concurrency: number,
  fn: () => Promise<unknown>,
): Promise<{ seconds: number; counted: number }> {
  if (total <= concurrency) throw new Error(`steadyRate needs more calls (${total}) than run at once (${concurrency})`);
  let next = 0;
  let completed = 0;
  let from = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        await fn();
        if (++completed === concurrency) from = performance.now();
      }
    }),
  );
  return { seconds: (performance.now() - from) / 1000, counted: total - concurrency };
}
