import { createClient } from "@diego/kit";
import { TaskService, TaskState, type Task } from "@diego/proto";
const client = createClient(TaskService, "127.0.0.1:8889");
const seen: Task[] = [];
const guid = `one-${Date.now()}`;
let resolveDone: () => void = () => {};
const done = new Promise<void>((r) => (resolveDone = r));
void (async () => { for await (const ev of client.watchTasks({ domain: "outside" })) { if (ev.event.case !== "changed") continue; const a = ev.event.value.after!; if (a.taskGuid !== guid) continue; seen.push(a); if (a.state === TaskState.COMPLETED) resolveDone(); } })();
await new Promise((r) => setTimeout(r, 300));
const withResult = process.argv[2] !== "noresult";
const t0 = performance.now();
await client.desireTask({ taskGuid: guid, domain: "outside", rootFs: "docker:///diego/busybox", memoryMb: 64, diskMb: 64, cpuWeight: 50,
  env: [{ name: "GREETING", value: "hello" }],
  action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"] } } }, resultFile: withResult ? "/tmp/result" : "" });
await done;
console.log("client", (performance.now() - t0).toFixed(0), "ms;", seen.map((t) => `${TaskState[t.state]}+${(Number(t.updatedAt - t.createdAt) / 1e6).toFixed(0)}`).join(" "), guid);
process.exit(0);
