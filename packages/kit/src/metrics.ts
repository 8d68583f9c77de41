import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CallObserver } from "./grpc/server.js";

/**
 * One Prometheus registry per service with the process metrics and gRPC request metrics; each
 * service adds its own (Diego's names, e.g. TasksStarted) to `registry`.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly grpcHandled: Counter;
  private readonly grpcSeconds: Histogram;

  constructor(service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
    this.grpcHandled = new Counter({
      name: "grpc_server_handled_total",
      help: "RPCs completed on the server, by method and status code.",
      labelNames: ["method", "code"],
      registers: [this.registry],
    });
    this.grpcSeconds = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time to handle an RPC, by method.",
      labelNames: ["method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  private readonly handledChildren = new Map<string, Counter.Internal>();
  private readonly secondsChildren = new Map<string, Histogram.Internal<string>>();

  /** Pass to GrpcServer as `observe`. Label children are cached: this runs on every call. */
  readonly observeGrpc: CallObserver = (method, code, seconds) => {
    const key = `${method} ${code}`;
    let handled = this.handledChildren.get(key);
    if (!handled) this.handledChildren.set(key, (handled = this.grpcHandled.labels({ method, code: String(code) })));
    handled.inc();
    let histogram = this.secondsChildren.get(method);
    if (!histogram) this.secondsChildren.set(method, (histogram = this.grpcSeconds.labels({ method })));
    histogram.observe(seconds);
  };
}
