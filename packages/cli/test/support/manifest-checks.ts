/* eslint-disable @typescript-eslint/no-explicit-any */
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";
import { parseAllDocuments } from "yaml";
import { auctioneerSettings } from "@diego/auctioneer";
import { bbsSettings } from "@diego/bbs";
import { cellSettings } from "@diego/cell";
import { envName, flagName, loadConfig, type SettingsSpec } from "@diego/kit";

/**
 * Offline checks of the Kubernetes manifests in deploy/: each document against the Kubernetes schema
 * (kubernetes-models), unknown fields (TypeScript's excess-property check against the same models'
 * types, since the schemas allow extra keys), references between documents, and the services' own
 * settings (every flag and DIEGO_* variable must pass the service's config loader).
 */

export type Json = any;

export interface Manifest {
  file: string;
  index: number;
  doc: Json;
}

export interface Deployment {
  manifests: Manifest[];
  kustomization: Json;
  /** Files of deploy/ other than kustomization.yaml. */
  files: string[];
}

export const REPO = resolve(import.meta.dirname, "../../../..");
export const DEPLOY_DIR = join(REPO, "deploy");
const CLI_DIR = resolve(import.meta.dirname, "../..");

export function loadDeployment(dir = DEPLOY_DIR): Deployment {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml")
    .sort();
  const manifests: Manifest[] = [];
  for (const file of files) {
    parseAllDocuments(readFileSync(join(dir, file), "utf8")).forEach((d, index) => {
      if (d.errors.length) throw new Error(`${file} document ${index}: ${d.errors.map((e) => e.message).join("; ")}`);
      const doc = d.toJS();
      if (doc !== null && doc !== undefined) manifests.push({ file, index, doc });
    });
  }
  const kustomization = parseAllDocuments(readFileSync(join(dir, "kustomization.yaml"), "utf8"))[0].toJS();
  return { manifests, kustomization, files };
}

const where = (m: Manifest) => `${m.file}#${m.index} ${m.doc?.kind ?? "?"}/${m.doc?.metadata?.name ?? "?"}`;

