import { readFileSync } from "node:fs";
import { DiegoError } from "@diego/models";

/** The capabilities an unprivileged task keeps (Docker's default set less MKNOD, NET_RAW, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP). */
export const TASK_CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "NET_BIND_SERVICE",
];

const CAPABILITY_NAMES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
]; // PERFMON, BPF and CHECKPOINT_RESTORE are unknown to Docker 20.10's capability list

let hostPrivileged: boolean | undefined;

/**
 * Whether this host can give a container Docker's Privileged mode: its capability bounding set holds
 * every capability Docker knows (on a sandboxed host --privileged fails with "unable to apply caps").
 * Where it cannot, privileged tasks are refused; there is no unconfined fallback.
 */
export function hostAllowsPrivileged(): boolean {
  if (hostPrivileged !== undefined) return hostPrivileged;
  let bounding = -1n;
  try {
    const m = /^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) bounding = BigInt(`0x${m[1]}`);
  } catch {
    // not Linux: assume everything
  }
  hostPrivileged = CAPABILITY_NAMES.every((_, bit) => bounding < 0n || (bounding >> BigInt(bit)) & 1n);
  return hostPrivileged;
}

/** What every privileged container gets: Docker's Privileged mode, and only where the host can give it. */
export function privilegedConfig(): Record<string, unknown> {
  if (!hostAllowsPrivileged())
    throw new DiegoError(
      "FAILED_PRECONDITION",
      "this host cannot give a container Docker's Privileged mode (its capability bounding set is incomplete); privileged tasks are refused",
    );
  return { Privileged: true };
}
