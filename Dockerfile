# The image of every diego service: one image, the service chosen by its arguments:
#   docker run diego:0.1.0 packages/bbs/src/main.ts --help
#   docker run diego:0.1.0 packages/auctioneer/src/main.ts …
#   docker run -v /var/run/docker.sock:/var/run/docker.sock diego:0.1.0 packages/cell/src/main.ts …
# Build: docker build -t diego:0.1.0 .   (deploy/README.md shows how the manifests use it)
FROM node:20-slim

# The pnpm version the workspace is verified with (corepack's signature check fails offline).
RUN npm install -g pnpm@12.4.2 && npm cache clean --force

WORKDIR /diego

# Dependencies first, from the lockfile alone, so that a source change does not fetch them again.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch

COPY . .
RUN pnpm install --offline --frozen-lockfile

# Services run as the unprivileged `node` user, except the cell, which needs the Docker socket
# (the Kubernetes manifests set the user per workload).
ENV NODE_ENV=production
EXPOSE 8889 8890 9016 9017 1800 1900
ENTRYPOINT ["node", "--disable-warning=DEP0123", "--import", "tsx"]
CMD ["packages/bbs/src/main.ts", "--help"]
