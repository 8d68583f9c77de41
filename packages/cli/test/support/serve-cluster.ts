// Serves the in-process cluster for trying the CLI by hand: the real BBS (on its memory store), auctioneer
// and one cell, cell-1, on the fake runtime, whose tiny shell runs each task's script (echo, printf, sleep,
// exit…). With a scripts/make-certs directory it serves mutual TLS (the CLI then uses its client.crt).
//   node --import tsx packages/cli/test/support/serve-cluster.ts [host:port] [certdir]
import { certFiles, InProcessCluster } from "@diego/client/testing";

const [listenAddress = "127.0.0.1:0", certDir] = process.argv.slice(2);
const cluster = await InProcessCluster.start({
  listenAddress,
  tls: certDir ? { server: (name) => certFiles(certDir, name), client: certFiles(certDir, "client") } : undefined,
});
await cluster.startCell({ cellId: "cell-1", memoryMb: 1024, diskMb: 1024, maxContainers: 10 });
process.stdout.write(`BBS on ${cluster.address}\n`);
process.on("SIGTERM", () => void cluster.stop().then(() => process.exit(0)));
