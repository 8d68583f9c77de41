import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ListTasksResponseSchema, TaskSchema, TaskState } from "@diego/proto";
import { encodedListResponse } from "../src/handlers/list-tasks.js";
import { encodeTask } from "../src/store/task-entry.js";

test("a list sent as stored bytes decodes to exactly the tasks, whatever their sizes", () => {
  const tasks = [1, 100, 200, 20_000, 0].map((n, i) =>
    create(TaskSchema, {
      taskGuid: `t${i}`,
      domain: "d",
      annotation: "x".repeat(n),
      state: TaskState.RUNNING,
      createdAt: 1_700_000_000_000_000_000n,
    }),
  );
  const wire = toBinary(ListTasksResponseSchema, encodedListResponse(tasks.map(encodeTask)));
  expect(wire).toEqual(toBinary(ListTasksResponseSchema, create(ListTasksResponseSchema, { tasks })));
  const decoded = fromBinary(ListTasksResponseSchema, wire);
  expect(decoded.tasks.map((t) => [t.taskGuid, t.annotation.length])).toEqual(
    tasks.map((t) => [t.taskGuid, t.annotation.length]),
  );
  expect(toBinary(ListTasksResponseSchema, encodedListResponse([]))).toEqual(new Uint8Array());
});
