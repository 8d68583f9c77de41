import { createClient } from "@diego/kit";
import { TaskLifecycleService, TaskService } from "@diego/proto";
const address = process.argv[2];
const clients = Number(process.argv[3] ?? 32);
const seconds = Number(process.argv[4] ?? 8);
const tasks = createClient(TaskService, address);
const lifecycle = createClient(TaskLifecycleService, address);
let done = 0, n = 0;
const timing: Record<string, number> = {};
const t = async <T>(name: string, p: () => Promise<T>) => { const t0 = performance.now(); const r = await p(); timing[name] = (timing[name] ?? 0) + performance.now() - t0; return r; };
const until = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: clients }, async (_, w) => {
  while (Date.now() < until) {
    const taskGuid = `l-${process.pid}-${w}-${n++}`; const cellId = `c${w % 4}`;
    await t("desire", () => tasks.desireTask({ taskGuid, domain: "d", rootFs: "docker:///x/y", action: { action: { case: "run", value: { path: "/bin/true", user: "root" } } } }));
    await t("start", () => lifecycle.startTask({ taskGuid, cellId }));
    await t("running", () => lifecycle.runningTask({ taskGuid, cellId }));
    await t("complete", () => lifecycle.completeTask({ taskGuid, cellId }));
    await t("resolving", () => tasks.resolvingTask({ taskGuid }));
    await t("delete", () => tasks.deleteTask({ taskGuid }));
    done++;
  }
}));
console.log("lifecycles/s", done / seconds, Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, (v / done).toFixed(2) + "ms"])));
process.exit(0);