/** Each document against its Kubernetes schema. */
export async function schemaErrors(manifests: Manifest[]): Promise<string[]> {
  const errors: string[] = [];
  for (const m of manifests) {
    const { apiVersion, kind } = m.doc ?? {};
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      errors.push(`${where(m)}: apiVersion and kind are required`);
      continue;
    }
    let Model: any;
    try {
      Model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
    } catch {
      Model = undefined;
    }
    if (typeof Model !== "function") {
      errors.push(`${where(m)}: no Kubernetes schema for ${apiVersion} ${kind}`);
      continue;
    }
    try {
      new Model(m.doc).validate();
    } catch (err) {
      errors.push(`${where(m)}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/** Unknown fields anywhere in a document, found by TypeScript's excess-property check against kubernetes-models' types. */
export function unknownFieldErrors(manifests: Manifest[]): string[] {
  const fileName = join(CLI_DIR, "__deploy_manifests_check__.ts");
  const spans: { start: number; end: number; m: Manifest }[] = [];
  let text = "";
  manifests.forEach((m, i) => {
    const { apiVersion, kind } = m.doc;
    text += `import type { I${kind} as T${i} } from "kubernetes-models/${apiVersion}/${kind}";\n`;
  });
  manifests.forEach((m, i) => {
    const start = text.length;
    text += `export const doc${i}: T${i} = ${JSON.stringify(m.doc, null, 1)};\n`;
    spans.push({ start, end: text.length, m });
  });
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName
      ? ts.createSourceFile(name, text, languageVersion, true)
      : getSourceFile(name, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === fileName ? text : readFile(name));
  const program = ts.createProgram([fileName], options, host);
  const source = program.getSourceFile(fileName)!;
  return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) => {
    const span = spans.find((s) => d.start !== undefined && d.start >= s.start && d.start < s.end);
    const message = ts
      .flattenDiagnosticMessageText(d.messageText, "\n")
      .split("\n")[0]
      .replace(/'"([^"]+)"'/g, "'$1'");
    return `${span ? where(span.m) : "(imports)"}: ${message}`;
  });
}

type Workload = { m: Manifest; podLabels: Record<string, string>; pod: Json };

function workloads(manifests: Manifest[]): Workload[] {
  return manifests
    .filter((m) => ["Deployment", "StatefulSet", "DaemonSet"].includes(m.doc.kind))
    .map((m) => ({
      m,
      podLabels: m.doc.spec?.template?.metadata?.labels ?? {},
      pod: m.doc.spec?.template?.spec ?? {},
    }));
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** References between documents, and the operating habits every workload must have. */
export function referenceErrors(deployment: Deployment): string[] {
  const { manifests, kustomization } = deployment;
  const errors: string[] = [];
  const named = (kind: string) =>
    new Set(manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc.metadata?.name));
  const configMaps = named("ConfigMap");
  const secretFiles = new Map<string, Set<string>>();
  for (const m of manifests.filter((x) => x.doc.kind === "Secret"))
    secretFiles.set(m.doc.metadata.name, new Set(Object.keys({ ...m.doc.data, ...m.doc.stringData })));
  for (const g of kustomization?.secretGenerator ?? []) {
    secretFiles.set(g.name, new Set((g.files ?? []).map((f: string) => f.split("=")[0])));
  }
  const services = manifests.filter((m) => m.doc.kind === "Service");
  const all = workloads(manifests);

  // kustomization: every file is a resource and every resource a file.
  const resources: string[] = kustomization?.resources ?? [];
  for (const f of deployment.files)
    if (!resources.includes(f)) errors.push(`kustomization.yaml: ${f} is not listed under resources`);
  for (const r of resources)
    if (!deployment.files.includes(r)) errors.push(`kustomization.yaml: resource ${r} does not exist`);

  for (const m of manifests) {
    const ns = m.doc.metadata?.namespace;
    if (m.doc.kind !== "Namespace" && ns !== "diego")
      errors.push(`${where(m)}: must be in namespace diego (is ${ns ?? "unset"})`);
    if (m.doc.metadata?.labels?.["app.kubernetes.io/part-of"] !== "diego")
      errors.push(`${where(m)}: label app.kubernetes.io/part-of=diego is missing`);
  }

  for (const w of all) {
    const at = where(w.m);
    const selector = w.m.doc.spec?.selector?.matchLabels;
    if (!matches(selector, w.podLabels)) errors.push(`${at}: spec.selector does not match the pod template's labels`);
    if (w.m.doc.kind === "StatefulSet") {
      const svc = services.find((s) => s.doc.metadata.name === w.m.doc.spec.serviceName);
      if (!svc) errors.push(`${at}: serviceName ${w.m.doc.spec.serviceName} is not a Service`);
      else if (svc.doc.spec.clusterIP !== "None")
        errors.push(`${at}: Service ${svc.doc.metadata.name} must be headless`);
    }
    const volumes = new Map<string, Json>((w.pod.volumes ?? []).map((v: Json) => [v.name, v]));
    const claimTemplates = new Set((w.m.doc.spec?.volumeClaimTemplates ?? []).map((c: Json) => c.metadata?.name));
    for (const v of volumes.values()) {
      if (v.configMap && !configMaps.has(v.configMap.name))
        errors.push(`${at}: volume ${v.name}: ConfigMap ${v.configMap.name} does not exist`);
      if (v.secret && !secretFiles.has(v.secret.secretName))
        errors.push(`${at}: volume ${v.name}: Secret ${v.secret.secretName} does not exist`);
    }
    for (const c of [...(w.pod.initContainers ?? []), ...(w.pod.containers ?? [])]) {
      const cat = `${at} container ${c.name}`;
      for (const e of c.envFrom ?? []) {
        if (e.configMapRef && !configMaps.has(e.configMapRef.name))
          errors.push(`${cat}: envFrom ConfigMap ${e.configMapRef.name} does not exist`);
        if (e.secretRef && !secretFiles.has(e.secretRef.name))
          errors.push(`${cat}: envFrom Secret ${e.secretRef.name} does not exist`);
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        if (cm && !configMaps.has(cm.name)) errors.push(`${cat}: env ${e.name}: ConfigMap ${cm.name} does not exist`);
        const sk = e.valueFrom?.secretKeyRef;
        if (sk && !secretFiles.get(sk.name)?.has(sk.key))
          errors.push(`${cat}: env ${e.name}: Secret ${sk.name} has no key ${sk.key}`);
      }
      for (const vm of c.volumeMounts ?? []) {
        if (!volumes.has(vm.name) && !claimTemplates.has(vm.name))
          errors.push(`${cat}: volumeMount ${vm.name} has no volume`);
      }
      const portNames = new Set((c.ports ?? []).map((p: Json) => p.name));
      for (const probe of ["livenessProbe", "readinessProbe"] as const) {
        if (!c[probe]) errors.push(`${cat}: ${probe} is missing`);
        const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
        if (typeof port === "string" && !portNames.has(port))
          errors.push(`${cat}: ${probe} port ${port} is not a named port of the container`);
      }
      for (const kind of ["requests", "limits"] as const) {
        for (const r of ["cpu", "memory"])
          if (!c.resources?.[kind]?.[r]) errors.push(`${cat}: resources.${kind}.${r} is missing`);
      }
    }
  }

  for (const s of services) {
    const at = where(s);
    const targets = all.filter((w) => matches(s.doc.spec?.selector, w.podLabels));
    if (targets.length === 0) {
      errors.push(`${at}: selector matches no workload's pods`);
      continue;
    }
    for (const p of s.doc.spec.ports ?? []) {
      if (typeof p.targetPort !== "string") continue;
      for (const w of targets) {
        const has = (w.pod.containers ?? []).some((c: Json) =>
          (c.ports ?? []).some((cp: Json) => cp.name === p.targetPort),
        );
        if (!has) errors.push(`${at}: port ${p.name} targets ${p.targetPort}, which ${where(w.m)} does not name`);
      }
    }
  }
  for (const m of manifests.filter((x) => x.doc.kind === "PodDisruptionBudget")) {
    if (!all.some((w) => matches(m.doc.spec?.selector?.matchLabels, w.podLabels)))
      errors.push(`${where(m)}: selector matches no workload's pods`);
  }
  for (const m of manifests.filter((x) => x.doc.kind === "NetworkPolicy")) {
    const selectors = [
      m.doc.spec?.podSelector?.matchLabels,
      ...(m.doc.spec?.ingress ?? []).flatMap((r: Json) => (r.from ?? []).map((f: Json) => f.podSelector?.matchLabels)),
    ];
    for (const sel of selectors.filter(Boolean)) {
      if (!all.some((w) => matches(sel, w.podLabels)))
        errors.push(`${where(m)}: pod selector ${JSON.stringify(sel)} matches no workload's pods`);
    }
  }
  return errors;
}

const SERVICES: Record<string, { spec: SettingsSpec; envPrefix: string }> = {
  bbs: { spec: bbsSettings, envPrefix: "DIEGO_BBS" },
  auctioneer: { spec: auctioneerSettings, envPrefix: "DIEGO_AUCTIONEER" },
  cell: { spec: cellSettings, envPrefix: "DIEGO_CELL" },
};

/** What Kubernetes puts for $(VAR) references to downward-API variables, for the services' config loader. */
const SAMPLE_ENV: Record<string, string> = {
  NODE_NAME: "node-1",
  POD_NAME: "pod-1",
  POD_IP: "10.1.2.3",
  POD_NAMESPACE: "diego",
};

/** The flags a diego container passes to its service: plain args, or the args after a `sh -c` wrapper. */
export function serviceInvocation(container: Json): { service: string; flags: string[] } | undefined {
  const expand = (s: string) => s.replace(/(?<!\$)\$\(([A-Z_]+)\)/g, (_, v: string) => SAMPLE_ENV[v] ?? `$(${v})`);
  const args: string[] = (container.args ?? []).map(String);
  const command: string[] = container.command ?? [];
  if (command.join(" ") === "/bin/sh -c") {
    // args[0] is the script, args[1] is $0, the rest are "$@".
    const script = args[0].replace(
      /"\$\$\(echo "\$POD_IP" \| tr \. -\)\.\$POD_NAMESPACE(\.pod\.cluster\.local:\d+)"/g,
      "10-1-2-3.diego$1",
    );
    const match = /diego-entrypoint (\w+)(.*?)"\$@"/s.exec(script);
    if (!match) return undefined;
    const inline = match[2].trim().split(/\s+/).filter(Boolean);
    return { service: match[1], flags: [...inline, ...args.slice(2)].map(expand) };
  }
  // The image's entrypoint takes the service's name, then its flags.
  if (command.length) return undefined;
  return args[0] ? { service: args[0], flags: args.slice(1).map(expand) } : undefined;
}

/** Every flag and DIEGO_* variable of a diego container passes its service's own config loader; mutual TLS is wired to a mounted Secret. */
export function settingErrors(deployment: Deployment): string[] {
  const errors: string[] = [];
  const configMapData = new Map<string, Record<string, string>>(
    deployment.manifests.filter((m) => m.doc.kind === "ConfigMap").map((m) => [m.doc.metadata.name, m.doc.data ?? {}]),
  );
  const secretKeys = new Map<string, string[]>(
    (deployment.kustomization?.secretGenerator ?? []).map((g: Json) => [
      g.name,
      (g.files ?? []).map((f: string) => f.split("=")[0]),
    ]),
  );
  const seen = new Set<string>();
  for (const w of workloads(deployment.manifests)) {
    for (const c of w.pod.containers ?? []) {
      if (!String(c.image).startsWith("diego:")) continue;
      const at = `${where(w.m)} container ${c.name}`;
      const invocation = serviceInvocation(c);
      // etcd runs from the same image; its flags are etcd's own.
      if (invocation?.service === "etcd") continue;
      if (!invocation || !(invocation.service in SERVICES)) {
        errors.push(`${at}: does not run the image's bbs, auctioneer or cell`);
        continue;
      }
      seen.add(invocation.service);
      const { spec, envPrefix } = SERVICES[invocation.service];
      const env: Record<string, string> = {};
      for (const e of c.envFrom ?? []) Object.assign(env, configMapData.get(e.configMapRef?.name) ?? {});
      const known = new Set(Object.keys(spec).map((k) => envName(envPrefix, k)));
      for (const key of Object.keys(env)) {
        if (key.startsWith(`${envPrefix}_`) && !known.has(key))
          errors.push(`${at}: ${key} is not a setting of the ${invocation.service}`);
      }
      let config: Record<string, unknown> | undefined;
      try {
        const result = loadConfig(spec, {
          argv: invocation.flags,
          env,
          envPrefix,
          program: invocation.service,
          summary: "",
        });
        if ("config" in result) config = result.config as Record<string, unknown>;
      } catch (err) {
        errors.push(`${at}: ${(err as Error).message}`);
        continue;
      }
      if (!config) continue;
      // Listeners on every interface, and probes on the status port.
      const port = (address: unknown) => Number(String(address).split(":").pop());
      if (!String(config.listenAddress).startsWith("0.0.0.0:"))
        errors.push(`${at}: --${flagName("listenAddress")} must listen on 0.0.0.0`);
      const statusPort = (c.ports ?? []).find((p: Json) => p.containerPort === port(config!.statusAddress))?.name;
      if (!statusPort) errors.push(`${at}: no container port for the status address ${config.statusAddress}`);
      if (!(c.ports ?? []).some((p: Json) => p.containerPort === port(config!.listenAddress)))
        errors.push(`${at}: no container port for the gRPC address ${config.listenAddress}`);
      if (c.livenessProbe?.httpGet?.path !== "/healthz" || c.livenessProbe?.httpGet?.port !== statusPort)
        errors.push(`${at}: livenessProbe must GET /healthz on the status port`);
      if (c.readinessProbe?.httpGet?.path !== "/readyz" || c.readinessProbe?.httpGet?.port !== statusPort)
        errors.push(`${at}: readinessProbe must GET /readyz on the status port`);
      // Mutual TLS: all three files, each in a mounted Secret that has that key.
      for (const key of ["tlsCaFile", "tlsCertFile", "tlsKeyFile"]) {
        const file = config[key];
        if (typeof file !== "string") {
          errors.push(`${at}: --${flagName(key)} is not set`);
          continue;
        }
        const mount = (c.volumeMounts ?? []).find((vm: Json) => file.startsWith(`${vm.mountPath}/`));
        const volume = (w.pod.volumes ?? []).find((v: Json) => v.name === mount?.name);
        const secret = volume?.secret?.secretName;
        const name = mount ? file.slice(mount.mountPath.length + 1) : "";
        // A cell's certificate is its node's own, provisioned on the node under /etc/diego.
        if (!secret && String(volume?.hostPath?.path).startsWith("/etc/diego/") && volume.hostPath.type === "Directory")
          continue;
        if (!secret) errors.push(`${at}: --${flagName(key)} ${file} is not in a mounted Secret or a node's /etc/diego`);
        else if (!secretKeys.get(secret)?.includes(name))
          errors.push(`${at}: --${flagName(key)}: Secret ${secret} has no key ${name}`);
      }
      if (
        config.bbsAddress !== undefined &&
        invocation.service !== "bbs" &&
        config.bbsAddress !== "bbs.diego.svc.cluster.local:8889"
      ) {
        errors.push(
          `${at}: --bbs-address must be the bbs Service (bbs.diego.svc.cluster.local:8889), is ${config.bbsAddress}`,
        );
      }
    }
  }
  for (const s of Object.keys(SERVICES)) if (!seen.has(s)) errors.push(`no workload runs the ${s}`);
  return errors;
}
