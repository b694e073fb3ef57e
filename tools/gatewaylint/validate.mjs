// Validates Kubernetes objects of the Gateway API (gateway.networking.k8s.io) and of Envoy
// Gateway (gateway.envoyproxy.io) against their published CRD schemas, offline: the models
// of @kubernetes-models/gateway-api and @kubernetes-models/envoy-gateway (generated from the
// CRDs' OpenAPI schemas). Input: a JSON array of objects on stdin. Output: one line per
// object, "ok" or each schema error; exit 1 when any object is invalid or of a kind the
// schemas do not know. Run by tools/gateway_lint.py (make deploy-lint).
import * as gatewayApi from "@kubernetes-models/gateway-api";
import * as envoyGateway from "@kubernetes-models/envoy-gateway";

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
    console.log(`${name}: ok`);
  } catch (error) {
    failed++;
    const details = error.errors ?? error.details ?? [];
    if (details.length === 0) console.log(`${name}: ${error.message}`);
    for (const d of details) console.log(`${name}: ${d.instancePath || "/"} ${d.message}`);
  }
}
process.exit(failed ? 1 : 0);
