import { execFile } from "node:child_process";
import { createClient } from "@diego/kit";
import { TaskService, TaskState } from "@diego/proto";
const client = createClient(TaskService, "127.0.0.1:8889");
const withEnv = process.argv[2] === "env";
const done = new Map<string, () => void>();
const times = new Map<string, number>();
void (async () => {
  for await (const ev of client.watchTasks({ domain: "outside" })) {
    if (ev.event.case !== "changed") continue;
    const a = ev.event.value.after!;
    if (a.state === TaskState.COMPLETED) { times.set(a.taskGuid, Number(a.updatedAt - a.createdAt) / 1e6); done.get(a.taskGuid)?.(); }
  }
})();
await new Promise((r) => setTimeout(r, 300));
let n = 0;
async function one(): Promise<number> {
  const guid = `outside-${process.pid}-${n++}`;
  const t0 = performance.now();
  const p = new Promise<void>((r) => done.set(guid, r));
  await client.desireTask({ taskGuid: guid, domain: "outside", rootFs: "docker:///diego/busybox", memoryMb: 64, diskMb: 64, cpuWeight: 50,
    env: withEnv ? [{ name: "GREETING", value: "hello" }] : [],
    action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"] } } }, resultFile: "/tmp/result" });
  await p;
  const ms = performance.now() - t0;
  await client.resolvingTask({ taskGuid: guid }); await client.deleteTask({ taskGuid: guid });
  return ms;
}
const dockerRun = () => new Promise<number>((res, rej) => { const t0 = performance.now(); execFile("docker", ["run", "--rm", "--memory", "64m", "diego/busybox", "/bin/sh", "-c", "echo hello; printf 42 > /tmp/result"], (e) => e ? rej(e) : res(performance.now() - t0)); });
for (let i = 0; i < 4; i++) { await one(); await dockerRun(); }
const cell: number[] = [], raw: number[] = [];
for (let i = 0; i < 15; i++) { cell.push(await one()); await new Promise(r => setTimeout(r, 1500)); raw.push(await dockerRun()); await new Promise(r => setTimeout(r, 500)); }
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`env=${withEnv} cell p50 ${p50(cell).toFixed(0)} ms (client-side), docker run --rm p50 ${p50(raw).toFixed(0)} ms, ratio ${(p50(cell) / p50(raw)).toFixed(2)}`);
const par = async (k: number, f: () => Promise<number>) => { let left = 16; const t0 = performance.now(); await Promise.all(Array.from({ length: k }, async () => { while (left-- > 0) await f(); })); return 16 / ((performance.now() - t0) / 1000); };
const rawTp = await par(4, dockerRun); const cellTp = await par(4, one);
console.log(`throughput 4 in flight: cell ${cellTp.toFixed(2)}/s docker run --rm ${rawTp.toFixed(2)}/s ratio ${(cellTp / rawTp).toFixed(2)}`);
process.exit(0);
