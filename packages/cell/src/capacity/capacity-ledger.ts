import { fit, type Admission } from "@diego/models";

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
 * The cell's capacity by reservation (docs/diego-differences.md, capacity): each task holds its memory_mb, disk_mb
 * and one container from Perform until its container is removed, whatever it really uses.
 */
export class CapacityLedger {
  private readonly reservations = new Map<string, Reservation>();

  constructor(readonly total: Capacity) {}

  /** Reserves room for a task; the same guid again is a no-op. The refusal carries the reason when it does not fit. */
  reserve(r: Reservation): Admission {
    if (this.reservations.has(r.taskGuid)) return { admitted: true };
    const admission = fit(r, this.available());
    if (admission.admitted) this.reservations.set(r.taskGuid, { ...r });
    return admission;
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
