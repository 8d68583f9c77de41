import { posix } from "node:path";
import { HELPER_BUSYBOX, type ContainerRuntime } from "../runtime/container-runtime.js";
import { firstFile } from "../runtime/tar-files.js";

/** Runs a helper busybox command as root in the container; rejects with its stderr when it fails. */
export async function helper(runtime: ContainerRuntime, id: string, args: string[]): Promise<void> {
  const errs: Buffer[] = [];
  const handle = await runtime.exec(
    id,
    { argv: [HELPER_BUSYBOX, ...args], env: [], user: "", dir: "", nofile: 0 },
    { stdout: () => undefined, stderr: (c) => errs.push(c) },
  );
  const { exitCode } = await handle.exited;
  if (exitCode !== 0)
    throw new Error(Buffer.concat(errs).toString("utf8").trim() || `${args[0]} exited with status ${exitCode}`);
}

/** The home directory of a user from the container's /etc/passwd; / when unknown. */
export async function homeOf(runtime: ContainerRuntime, id: string, user: string): Promise<string> {
  const name = user || "root";
  try {
    const file = await firstFile(await runtime.getArchive(id, "/etc/passwd"), 1024 * 1024);
    for (const line of file?.data.toString("utf8").split("\n") ?? []) {
      const f = line.split(":");
      if (f[0] === name || f[2] === name) return f[5] || "/";
    }
  } catch {
    // no passwd file
  }
  return name === "root" ? "/root" : "/";
}

/**
 * The directory a run action without `dir` starts in: its user's home, made (owned by the user) when the
 * image lacks it, as Garden does. `existed`: it was there already.
 */
export async function homeDirFor(
  runtime: ContainerRuntime,
  id: string,
  user: string,
): Promise<{ dir: string; existed: boolean }> {
  const home = await homeOf(runtime, id, user);
  if (await runtime.isDirectory(id, home)) return { dir: home, existed: true };
  await helper(runtime, id, ["mkdir", "-p", home]);
  if (user && user !== "root") await helper(runtime, id, ["chown", user, home]);
  return { dir: home, existed: false };
}

/**
 * Users' home directories as images hold them (docs/performance.md, "Home directories"): a user's home
 * from the image's /etc/passwd, kept only when it is a directory in the image. Keyed by the image's id,
 * which names its content (never by its name, which can be given to another image). Filled only from
 * containers no step had touched before the read ended, so what it holds is the image's own, never
 * what a task wrote; the oldest entry goes first past `max`.
 */
export class ImageHomes {
  private readonly homes = new Map<string, string>();

  constructor(private readonly max = 256) {}

  get(image: string, user: string): string | undefined {
    return this.homes.get(`${image}\0${user}`);
  }

  set(image: string, user: string, home: string): void {
    const key = `${image}\0${user}`;
    this.homes.delete(key);
    this.homes.set(key, home);
    if (this.homes.size > this.max) this.homes.delete(this.homes.keys().next().value!);
  }

  get size(): number {
    return this.homes.size;
  }
}

export function resolveIn(home: string, path: string): string {
  return posix.isAbsolute(path) ? path : posix.join(home, path);
}
