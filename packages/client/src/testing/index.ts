// @diego/client/testing: for tests of programs that use the client. It is the private @diego/testing, whole:
// the one in-process cluster of real parts (the BBS, the auctioneer, cells on the fake runtime), a gRPC proxy
// that fails, delays or cuts chosen calls, a private etcd, free ports and `eventually`. Only this entry needs
// @diego/testing; the main entry (@diego/client) never imports it.
export {
  certFiles,
  DOCKER_GATEWAY,
  EtcdServer,
  eventually,
  freePort,
  GrpcFaultProxy,
  InProcessCluster,
  type ClusterCell,
  type ClusterCellOptions,
  type ClusterOptions,
  type Fault,
  type GrpcFaultProxyOptions,
  type Transition,
} from "@diego/testing";
