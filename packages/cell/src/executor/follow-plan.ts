import type { Action } from "@diego/proto";
import type { Cursor } from "./outcome-record.js";

/**
 * How a restarted cell follows a task its earlier run left running (docs/reliability.md, "The cell keeps
 * every outcome"). Pure. A place in the action tree is a path of child indexes from the root. The cell
 * records, durably and before each leaf step begins, where the tree is (the cursor); after a restart:
 *
 * - nothing began yet (`setup`): the tree runs from its start (no process of the task ever ran);
 * - a run action's process runs at a path whose ancestors are only serial, try and emit_progress: the
 *   steps before it (in serial order) are done, the process is followed to its exit through the engine,
 *   and the steps after it run as usual, so the tree ends as it would have;
 * - anything else (a process being started, a download or upload midway, a step under parallel,
 *   codependent or timeout) cannot be resumed: the task fails with the reason.
 */

/** The child actions of a node, in order. */
export function childrenOf(action: Action): Action[] {
  const a = action.action;
  switch (a.case) {
    case "serial":
    case "parallel":
    case "codependent":
      return a.value.actions;
    case "try":
    case "timeout":
    case "emitProgress":
      return a.value.action ? [a.value.action] : [];
    default:
      return [];
  }
}

/** Every node of the tree to its path. */
export function pathsOf(root: Action): Map<Action, number[]> {
  const paths = new Map<Action, number[]>();
  const walk = (node: Action, path: number[]) => {
    paths.set(node, path);
    childrenOf(node).forEach((child, i) => walk(child, [...path, i]));
  };
  walk(root, []);
  return paths;
}

export function nodeAt(root: Action, path: readonly number[]): Action | undefined {
  let node: Action | undefined = root;
  for (const i of path) node = node && childrenOf(node)[i];
  return node;
}

const NAMES: Record<string, string> = {
  run: "a run action",
  download: "a download action",
  upload: "an upload action",
  parallel: "a parallel action",
  codependent: "a codependent action",
  timeout: "a timeout action",
};

function nameOf(action: Action): string {
  return NAMES[action.action.case ?? ""] ?? `a ${action.action.case ?? "empty"} action`;
}

/**
 * What to record when the leaf at `path` begins: a run action that can be followed after a restart
 * (`starting-process`, then `process` once the engine names it), or why it cannot be.
 */
export function cursorAtLeaf(root: Action, path: readonly number[]): Cursor {
  const leaf = nodeAt(root, path);
  if (!leaf) return { at: "unresumable", why: "was at a step missing from its action tree" };
  let node: Action = root;
  for (const i of path) {
    const kind = node.action.case;
    if (kind !== "serial" && kind !== "try" && kind !== "emitProgress")
      return { at: "unresumable", why: `ran ${nameOf(leaf)} inside ${nameOf(node)}` };
    node = childrenOf(node)[i];
  }
  if (leaf.action.case !== "run") return { at: "unresumable", why: `ran ${nameOf(leaf)}` };
  return { at: "starting-process", path: [...path] };
}

/** A node's part in following the tree from the recorded process at `target`. */
export type ReplayRole =
  /** The followed process itself. */
  | "target"
  /** On the way to it: run it (its children get their own roles). */
  | "ancestor"
  /** Finished before the process began (a serial runs in order): done, and it succeeded. */
  | "done"
  /** Not begun yet: run it as usual. */
  | "ahead";

export function replayRole(node: readonly number[], target: readonly number[] | undefined): ReplayRole {
  if (!target) return "ahead";
  for (let i = 0; i < Math.min(node.length, target.length); i++) {
    if (node[i] < target[i]) return "done";
    if (node[i] > target[i]) return "ahead";
  }
  if (node.length === target.length) return "target";
  return node.length < target.length ? "ancestor" : "ahead";
}

/** What a restarted cell does with a task its earlier run left running. */
export type Recovery =
  | { kind: "follow"; target?: { path: number[]; processId: string; output?: { stdout: number; stderr: number } } }
  | { kind: "fail"; reason: string; containerLost: boolean };

export const RESTARTED_STARTING_PROCESS = "cell restarted while starting a process of the task";

export function recoveryOf(cursor: Cursor, containerExists: boolean): Recovery {
  if (!containerExists) return { kind: "fail", reason: "", containerLost: true };
  switch (cursor.at) {
    case "setup":
      return { kind: "follow" };
    case "process":
      return {
        kind: "follow",
        target: {
          path: cursor.path,
          processId: cursor.processId,
          ...(cursor.output && { output: cursor.output }),
        },
      };
    case "starting-process":
      return { kind: "fail", reason: RESTARTED_STARTING_PROCESS, containerLost: false };
    case "unresumable":
      return { kind: "fail", reason: `cell restarted while the task ${cursor.why}`, containerLost: false };
  }
}
