import { insufficientResources, type ScarceResource } from "@diego/models";

export interface Capacity {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface Reservation {
  taskGuid: string;
  memoryMb: number;
  diskMb: number;
}

/**
 * The cell's capacity by reservation (diego-reference 8.1): each task holds its memory_mb, disk_mb
 * and one container from Perform until its container is removed, whatever it really uses.
 */
export class CapacityLedger {
  private readonly reservations = new Map<string, Reservation>();

  constructor(readonly total: Capacity) {}

  /** Reserves room for a task; the same guid again is a no-op. Returns the refusal reason when it does not fit. */
  reserve(r: Reservation): { ok: true } | { ok: false; reason: string } {
    if (this.reservations.has(r.taskGuid)) return { ok: true };
    const avail = this.available();
    const short: ScarceResource[] = [];
    if (avail.containers < 1) short.push("containers");
    if (r.diskMb > avail.diskMb) short.push("disk");
    if (r.memoryMb > avail.memoryMb) short.push("memory");
    if (short.length) return { ok: false, reason: insufficientResources(short) };
    this.reservations.set(r.taskGuid, { ...r });
    return { ok: true };
  }

  release(taskGuid: string): void {
    this.reservations.delete(taskGuid);
  }

  has(taskGuid: string): boolean {
    return this.reservations.has(taskGuid);
  }

  available(): Capacity {
    let memoryMb = this.total.memoryMb;
    let diskMb = this.total.diskMb;
    for (const r of this.reservations.values()) {
      memoryMb -= r.memoryMb;
      diskMb -= r.diskMb;
    }
    return { memoryMb, diskMb, containers: this.total.containers - this.reservations.size };
  }

  list(): Reservation[] {
    return [...this.reservations.values()];
  }
}
