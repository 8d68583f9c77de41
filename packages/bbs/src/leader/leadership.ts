/** Whether this BBS instance is the one that runs convergence and the callback re-sends. */
export interface Leadership {
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
  /** The instance id of the leader now (this one or another), undefined when none leads. */
  leaderId(): Promise<string | undefined>;
  onChange(listener: (leader: boolean) => void): () => void;
}

/** A single instance that always leads (memory-backed BBS, tests). */
export class StaticLeadership implements Leadership {
  constructor(private readonly instanceId = "bbs") {}

  private readonly listeners = new Set<(leader: boolean) => void>();
  private leader = false;

  async start(): Promise<void> {
    this.leader = true;
    for (const l of this.listeners) l(true);
  }

  async stop(): Promise<void> {
    this.leader = false;
    for (const l of this.listeners) l(false);
  }

  isLeader(): boolean {
    return this.leader;
  }

  async leaderId(): Promise<string | undefined> {
    return this.leader ? this.instanceId : undefined;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
