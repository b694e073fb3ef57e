"""tools/deploy/k8s_cel.py: the edge CRDs' CEL rules, evaluated offline on the committed objects
(tests/integration/test_gateway_planted.py plants the errors they refuse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tools.deploy import images, k8s_cel
from tools.deploy.generated import ROOT

COMMITTED = [
    ROOT / "deploy/k8s/base/gateway.yaml",
    ROOT / "deploy/k8s/base/pages.yaml",
    ROOT / "deploy/k8s/envoy-gateway/gatewayclass.yaml",
    *sorted((ROOT / "deploy/k8s/services").glob("*/routes.yaml")),
]


def edge_objects(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        d
        for path in paths
        for d in yaml.safe_load_all(path.read_text())
        if d and str(d.get("apiVersion", "")).startswith("gateway.")
    ]


def test_every_committed_edge_object_keeps_every_rule() -> None:
    objects = edge_objects(COMMITTED)
    kinds = {d["kind"] for d in objects}
    assert {"Gateway", "GatewayClass", "HTTPRoute", "ClientTrafficPolicy"} <= kinds
    assert {"BackendTrafficPolicy", "EnvoyProxy", "HTTPRouteFilter"} <= kinds
    failed, lines = k8s_cel.report(objects)
    assert failed == 0, [line for line in lines if not line.endswith("CEL ok")]
    for d in objects:  # a CRD for each: none checked against nothing
        assert (d["apiVersion"], d["kind"]) in k8s_cel.schemas(), d["kind"]


def test_the_crds_are_the_pinned_envoy_gateways() -> None:
    notes = (k8s_cel.CRDS / "README.md").read_text()
    assert f"v{images.ENVOY_GATEWAY_VERSION};" in notes
    assert (k8s_cel.CRDS / "LICENSE").read_text().lstrip().startswith("Apache License")
    bundles = {
        crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
        for crd in yaml.load_all(
            (k8s_cel.CRDS / "gatewayapi-crds.yaml").read_text(), Loader=yaml.CSafeLoader
        )
        if crd
    }
    assert bundles == {"v1.6.1"}
    assert "v1.6.1" in notes


def test_defaults_are_applied_before_the_rules() -> None:
    """A listener's `allowedRoutes` is defaulted by the API server: the rules see it."""
    schema = k8s_cel.schemas()[("gateway.networking.k8s.io/v1", "Gateway")]
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "g"},
        "spec": {
            "gatewayClassName": "c",
            "listeners": [{"name": "h", "protocol": "HTTP", "port": 80}],
        },
    }
    stored = k8s_cel.with_defaults(schema, gateway)
    assert stored["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"] == "Same"
    assert "allowedRoutes" not in gateway["spec"]["listeners"][0]  # the input is kept
    assert k8s_cel.check(gateway) == []


def test_a_rule_it_cannot_evaluate_fails_naming_it() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.name.noSuchFunction()", "message": "m"},
            {"rule": "self.name == oldSelf.name", "message": "a transition rule"},
            {"rule": "self.name.upperAscii() == 'A'", "message": "upper"},
        ],
    }
    found = list(k8s_cel.failures(schema, {"name": "b"}, "self"))
    assert len(found) == 2
    assert found[0].startswith("self: rule not evaluated (")
    assert "noSuchFunction" in found[0]
    assert found[1] == "self: upper"  # the transition rule is not evaluated on a create
