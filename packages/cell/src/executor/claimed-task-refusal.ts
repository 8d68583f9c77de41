import { compatible, taskWork, type AdmitCell } from "@diego/models";
import type { cellv1, Task } from "@diego/proto";

/**
 * Why this cell must not run the task the BBS handed it at StartTask, or undefined when it may (pure).
 * The real task is admitted again by the shared rule (stack, root_fs, placement tags, privilege), and
 * it may need no more memory or disk than Perform's copy reserved: Perform's copy is not trusted.
 */
export function claimedTaskRefusal(reserved: cellv1.TaskWork, task: Task, offer: AdmitCell): string | undefined {
  const real = taskWork(task);
  const verdict = compatible(real, offer);
  if (!verdict.admitted) return verdict.reason;
  if (real.memoryMb > reserved.memoryMb || real.diskMb > reserved.diskMb)
    return `the task needs memory_mb ${real.memoryMb} and disk_mb ${real.diskMb}, more than this cell reserved for it (${reserved.memoryMb}, ${reserved.diskMb})`;
  return undefined;
}
