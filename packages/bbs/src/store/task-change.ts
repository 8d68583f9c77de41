import type { Task } from "@diego/proto";
import { bytesCarrySecrets, decodeTask } from "./task-entry.js";
import type { TaskChange } from "./task-store.js";

/** A TaskChange that decodes its tasks only when someone asks (most changes have no subscriber). */
export class LazyTaskChange implements TaskChange {
  private decodedBefore?: Task;
  private decodedAfter?: Task;

  constructor(
    readonly kind: TaskChange["kind"],
    readonly guid: string,
    readonly revision: number,
    private readonly beforeBytes: Uint8Array | undefined,
    private readonly afterBytes: Uint8Array | undefined,
    private readonly domainHint?: string,
  ) {}

  get domain(): string {
    return this.domainHint ?? (this.after() ?? this.before())?.domain ?? "";
  }

  before(): Task | undefined {
    if (!this.beforeBytes) return undefined;
    return (this.decodedBefore ??= decodeTask(this.beforeBytes));
  }

  after(): Task | undefined {
    if (!this.afterBytes) return undefined;
    return (this.decodedAfter ??= decodeTask(this.afterBytes));
  }

  storedSize(): number | undefined {
    if (!this.beforeBytes && !this.afterBytes) return undefined;
    // Each task a length-delimited field (tag + varint length of at most 5 bytes), and the oneof around them.
    return (
      (this.beforeBytes ? this.beforeBytes.length + 6 : 0) + (this.afterBytes ? this.afterBytes.length + 6 : 0) + 6
    );
  }

  publicBytes(side: "before" | "after"): Uint8Array | undefined {
    const bytes = side === "before" ? this.beforeBytes : this.afterBytes;
    return bytes && !bytesCarrySecrets(bytes) ? bytes : undefined;
  }
}
