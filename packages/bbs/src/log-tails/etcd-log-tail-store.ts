import type { LogLine } from "@diego/proto";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import { prefixEnd, type Keys } from "../keys.js";
import { decodeLogTail, encodeLogTail, type LogTailStore } from "./log-tail-store.js";

/** Log tails in etcd, one key per task: `<prefix>/logtails/<task_guid>` (JSON LogLines). */
export class EtcdLogTailStore implements LogTailStore {
  constructor(
    private readonly etcd: EtcdConnection,
    private readonly keys: Keys,
  ) {}

  async put(guid: string, lines: readonly LogLine[]): Promise<void> {
    const key = Buffer.from(this.keys.logTail(guid));
    await this.etcd.client.kv.put({ key, value: encodeLogTail(lines) }, this.etcd.callOptions());
  }

  async get(guid: string): Promise<LogLine[] | undefined> {
    const res = await this.etcd.client.kv.range({ key: Buffer.from(this.keys.logTail(guid)) }, this.etcd.callOptions());
    const kv = res.kvs[0];
    return kv ? decodeLogTail(kv.value) : undefined;
  }

  async delete(guid: string): Promise<void> {
    await this.etcd.client.kv.deleteRange({ key: Buffer.from(this.keys.logTail(guid)) }, this.etcd.callOptions());
  }

  async guids(): Promise<string[]> {
    const prefix = Buffer.from(this.keys.logTails);
    const res = await this.etcd.client.kv.range(
      { key: prefix, range_end: prefixEnd(prefix), keys_only: true },
      this.etcd.callOptions(),
    );
    return res.kvs.map((kv) => kv.key.toString("utf8").slice(prefix.length));
  }
}
