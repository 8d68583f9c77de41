#!/bin/sh
# The entrypoint of the diego-engine image: Debian's dockerd for one cell pod, with its arguments
# (deploy/cell.yaml gives --host=unix:///run/diego-docker/docker.sock and the storage driver). Once
# the engine answers it makes the preloaded task image diego/busybox:latest if the engine lacks it,
# and on a btrfs data root enables the quotas that enforce disk_mb.
set -eu
dockerd "$@" &
engine=$!
trap 'kill -TERM "$engine" 2>/dev/null; wait "$engine"' TERM INT
host=$(printf '%s\n' "$@" | sed -n 's/^--host=//p' | head -n1)
export DOCKER_HOST=${host:-unix:///var/run/docker.sock}
i=0
until docker version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 120 ] || ! kill -0 "$engine" 2>/dev/null; then echo "engine: dockerd did not start" >&2; exit 1; fi
  sleep 1
done
if [ "$(docker info --format '{{.Driver}}')" = btrfs ]; then
  root=$(docker info --format '{{.DockerRootDir}}')
  btrfs quota enable "$root" 2>/dev/null || true
fi
docker image inspect diego/busybox:latest >/dev/null 2>&1 || /usr/local/bin/busybox-image.sh diego/busybox:latest
wait "$engine"
