/**
 * A task's root_fs: `docker:///org/image#tag`, `docker://registry.host/org/image#tag` or `preloaded:NAME`.
 */
export type RootFs =
  | {
      scheme: "docker";
      registry: string;
      repository: string;
      tag: string;
      /** the reference Docker understands */ image: string;
    }
  | { scheme: "preloaded"; name: string };

const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REGISTRY = /^[A-Za-z0-9.-]+(?::\d+)?$/;
const PRELOADED_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const ROOT_FS_FORMS = "docker:///org/image#tag, docker://registry.host/org/image#tag or preloaded:NAME";

/** Parses a root_fs; returns a message saying what is wrong when it is not one of the accepted forms. */
export function parseRootFs(text: string): RootFs | { error: string } {
  if (text.startsWith("preloaded:")) {
    const name = text.slice("preloaded:".length);
    return PRELOADED_NAME.test(name)
      ? { scheme: "preloaded", name }
      : { error: `preloaded name ${JSON.stringify(name)} is not valid` };
  }
  if (text.startsWith("docker://")) {
    const rest = text.slice("docker://".length);
    const slash = rest.indexOf("/");
    if (slash < 0) return { error: "a docker root_fs needs a path: docker:///org/image#tag" };
    const registry = rest.slice(0, slash);
    const [path, tag = "latest", ...extra] = rest.slice(slash + 1).split("#");
    if (extra.length) return { error: "a docker root_fs has at most one #tag" };
    if (registry && !REGISTRY.test(registry))
      return { error: `registry ${JSON.stringify(registry)} is not a host name` };
    if (!REPOSITORY.test(path)) return { error: `image ${JSON.stringify(path)} is not a valid repository name` };
    if (!TAG.test(tag)) return { error: `tag ${JSON.stringify(tag)} is not valid` };
    const image = `${registry ? `${registry}/` : ""}${path}:${tag}`;
    return { scheme: "docker", registry, repository: path, tag, image };
  }
  return { error: `must be ${ROOT_FS_FORMS}` };
}

export function isRootFsError(r: RootFs | { error: string }): r is { error: string } {
  return "error" in r;
}
