import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/** One simulated host: a network namespace joined to the bridge by a veth pair. */
export interface NetnsHost {
  name: string;
  netns: string;
  ip: string;
  /** The command prefix that runs a program inside the namespace. */
  wrapper: string[];
}

/**
 * Separate hosts on one machine: a bridge with an address of the machine on it, and a network
 * namespace per host joined to it by a veth pair. Services on the machine listen on the bridge
 * address; a host is cut off from them by iptables rules inside its namespace (packets dropped both
 * ways, as a real partition does: no reset, no error, just silence). Needs root. Every name is
 * unique to this instance, and destroy() (also run when the process exits) removes all of it.
 */
export class HostNetwork {
  private readonly hosts: NetnsHost[] = [];
  private destroyed = false;
  private readonly onExit = () => this.destroySync();

  private constructor(
    readonly id: string,
    readonly bridge: string,
    /** The machine's address on the bridge: where services that hosts reach listen. */
    readonly gatewayIp: string,
    private readonly subnet: string,
  ) {
    process.once("exit", this.onExit);
  }

  static async create(): Promise<HostNetwork> {
    if (process.getuid?.() !== 0) throw new Error("HostNetwork needs root (ip netns, iptables)");
    const id = randomBytes(3).toString("hex");
    const routes = (await run("ip", ["-4", "route"])).stdout;
    let third = 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = 100 + (randomBytes(1)[0]! % 150);
      if (!routes.includes(`10.213.${candidate}.`)) {
        third = candidate;
        break;
      }
    }
    if (!third) throw new Error("no free 10.213.x.0/24 subnet for the fault network");
    const net = new HostNetwork(id, `dfb${id}`, `10.213.${third}.1`, `10.213.${third}`);
    try {
      await run("ip", ["link", "add", net.bridge, "type", "bridge"]);
      await run("ip", ["addr", "add", `${net.gatewayIp}/24`, "dev", net.bridge]);
      await run("ip", ["link", "set", net.bridge, "up"]);
    } catch (err) {
      net.destroySync();
      throw err;
    }
    return net;
  }

  /** Adds a host (its namespace, veth pair and address) and returns it. */
  async addHost(name: string): Promise<NetnsHost> {
    const n = this.hosts.length + 1;
    if (n > 100) throw new Error("at most 100 hosts per HostNetwork");
    const host: NetnsHost = {
      name,
      netns: `dfn-${this.id}-${n}`,
      ip: `${this.subnet}.${10 + n}`,
      wrapper: ["ip", "netns", "exec", `dfn-${this.id}-${n}`],
    };
    this.hosts.push(host);
    const outside = `dfh${this.id}${n}`;
    const inside = `dfp${this.id}${n}`;
    const inNs = (...args: string[]) => run("ip", ["netns", "exec", host.netns, ...args]);
    await run("ip", ["netns", "add", host.netns]);
    await run("ip", ["link", "add", outside, "type", "veth", "peer", "name", inside]);
    await run("ip", ["link", "set", outside, "master", this.bridge]);
    await run("ip", ["link", "set", outside, "up"]);
    await run("ip", ["link", "set", inside, "netns", host.netns]);
    await inNs("ip", "addr", "add", `${host.ip}/24`, "dev", inside);
    await inNs("ip", "link", "set", inside, "up");
    await inNs("ip", "link", "set", "lo", "up");
    return host;
  }

  /** Cuts the host off from the machine (and so from every service on the bridge address). */
  async cut(host: NetnsHost): Promise<void> {
    const ipt = (...args: string[]) => run("ip", ["netns", "exec", host.netns, "iptables", ...args]);
    await ipt("-A", "INPUT", "-s", this.gatewayIp, "-j", "DROP");
    await ipt("-A", "OUTPUT", "-d", this.gatewayIp, "-j", "DROP");
  }

  /** Lifts the cut. */
  async heal(host: NetnsHost): Promise<void> {
    const ipt = (...args: string[]) => run("ip", ["netns", "exec", host.netns, "iptables", ...args]);
    await ipt("-F", "INPUT");
    await ipt("-F", "OUTPUT");
  }

  /** Removes every namespace, veth and the bridge (processes inside must have been stopped). */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener("exit", this.onExit);
    const quiet = (args: string[]) => {
      try {
        execFileSync("ip", args, { stdio: "ignore", timeout: 10_000 });
      } catch {
        // already gone
      }
    };
    for (const host of this.hosts) quiet(["netns", "del", host.netns]);
    this.hosts.forEach((_, i) => quiet(["link", "del", `dfh${this.id}${i + 1}`]));
    quiet(["link", "del", this.bridge]);
  }
}
