/**
 * The BBS's etcd key layout under one prefix (default `/diego`; tests use a unique prefix each):
 *   <prefix>/tasks/<task_guid>   Task protobuf bytes
 *   <prefix>/logtails/<task_guid> the last output of a completed task (JSON LogLines), removed with it
 *   <prefix>/cells/<cell_id>     cell presence JSON, under a lease
 *   <prefix>/locks/<key>         LockService record JSON, under a lease
 *   <prefix>/leader              instance id of the BBS that runs convergence, under a lease
 */
export class Keys {
  readonly root: string;
  readonly tasks: string;
  readonly cells: string;
  readonly locks: string;
  readonly leader: string;
  readonly logTails: string;

  constructor(prefix: string) {
    const root = prefix.replace(/\/+$/, "");
    if (!root.startsWith("/")) throw new Error(`etcd prefix ${JSON.stringify(prefix)} must start with /`);
    this.root = root;
    this.tasks = `${root}/tasks/`;
    this.cells = `${root}/cells/`;
    this.locks = `${root}/locks/`;
    this.leader = `${root}/leader`;
    this.logTails = `${root}/logtails/`;
  }

  task(guid: string): string {
    return this.tasks + guid;
  }

  logTail(guid: string): string {
    return this.logTails + guid;
  }

  cell(cellId: string): string {
    return this.cells + cellId;
  }

  lock(key: string): string {
    return this.locks + key;
  }
}

/** The smallest key greater than every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string | Buffer): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i] < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i] += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
