import { createClient } from "@diego/kit";
import { TaskService } from "@diego/proto";
import { startBbs, type RunningBbs } from "../src/index.js";
import { silent } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

// The operator's default and maximum memory_mb and disk_mb at DesireTask: 0 takes the default (so the
// auction and the cell reserve it), over the maximum is refused naming the field and the limit.
let bbs: RunningBbs;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;

beforeAll(async () => {
  bbs = await startBbs(
    {
      store: "memory",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      defaultMemoryMb: 256,
      maxMemoryMb: 1024,
      defaultDiskMb: 512,
      maxDiskMb: 2048,
    },
    { logger: silent },
  );
  tasks = createClient(TaskService, bbs.address);
});

afterAll(async () => {
  tasks?.close();
  await bbs?.stop();
});

test("a task that gives 0 is stored with the defaults", async () => {
  const req = taskRequest({ memoryMb: 0, diskMb: 0 });
  const { task } = await tasks.desireTask(req);
  expect(task).toMatchObject({ memoryMb: 256, diskMb: 512 });
  expect(await tasks.getTask({ taskGuid: req.taskGuid })).toMatchObject({ memoryMb: 256, diskMb: 512 });
});

test("a task over a maximum is refused, naming the field and the limit, and nothing is stored", async () => {
  const req = taskRequest({ memoryMb: 2048, diskMb: 64 });
  await expect(tasks.desireTask(req)).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "memory_mb", message: expect.stringContaining("must be at most 1024 on this cluster") }],
  });
  await expect(tasks.getTask({ taskGuid: req.taskGuid })).rejects.toMatchObject({ code: "NOT_FOUND" });
});
