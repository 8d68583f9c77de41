/** One task's log as the cell-wide budget sees it. */
export interface LogUsage {
  taskGuid: string;
  bytes: number;
  /** Whether the task ended; its lines are only kept for readers until the retention time. */
  ended: boolean;
  /** Order of ending (smaller ended earlier); ignored while running. */
  endedSeq: number;
}

export interface EvictionPlan {
  /** Finished tasks whose logs go entirely, oldest ending first. */
  evict: string[];
  /** Running tasks whose oldest lines go, at least this many bytes each. */
  trim: Map<string, number>;
}

/**
 * What to drop so that every task's log on this cell fits in `budgetBytes` together
 * (docs/limits.md, "Settings of the cell"): the logs of finished tasks first, the one that ended
 * first first; then bytes off the biggest running logs, each cut down towards the next biggest, so
 * that one noisy task pays before the quiet ones.
 */
export function planEviction(logs: readonly LogUsage[], budgetBytes: number): EvictionPlan {
  const plan: EvictionPlan = { evict: [], trim: new Map() };
  let total = logs.reduce((sum, l) => sum + l.bytes, 0);
  if (total <= budgetBytes) return plan;
  const finished = logs.filter((l) => l.ended).sort((a, b) => a.endedSeq - b.endedSeq);
  for (const log of finished) {
    if (total <= budgetBytes) return plan;
    plan.evict.push(log.taskGuid);
    total -= log.bytes;
  }
  // Running logs, biggest first (ties by guid, so the plan is the same every time).
  const running = logs
    .filter((l) => !l.ended && l.bytes > 0)
    .map((l) => ({ guid: l.taskGuid, bytes: l.bytes }))
    .sort((a, b) => b.bytes - a.bytes || (a.guid < b.guid ? -1 : 1));
  while (total > budgetBytes && running.length) {
    const top = running[0].bytes;
    // Every log at the top size is cut together, down to the next size below (or by what is left over).
    const group = running.filter((r) => r.bytes === top);
    const next = running.find((r) => r.bytes < top)?.bytes ?? 0;
    const excess = total - budgetBytes;
    const each = Math.min(top - next, Math.ceil(excess / group.length));
    if (each <= 0) break;
    for (const r of group) {
      r.bytes -= each;
      total -= each;
      plan.trim.set(r.guid, (plan.trim.get(r.guid) ?? 0) + each);
    }
    running.sort((a, b) => b.bytes - a.bytes || (a.guid < b.guid ? -1 : 1));
  }
  return plan;
}
