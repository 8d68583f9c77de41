export {
  certFiles,
  InProcessCluster,
  type ClusterCell,
  type ClusterCellOptions,
  type ClusterOptions,
  type Transition,
} from "./cluster.js";
export { EtcdServer } from "./etcd-server.js";
export { eventually } from "./eventually.js";
export { freePort, freePorts } from "./free-port.js";
export { DOCKER_GATEWAY } from "./gateway.js";
export { percentile, steadyRate } from "./bench-figures.js";
export { GrpcFaultProxy, type Fault, type GrpcFaultProxyOptions } from "./grpc-fault-proxy.js";
