import { HttpReceiver } from "@diego/e2e";
import type { EffectCount } from "./judge.js";

/**
 * The counter of side effects, outside the cluster: an HTTP receiver on the docker0 gateway that every
 * task's container calls at the start (`/start/<guid>`) and at the end (`/done/<guid>`) of its action.
 * It lives in the test process, so no fault of the cluster touches it.
 */
export class EffectCounter {
  private readonly receiver = new HttpReceiver(() => ({ status: 200, body: "ok" }));

  async listen(): Promise<this> {
    await this.receiver.listen();
    return this;
  }

  /** The URL a container calls for one event of a task. */
  url(event: "start" | "done", guid: string): string {
    return this.receiver.url(`/${event}/${encodeURIComponent(guid)}`);
  }

  count(guid: string): EffectCount {
    const path = (event: string) => `/${event}/${encodeURIComponent(guid)}`;
    let starts = 0;
    let dones = 0;
    for (const r of this.receiver.requests) {
      if (r.url === path("start")) starts += 1;
      else if (r.url === path("done")) dones += 1;
    }
    return { starts, dones };
  }

  close(): Promise<void> {
    return this.receiver.close();
  }
}
