import type { LogLine } from "@diego/proto";
import type { LogTailStore } from "./log-tail-store.js";

/** Log tails in this process's memory (the memory task store's companion). */
export class MemoryLogTailStore implements LogTailStore {
  private readonly tails = new Map<string, LogLine[]>();

  async put(guid: string, lines: readonly LogLine[]): Promise<void> {
    this.tails.set(guid, [...lines]);
  }

  async get(guid: string): Promise<LogLine[] | undefined> {
    return this.tails.get(guid);
  }

  async delete(guid: string): Promise<void> {
    this.tails.delete(guid);
  }

  async guids(): Promise<string[]> {
    return [...this.tails.keys()];
  }
}
