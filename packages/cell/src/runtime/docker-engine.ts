import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type Docker from "dockerode";
import { engineMessage } from "./docker-errors.js";
import type { DockerRuntime } from "./docker-runtime.js";
import { firstFile } from "./tar-files.js";

/**
 * The Docker engine's set-up and probes, done once when a cell starts: the helper busybox every container
 * mounts, whether disk quotas hold, and the engine's storage driver and data root. The container calls are
 * DockerRuntime's.
 */
export class DockerEngine {
  private readonly docker: Docker;

  constructor(
    private readonly runtime: DockerRuntime,
    private readonly helperDir: string,
  ) {
    this.docker = runtime.docker;
  }

  /**
   * Puts a static busybox into the helper directory, copied out of `image` (its /bin/busybox), unless
   * one is there already.
   */
  async prepareHelper(image: string): Promise<void> {
    const target = join(this.helperDir, "busybox");
    if (
      await stat(target).then(
        (s) => s.size > 0,
        () => false,
      )
    )
      return;
    await mkdir(this.helperDir, { recursive: true });
    if ((await this.runtime.imageId(image)) === undefined) await this.runtime.pullImage(image);
    const c = await this.docker.createContainer({
      Image: image,
      Entrypoint: ["/bin/busybox"],
      Cmd: ["true"],
      Labels: { "diego.helper": "1" },
    });
    try {
      const file = await firstFile((await c.getArchive({ path: "/bin/busybox" })) as NodeJS.ReadableStream);
      if (!file || file.data.length === 0) throw new Error(`${image} has no /bin/busybox`);
      const tmp = `${target}.${process.pid}`;
      await writeFile(tmp, file.data, { mode: 0o755 });
      await rename(tmp, target);
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Whether disk_mb can be enforced: a container with a 16M size quota (the driver must accept it)
   * writes 40M (the write must fail). btrfs with inconsistent qgroups accepts quotas it does not
   * enforce; this catches that too.
   */
  async probeDiskQuota(image: string): Promise<{ enforced: boolean; reason: string }> {
    const { driver } = await this.engineInfo();
    let c: Docker.Container;
    try {
      c = await this.docker.createContainer({
        Image: image,
        Entrypoint: ["/bin/busybox"],
        Cmd: ["sh", "-c", "dd if=/dev/zero of=/tmp/diego-quota-probe bs=1M count=40 2>/dev/null"],
        Labels: { "diego.helper": "1" },
        HostConfig: { StorageOpt: { size: "16M" }, NetworkMode: "none" },
      });
    } catch (err) {
      return { enforced: false, reason: `storage driver ${driver} refuses a size quota: ${engineMessage(err)}` };
    }
    try {
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      return StatusCode !== 0
        ? { enforced: true, reason: `storage driver ${driver} enforces size quotas` }
        : {
            enforced: false,
            reason: `storage driver ${driver} accepts a size quota but does not enforce it (a 40M write passed a 16M quota; on btrfs run \`btrfs quota rescan -w <data root>\`)`,
          };
    } catch (err) {
      return { enforced: false, reason: `quota probe failed: ${engineMessage(err)}` };
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  /** The engine's storage driver and data root, for the disk quota probe and capacity. */
  async engineInfo(): Promise<{ driver: string; dataRoot: string }> {
    const info = (await this.docker.info()) as { Driver: string; DockerRootDir: string };
    return { driver: info.Driver, dataRoot: info.DockerRootDir };
  }
}
