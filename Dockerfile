# The project's images, built by scripts/build-image on root file systems it makes from Debian's own
# repositories (no registry is needed). The build context is the stage that script prepares:
#   app/   the workspace with production dependencies only     bin/node   Node.js 20
#   bin/etcd   Debian's etcd                                     bin/diego-entrypoint   deploy/image/entrypoint.sh
# Targets:
#   services  (diego:TAG)         the BBS, auctioneer, cell, diego CLI and etcd: `docker run diego:TAG bbs --help`
#   engine    (diego-engine:TAG)  Debian's dockerd, the cell DaemonSet's own Docker engine
# docs/deployment.md describes both.
ARG BASE=diego-base:bookworm
ARG ENGINE_BASE=diego-base-engine:bookworm

# Assemble and check the application tree; only its result is copied into the images.
FROM ${BASE} AS build
COPY bin/node bin/etcd bin/diego-entrypoint /usr/local/bin/
COPY app /diego
RUN set -eu; \
    chmod 0755 /usr/local/bin/node /usr/local/bin/etcd /usr/local/bin/diego-entrypoint; \
    find /diego/node_modules -type f \( -name '*.md' -o -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete; \
    rm -rf /diego/node_modules/.pnpm/@types+node@*; \
    chmod -R a+rX,go-w /diego; \
    for s in bbs auctioneer cell; do diego-entrypoint "$s" --help >/dev/null; done; \
    diego-entrypoint diego --help >/dev/null; \
    etcd --version >/dev/null

FROM ${BASE} AS services
COPY --from=build /usr/local/bin/ /usr/local/bin/
COPY --from=build /diego /diego
# tsx compiles the sources on the fly into $TMPDIR: with a read-only root file system, mount a
# writable /tmp (the manifests use an emptyDir; `docker run --read-only --tmpfs /tmp`).
ENV NODE_ENV=production TMPDIR=/tmp
WORKDIR /diego
# The BBS, the auctioneer and etcd run as this unprivileged user; the cell runs as root (it drives a
# Docker engine), which its manifest and unit set.
USER 10001:10001
EXPOSE 8889 8890 9016 9017 1800 1900 2379 2380
ENTRYPOINT ["/usr/local/bin/diego-entrypoint"]
CMD ["help"]

FROM ${ENGINE_BASE} AS engine
# dockerd for a cell pod on a node without Docker: privileged, its data on an emptyDir or a node
# path, its socket in /run/diego-docker shared with the cell container (deploy/cell.yaml). It makes
# the preloaded task image diego/busybox once the engine answers.
COPY bin/diego-engine bin/busybox-image.sh /usr/local/bin/
VOLUME /var/lib/docker
ENTRYPOINT ["/usr/local/bin/diego-engine"]
CMD ["--host=unix:///run/diego-docker/docker.sock", "--storage-driver=overlay2"]
