import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, TaskState, type Task, type TaskCreateRequest } from "@diego/proto";
import type { TaskService } from "@diego/proto";
import type { ServiceClient } from "@diego/kit";
import Docker from "dockerode";
import { eventually } from "@diego/testing";
import { REPO_ROOT } from "./processes.js";

/** A task file from packages/e2e/fixtures with its guid (and log_guid) replaced by a unique one. */
export function fixtureTask(name: string, guid: string, overrides: Record<string, JsonValue> = {}): TaskCreateRequest {
  const json = JSON.parse(readFileSync(join(REPO_ROOT, "packages/e2e/fixtures", name), "utf8")) as Record<
    string,
    JsonValue
  >;
  return fromJson(TaskCreateRequestSchema, { ...json, task_guid: guid, log_guid: guid, ...overrides });
}

let counter = 0;
export function uniqueGuid(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

type Tasks = ServiceClient<(typeof TaskService)["method"]>;

/** Polls until the task reaches one of the states; returns it. */
export function waitForState(tasks: Tasks, guid: string, states: TaskState[], timeoutMs = 120_000): Promise<Task> {
  return eventually(
    `task ${guid} to reach ${states.map((s) => TaskState[s]).join("/")}`,
    async () => {
      const task = await tasks.getTask({ taskGuid: guid });
      return states.includes(task.state) ? task : undefined;
    },
    timeoutMs,
  );
}

/** Containers on this Docker engine that belong to the task (by any label value or name naming its guid). */
export async function containersOf(guid: string): Promise<Docker.ContainerInfo[]> {
  const docker = new Docker();
  const all = await docker.listContainers({ all: true });
  return all.filter((c) => c.Names.some((n) => n.includes(guid)) || Object.values(c.Labels ?? {}).includes(guid));
}
