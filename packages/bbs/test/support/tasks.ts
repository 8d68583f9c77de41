import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, type TaskCreateRequest } from "@diego/proto";

type Init = MessageInitShape<typeof TaskCreateRequestSchema>;
let n = 0;

/** A valid TaskCreateRequest with a fresh guid. */
export function taskRequest(init: Partial<Init> = {}): TaskCreateRequest {
  const base: Init = {
    taskGuid: `task-${process.pid}-${++n}-${Math.random().toString(36).slice(2, 8)}`,
    domain: "test",
    rootFs: "docker:///diego/busybox",
    memoryMb: 64,
    diskMb: 64,
    action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", "echo hi"], user: "root" } } },
  };
  return create(TaskCreateRequestSchema, { ...base, ...init } as Init);
}
