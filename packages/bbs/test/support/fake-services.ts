import { GrpcServer, type ServiceImpl } from "@diego/kit";
import { auctioneerv1, cellv1, type LogLine } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { silent } from "./etcd.js";

/** A fake auctioneer that records every task sent to it. */
export async function fakeAuctioneer() {
  const received: string[] = [];
  const server = new GrpcServer({ logger: silent });
  const impl: ServiceImpl<(typeof auctioneerv1.AuctioneerService)["method"]> = {
    requestTaskAuctions: (req) => {
      for (const t of req.tasks) received.push(t.taskGuid);
      return {};
    },
  };
  server.add(auctioneerv1.AuctioneerService, impl);
  const port = await server.listen("127.0.0.1:0");
  return { address: `127.0.0.1:${port}`, received, stop: () => server.shutdown(100) };
}

/** A fake cell rep: records cancels and serves canned log lines. */
export async function fakeCell(lines: MessageInitShape<typeof import("@diego/proto").LogLineSchema>[] = []) {
  const cancelled: string[] = [];
  const logRequests: { taskGuid: string; follow: boolean }[] = [];
  const server = new GrpcServer({ logger: silent });
  const impl: ServiceImpl<(typeof cellv1.CellRepService)["method"]> = {
    state: () => ({}),
    perform: () => ({}),
    cancelTask: (req) => {
      cancelled.push(req.taskGuid);
      return {};
    },
    taskLogs: async function* (req) {
      logRequests.push({ taskGuid: req.taskGuid, follow: req.follow });
      for (const line of lines) yield line;
    },
  };
  server.add(cellv1.CellRepService, impl);
  const port = await server.listen("127.0.0.1:0");
  return { address: `127.0.0.1:${port}`, cancelled, logRequests, stop: () => server.shutdown(100) };
}

export type { LogLine };
