#!/bin/sh
# The entrypoint of the diego image: the first argument names what to run, the rest are its flags
# (every setting may also come from the environment: DIEGO_BBS_*, DIEGO_AUCTIONEER_*, DIEGO_CELL_*).
#
#   docker run diego bbs --etcd-endpoints http://etcd:2379
#   docker run diego auctioneer --bbs-address bbs:8889
#   docker run diego cell --cell-id node-1 --bbs-address bbs:8889      (needs a Docker engine's socket)
#   docker run diego diego --help                                       (the CLI)
#   docker run diego etcd --data-dir /var/lib/etcd                      (Debian's etcd 3.4)
set -eu
what=${1:-help}
[ $# -gt 0 ] && shift
case "$what" in
  bbs | auctioneer | cell) cd "/diego/packages/$what" && exec node --disable-warning=DEP0123 --import tsx src/main.ts "$@" ;;
  diego | cli) cd /diego/packages/cli && exec node --disable-warning=DEP0123 --import tsx src/main.ts "$@" ;;
  etcd) exec /usr/local/bin/etcd "$@" ;;
  help | -h | --help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    echo "diego image: unknown command '$what' (bbs, auctioneer, cell, diego, etcd)" >&2
    exit 2
    ;;
esac
