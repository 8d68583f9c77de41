import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  REPO,
  loadDeployment,
  referenceErrors,
  schemaErrors,
  serviceInvocation,
  settingErrors,
  unknownFieldErrors,
  type Deployment,
  type Json,
} from "./support/manifest-checks.js";

// CI validates deploy/ offline: Kubernetes schemas (kubernetes-models), unknown fields, references
// between documents, and the services' own settings.

const deployment = loadDeployment();
const find = (d: Deployment, kind: string, name: string) =>
  d.manifests.find((m) => m.doc.kind === kind && m.doc.metadata.name === name)!.doc;
const copy = (): Deployment => structuredClone(deployment);
const container = (d: Deployment, kind: string, name: string): Json =>
  find(d, kind, name).spec.template.spec.containers[0];

test("deploy/ holds etcd (StatefulSet of 3), the BBS and the auctioneer (Deployments of 2), the cell (DaemonSet) and their Services and ConfigMaps", () => {
  const kinds = deployment.manifests.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`);
  expect(kinds).toEqual(
    expect.arrayContaining([
      "Namespace/diego",
      "StatefulSet/etcd",
      "Service/etcd",
      "Deployment/bbs",
      "Service/bbs",
      "ConfigMap/diego-bbs-config",
      "Deployment/auctioneer",
      "Service/auctioneer",
      "ConfigMap/diego-auctioneer-config",
      "DaemonSet/cell",
      "ConfigMap/diego-cell-config",
    ]),
  );
  expect(find(deployment, "StatefulSet", "etcd").spec.replicas).toBe(3);
  expect(find(deployment, "Deployment", "bbs").spec.replicas).toBe(2);
  expect(find(deployment, "Deployment", "auctioneer").spec.replicas).toBe(2);
});

test("the cell DaemonSet runs its own Docker engine by default, its socket on a volume shared with the cell", () => {
  const pod = find(deployment, "DaemonSet", "cell").spec.template.spec;
  const engine = pod.containers.find((c: Json) => c.name === "engine");
  expect(engine.image).toMatch(/^diego-engine:/);
  expect(engine.securityContext.privileged).toBe(true);
  expect(engine.args).toContain("--host=unix:///run/diego-docker/docker.sock");
  expect(pod.volumes).toEqual(expect.arrayContaining([{ name: "docker-socket", emptyDir: {} }]));
  expect(pod.volumes.some((v: Json) => v.hostPath?.path === "/var/run/docker.sock")).toBe(false);
  const cell = container(deployment, "DaemonSet", "cell");
  expect(serviceInvocation(cell)?.flags).toContain("--docker-socket=/run/diego-docker/docker.sock");
  for (const c of [cell, engine])
    expect(c.volumeMounts).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "docker-socket", mountPath: "/run/diego-docker" })]),
    );
  // Both see the work directory at the same path: the engine bind-mounts files from it into task containers.
  for (const c of [cell, engine])
    expect(c.volumeMounts).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "work", mountPath: "/var/lib/diego-cell" })]),
    );
  // The documented option for nodes with Docker drops the engine and mounts the node's socket.
  const patch = readFileSync(join(REPO, "deploy/node-docker/cell-node-docker.yaml"), "utf8");
  expect(patch).toMatch(/- name: engine\n\s+\$patch: delete/);
  expect(readFileSync(join(REPO, "deploy/node-docker/kustomization.yaml"), "utf8")).toContain("cell-node-docker.yaml");
});

test("only the BBS reaches etcd, only the BBS and the auctioneer reach cells, the BBS and auctioneer spread over nodes and zones", () => {
  const policy = (name: string) => find(deployment, "NetworkPolicy", name).spec;
  const sources = (name: string) =>
    policy(name).ingress.flatMap((r: Json) =>
      (r.from ?? []).map((f: Json) => f.podSelector.matchLabels["app.kubernetes.io/name"]),
    );
  expect(sources("cell").sort()).toEqual(["auctioneer", "bbs"]);
  expect(sources("etcd")).toContain("bbs");
  expect(sources("etcd")).not.toContain("auctioneer");
  expect(sources("etcd")).not.toContain("cell");
  // etcd speaks TLS only and requires a client certificate of its own CA, which only the BBS has.
  const etcd = container(deployment, "StatefulSet", "etcd");
  expect(etcd.args).toEqual(expect.arrayContaining(["--client-cert-auth", "--peer-client-cert-auth"]));
  expect(
    etcd.args.filter((a: string) => /urls=/.test(a) && !/metrics/.test(a)).every((a: string) => !a.includes("http://")),
  ).toBe(true);
  const bbsFlags = serviceInvocation(container(deployment, "Deployment", "bbs"))!.flags;
  expect(bbsFlags.find((f) => f.startsWith("--etcd-endpoints="))).toMatch(/^--etcd-endpoints=https:/);
  expect(bbsFlags).toEqual(expect.arrayContaining([expect.stringMatching(/^--etcd-cert-file=/)]));
  for (const name of ["bbs", "auctioneer"]) {
    const spread = find(deployment, "Deployment", name).spec.template.spec.topologySpreadConstraints;
    expect(spread.map((t: Json) => t.topologyKey).sort()).toEqual([
      "kubernetes.io/hostname",
      "topology.kubernetes.io/zone",
    ]);
    expect(find(deployment, "PodDisruptionBudget", name).spec.minAvailable).toBe(1);
    const c = container(deployment, "Deployment", name);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(find(deployment, "Deployment", name).spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  }
});

test("every manifest is valid against the Kubernetes schemas", async () => {
  expect(await schemaErrors(deployment.manifests)).toEqual([]);
});

test("no manifest has a field Kubernetes does not know", () => {
  expect(unknownFieldErrors(deployment.manifests)).toEqual([]);
}, 120_000);

test("every ConfigMap, Secret, Service and port referenced exists, selectors match labels, every container has probes and resources", () => {
  expect(referenceErrors(deployment)).toEqual([]);
});

test("every flag and DIEGO_* variable passes the service's own config loader, with mutual TLS from mounted Secrets", () => {
  expect(settingErrors(deployment)).toEqual([]);
});

test("the services run from the image scripts/build-image builds", () => {
  const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
  expect(dockerfile).toMatch(/^ARG BASE=diego-base:bookworm$/m);
  expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/diego-entrypoint"\]$/m);
  expect(dockerfile).toMatch(/^USER 10001:10001$/m);
  for (const [kind, name] of [
    ["Deployment", "bbs"],
    ["Deployment", "auctioneer"],
    ["DaemonSet", "cell"],
  ]) {
    const invocation = serviceInvocation(container(deployment, kind, name));
    expect(invocation?.service).toBe(name);
    expect(existsSync(join(REPO, "packages", name, "src", "main.ts"))).toBe(true);
  }
});

describe("the checks catch what they should", () => {
  test("a wrong type or a missing required field", async () => {
    const d = copy();
    find(d, "Deployment", "bbs").spec.replicas = "two";
    delete container(d, "DaemonSet", "cell").name;
    const errors = await schemaErrors(d.manifests);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/bbs\.yaml.*Deployment\/bbs: .*replicas must be integer/),
        expect.stringMatching(/cell\.yaml.*containers\/0 must have required property name/),
      ]),
    );
  });

  test("an unknown (mistyped) field", () => {
    const d = copy();
    const c = container(d, "Deployment", "auctioneer");
    c.readinesProbe = c.readinessProbe;
    expect(unknownFieldErrors(d.manifests)).toEqual([
      expect.stringMatching(/auctioneer\.yaml.*'readinesProbe' does not exist/),
    ]);
  }, 120_000);

  test("a missing ConfigMap or Secret, a selector that matches nothing, a missing probe", () => {
    const d = copy();
    container(d, "Deployment", "bbs").envFrom[0].configMapRef.name = "nope";
    find(d, "Deployment", "auctioneer").spec.template.spec.volumes.find((v: Json) => v.secret).secret.secretName =
      "nope-tls";
    find(d, "Service", "bbs").spec.selector = { "app.kubernetes.io/name": "bbss" };
    delete container(d, "StatefulSet", "etcd").livenessProbe;
    const errors = referenceErrors(d);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining("envFrom ConfigMap nope does not exist"),
        expect.stringContaining("Secret nope-tls does not exist"),
        expect.stringContaining("Service/bbs: selector matches no workload's pods"),
        expect.stringContaining("container etcd: livenessProbe is missing"),
      ]),
    );
  });

  test("a flag or variable the service does not have, a bad value, TLS not wired", () => {
    const d = copy();
    container(d, "Deployment", "bbs").args.push("--etcd-endpoint=http://x:2379");
    find(d, "ConfigMap", "diego-cell-config").data.DIEGO_CELL_MEMORY = "1";
    find(d, "ConfigMap", "diego-auctioneer-config").data.DIEGO_AUCTIONEER_LOCK_TTL = "soon";
    const errors = settingErrors(d);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Deployment\/bbs container bbs: .*etcd-endpoint/),
        expect.stringContaining("DIEGO_CELL_MEMORY is not a setting of the cell"),
        expect.stringMatching(/DIEGO_AUCTIONEER_LOCK_TTL: must be a duration/),
      ]),
    );
    const noTls = copy();
    const cell = container(noTls, "DaemonSet", "cell");
    cell.args = cell.args.filter((a: string) => !a.startsWith("--tls-key-file"));
    expect(settingErrors(noTls)).toEqual([expect.stringContaining("container cell: --tls-key-file is not set")]);
  });
});
