#!/bin/sh
# Makes the small local task image (default diego/busybox:latest) from Debian's busybox-static on the
# Docker engine that `docker` talks to: busybox and its applets in /bin, users root, nobody and vcap
# (home /home/vcap), a world-writable /tmp. Used by the local cluster and the tests (scripts/lib/env.sh)
# and by the cell pod's own engine (deploy/image/engine.sh).
#
#   busybox-image.sh [IMAGE]
set -eu
image=${1:-diego/busybox:latest}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-image: $busybox is missing (Debian package busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/root" "$dir/home/vcap"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/sh\nvcap:x:2000:2000:vcap:/home/vcap:/bin/sh\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nvcap:x:2000:\n' >"$dir/etc/group"
chmod 1777 "$dir/tmp"
chown 2000:2000 "$dir/home/vcap"
tar -C "$dir" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
