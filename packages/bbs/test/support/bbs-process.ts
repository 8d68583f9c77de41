import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export interface BbsProcess {
  child: ChildProcess;
  address: string;
  logs: string[];
  exited: Promise<number | null>;
}

/** Starts `node --import tsx packages/bbs/src/main.ts <flags>` and waits for its listening line. */
export async function spawnBbs(flags: string[]): Promise<BbsProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "packages/bbs/src/main.ts", ...flags], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error(`BBS did not start:\n${logs.join("\n")}`)), 60_000);
    createInterface({ input: child.stderr! }).on("line", (line) => logs.push(line));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logs.push(line);
      const m = /BBS listening: gRPC on (\S+),/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolveAddress(m[1]);
      }
    });
    void exited.then((code) => reject(new Error(`BBS exited with ${code}:\n${logs.join("\n")}`)));
  });
  return { child, address, logs, exited };
}
