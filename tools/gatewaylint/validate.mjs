// Validates Kubernetes objects of the Gateway API (gateway.networking.k8s.io) and of Envoy
// Gateway (gateway.envoyproxy.io) against their published CRD schemas, offline: the models
// of @kubernetes-models/gateway-api and @kubernetes-models/envoy-gateway (generated from the
// CRDs' OpenAPI schemas). Input: a JSON array of objects on stdin. Output: one line per
// object, "ok" or each error; exit 1 when any object is invalid or of a kind the schemas do
// not know. Run by tools/deploy/deploy_scan.py (make deploy-lint).
//
// Two checks: the schemas' own validators (types, patterns, enums, required fields), and
// unknown fields, which the CRDs let through and the API server would drop silently (a
// `timeout:` for `timeouts:` would vanish): each object is written as a typed TypeScript
// literal of the package's interface and compiled with tsc, whose excess-property check
// names any field the schema does not have.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as gatewayApi from "@kubernetes-models/gateway-api";
import * as envoyGateway from "@kubernetes-models/envoy-gateway";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGES = {
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api/gateway.networking.k8s.io",
  "gateway.networking.x-k8s.io": "@kubernetes-models/gateway-api/gateway.networking.x-k8s.io",
  "gateway.envoyproxy.io": "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io",
};

const GROUPS = {
  "gateway.networking.k8s.io": gatewayApi.gatewayNetworkingK8sIo,
  "gateway.networking.x-k8s.io": gatewayApi.gatewayNetworkingXK8sIo,
  "gateway.envoyproxy.io": envoyGateway.gatewayEnvoyproxyIo,
};

function model(apiVersion, kind) {
  const [group, version] = String(apiVersion).split("/");
  const versions = GROUPS[group];
  if (!versions) return undefined;
  const models = versions[version.replace(/[^A-Za-z0-9]/g, "")];
  const found = models && models[kind];
  return typeof found === "function" && found.apiVersion === apiVersion ? found : undefined;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let failed = 0;
const typed = [];
for (const object of objects) {
  const name = `${object.kind} ${object.metadata?.name ?? "?"} (${object.apiVersion})`;
  const Model = model(object.apiVersion, object.kind);
  if (!Model) {
    console.log(`${name}: no published schema for this apiVersion and kind`);
    failed++;
    continue;
  }
  try {
    new Model(object).validate();
    typed.push({ object, name });
  } catch (error) {
    failed++;
    const details = error.errors ?? error.details ?? [];
    if (details.length === 0) console.log(`${name}: ${error.message}`);
    for (const d of details) console.log(`${name}: ${d.instancePath || "/"} ${d.message}`);
  }
}

// unknown fields: tsc on the objects as typed literals (one per line range)
const lines = [];
const imports = new Map();
const owners = [];
typed.forEach(({ object, name }, i) => {
  const [group, version] = object.apiVersion.split("/");
  const alias = `m${imports.size}`;
  const module = `${PACKAGES[group]}/${version}`;
  if (!imports.has(module)) imports.set(module, alias);
  const text = `export const o${i}: ${imports.get(module)}.I${object.kind} = ${JSON.stringify(object, null, 1)};`;
  owners.push({ name, from: lines.length + 1, to: lines.length + text.split("\n").length });
  lines.push(...text.split("\n"));
});
const header = [...imports].map(([module, alias]) => `import type * as ${alias} from "${module}";`);
const work = mkdtempSync(join(HERE, ".check-"));
const unknown = new Map();
try {
  writeFileSync(join(work, "objects.ts"), [...header, ...lines].join("\n") + "\n");
  const tsc = join(HERE, "node_modules", "typescript", "bin", "tsc");
  const done = spawnSync(
    process.execPath,
    [tsc, "--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext",
     "--moduleResolution", "nodenext", "--target", "es2022", join(work, "objects.ts")],
    { cwd: HERE, encoding: "utf8" },
  );
  for (const line of done.stdout.split("\n")) {
    const found = /objects\.ts\((\d+),\d+\): error (TS\d+: .*)/.exec(line);
    if (!found) continue;
    const at = Number(found[1]) - header.length;
    const owner = owners.find((o) => o.from <= at && at <= o.to);
    const key = owner ? owner.name : "objects.ts";
    unknown.set(key, [...(unknown.get(key) ?? []), found[2]]);
  }
  if (done.status !== 0 && unknown.size === 0) {
    console.log(`tsc failed: ${done.stdout}${done.stderr}`);
    failed++;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
for (const { name } of typed) {
  const errors = unknown.get(name);
  if (!errors) {
    console.log(`${name}: ok`);
    continue;
  }
  failed++;
  for (const error of errors) console.log(`${name}: ${error}`);
}
if (unknown.has("objects.ts")) {
  failed++;
  for (const error of unknown.get("objects.ts")) console.log(`objects.ts: ${error}`);
}
process.exit(failed ? 1 : 0);
