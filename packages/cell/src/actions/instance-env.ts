import type { NetworkInterfaceInfo } from "node:os";

/**
 * Diego's networking variables of a task's processes: the cell's and the container's addresses, and no
 * ports (tasks have none). They come before the task's and the action's env, which override them.
 */
export function instanceVariables(cellIp: string, containerIp: string): string[] {
  return [
    `CF_INSTANCE_IP=${cellIp}`,
    `CF_INSTANCE_INTERNAL_IP=${containerIp}`,
    "CF_INSTANCE_ADDR=",
    "CF_INSTANCE_PORT=",
    "CF_INSTANCE_PORTS=[]",
  ];
}

const WILDCARDS = new Set(["", "0.0.0.0", "::", "[::]"]);

/**
 * The cell's address for CF_INSTANCE_IP, from the host of its advertised (or listen) `host:port`: the
 * host itself, without IPv6 brackets; for a wildcard, the first external IPv4 address of the host's
 * interfaces (else 127.0.0.1).
 */
export function cellIp(address: string, interfaces: Record<string, NetworkInterfaceInfo[] | undefined>): string {
  const colon = address.lastIndexOf(":");
  const host = colon < 0 ? address : address.slice(0, colon);
  if (!WILDCARDS.has(host)) return host.replace(/^\[(.*)\]$/, "$1");
  for (const list of Object.values(interfaces))
    for (const i of list ?? []) if (i.family === "IPv4" && !i.internal) return i.address;
  return "127.0.0.1";
}
