import { create } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, type TaskCreateRequest } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";

let n = 0;

/** A valid TaskCreateRequest with a fresh guid. */
export function taskRequest(init: Partial<MessageInitShape<typeof TaskCreateRequestSchema>> = {}): TaskCreateRequest {
  return create(TaskCreateRequestSchema, {
    taskGuid: `task-${process.pid}-${++n}-${Math.random().toString(36).slice(2, 8)}`,
    domain: "test",
    rootFs: "docker:///diego/busybox",
    memoryMb: 64,
    diskMb: 64,
    action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", "echo hi"], user: "root" } } },
    ...init,
  });
}
