// A TCP relay in front of an address that a test can cut and restore: what the cell sees when the
// network to the BBS fails for a while. Bytes pass through untouched; it knows nothing of gRPC.
import { connect, createServer, type Server, type Socket } from "node:net";
import { splitHostPort } from "@diego/kit";

export class TcpGate {
  private open = true;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** host:port to connect to instead of the target. */
    readonly address: string,
  ) {}

  static async start(target: string): Promise<TcpGate> {
    const { host, port } = splitHostPort(target);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const gate = new TcpGate(server, `127.0.0.1:${(server.address() as { port: number }).port}`);
    server.on("connection", (downstream) => gate.relay(downstream, host, port));
    return gate;
  }

  /** Drops every connection now and refuses new ones until `restore`. */
  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(downstream: Socket, host: string, port: number): void {
    if (!this.open) {
      downstream.destroy();
      return;
    }
    const upstream = connect(port, host);
    const drop = () => {
      downstream.destroy();
      upstream.destroy();
      this.sockets.delete(downstream);
      this.sockets.delete(upstream);
    };
    for (const s of [downstream, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true); // gRPC's small frames would otherwise wait on Nagle's algorithm at each hop
      s.on("error", drop);
      s.on("close", drop);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  }
}
