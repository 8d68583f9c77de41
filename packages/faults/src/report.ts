import type { CaseSummary } from "./judge.js";

/** One line of the fault table. */
export interface FaultRow {
  fault: string;
  tasks: number;
  completed: number;
  failedTrue: number;
  /** Of those, how many had run to the end (the receiver saw `done`): outcomes dropped for a true reason. */
  finishedThenFailed: number;
  twice: number;
  lost: number;
  /** Seconds from the end of the fault until every task was final and a new task had completed; null: never. */
  recoverySeconds: number | null;
  /** Why each lost task is lost, and any error of the case itself. */
  notes: string[];
  /** How long each phase of the case took, in seconds (boot, fault, recovery, teardown). */
  phaseSeconds?: Record<string, number>;
}

export function rowOf(
  fault: string,
  summary: CaseSummary,
  recoverySeconds: number | null,
  notes: string[] = [],
): FaultRow {
  const whys = summary.verdicts
    .filter((v) => v.verdict === "lost" || v.ranTwice)
    .map((v) => `${v.guid}: ${v.ranTwice ? "ran twice" : ""}${v.ranTwice && v.why ? "; " : ""}${v.why}`);
  return {
    fault,
    tasks: summary.tasks,
    completed: summary.completed,
    failedTrue: summary.failedTrue,
    finishedThenFailed: summary.finishedThenFailed,
    twice: summary.twice,
    lost: summary.lost,
    recoverySeconds,
    notes: [...notes, ...whys],
  };
}

/** A case passes when no task ran twice, none was lost, and the system recovered. */
export function passed(row: FaultRow): boolean {
  return row.twice === 0 && row.lost === 0 && row.recoverySeconds !== null && row.tasks > 0;
}

const COLUMNS = [
  "fault",
  "tasks",
  "completed",
  "failed (true)",
  "of which finished",
  "twice",
  "lost",
  "recovery s",
  "ok",
];

/** The table as fixed-width text, one row per case. */
export function formatTable(rows: readonly FaultRow[]): string {
  const cells = rows.map((r) => [
    r.fault,
    String(r.tasks),
    String(r.completed),
    String(r.failedTrue),
    String(r.finishedThenFailed),
    String(r.twice),
    String(r.lost),
    r.recoverySeconds === null ? "-" : r.recoverySeconds.toFixed(1),
    passed(r) ? "yes" : "NO",
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  return [line(COLUMNS), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}
