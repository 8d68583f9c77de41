import { failedToFetchImage, isRootFsError, parseRootFs } from "@diego/models";
import type { Task } from "@diego/proto";
import type { ContainerRuntime } from "../runtime/container-runtime.js";

/** What a root_fs means on this cell: an image reference, or why the cell cannot run it. */
export function imageFor(rootFs: string, preloaded: Record<string, string>): { image: string } | { error: string } {
  const parsed = parseRootFs(rootFs);
  if (isRootFsError(parsed)) return { error: failedToFetchImage(rootFs, parsed.error) };
  if (parsed.scheme === "preloaded") {
    const image = preloaded[parsed.name];
    return image ? { image } : { error: failedToFetchImage(rootFs, `${parsed.name} is not preloaded on this cell`) };
  }
  return { image: parsed.image };
}

/**
 * Makes the task's image present: used when local, pulled otherwise (with the task's registry
 * credentials). Gives its reference and the id it names now. Rejects with `failed to fetch image
 * <ref>: <reason>`.
 */
export async function ensureImage(
  runtime: ContainerRuntime,
  task: Task,
  preloaded: Record<string, string>,
): Promise<{ image: string; imageId: string }> {
  const resolved = imageFor(task.rootFs, preloaded);
  if ("error" in resolved) throw new Error(resolved.error);
  const { image } = resolved;
  const local = await runtime.imageId(image);
  if (local !== undefined) return { image, imageId: local };
  if (task.rootFs.startsWith("preloaded:"))
    throw new Error(failedToFetchImage(task.rootFs, `preloaded image ${image} is not on this host`));
  try {
    const auth = task.imageUsername ? { username: task.imageUsername, password: task.imagePassword } : undefined;
    await runtime.pullImage(image, auth);
    const pulled = await runtime.imageId(image);
    if (pulled === undefined) throw new Error("the engine does not have the image after pulling it");
    return { image, imageId: pulled };
  } catch (err) {
    throw new Error(failedToFetchImage(image, (err as Error).message.trim()));
  }
}
