/**
 * The docker0 gateway: where containers, the BBS and a cell reach a local test receiver. The egress
 * policy denies loopback for every task URL (callbacks, downloads, uploads), so receivers listen here.
 */
export const DOCKER_GATEWAY = "172.17.0.1";
