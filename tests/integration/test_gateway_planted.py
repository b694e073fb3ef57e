"""Typical errors planted in the rendered edge objects, each refused by `make deploy-lint`'s
gateway scan (tools/deploy/deploy_scan.py) with the API server's own message: the CRDs' CEL rules
(tools/deploy/k8s_cel.py) or their structural schema and fields (tools/gatewaylint/validate.mjs).
The CEL ones pass the structural check alone: that check could not see them (ADR 0041)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tools.deploy import deploy_scan, k8s_cel
from tools.deploy.generated import ROOT

# what `make test svc=` selects it for (tests/selection.py): nothing, it checks the edge's
# committed objects (users' route is one of them), no service's code
EXERCISES = ()

Plant = Callable[[dict[str, Any]], None]
EDGE = [
    ROOT / "deploy/k8s/base/gateway.yaml",
    *(ROOT / "deploy/k8s/services").glob("*/routes.yaml"),
]


def committed(kind: str, name: str) -> Callable[[], dict[str, Any]]:
    """The checked-in object, read afresh for each plant."""

    def read() -> dict[str, Any]:
        (found,) = [
            d
            for path in EDGE
            for d in yaml.safe_load_all(path.read_text())
            if d["kind"] == kind and d["metadata"]["name"] == name
        ]
        return found

    read.__name__ = f"{kind} {name}"
    return read


gateway = committed("Gateway", "fixup")
users_route = committed("HTTPRoute", "fixup-users")
PREFIX_REWRITE = {
    "type": "URLRewrite",
    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
}


def once(route: dict[str, Any]) -> dict[str, Any]:
    """The route's `once` rule (a PathPrefix match, a prefix rewrite, a backend)."""
    (rule,) = [r for r in route["spec"]["rules"] if r["name"] == "once"]
    return rule


def listener(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [x for x in doc["spec"]["listeners"] if x["name"] == name]
    return found


REDIRECT = {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}

# (what, the object, the plant, the message the API server answers, found by CEL)
PLANTS: list[tuple[str, Callable[[], dict[str, Any]], Plant, str, bool]] = [
    (
        "tls on a plain HTTP listener",
        gateway,
        lambda g: listener(g, "http").update(tls=listener(g, "https")["tls"]),
        "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
        True,
    ),
    (
        "a hostname on a TCP listener",
        gateway,
        lambda g: g["spec"]["listeners"].append(
            {"name": "tcp", "protocol": "TCP", "port": 5432, "hostname": "db.example.com"}
        ),
        "hostname must not be specified for protocols ['TCP', 'UDP']",
        True,
    ),
    (
        "two listeners of one name",
        gateway,
        lambda g: listener(g, "https").update(name="http"),
        "Listener name must be unique within the Gateway",
        True,
    ),
    (
        "two listeners of one port, protocol and hostname",
        gateway,
        lambda g: g["spec"]["listeners"].append({**listener(g, "http"), "name": "http-again"}),
        "Combination of port, protocol and hostname must be unique for each listener",
        True,
    ),
    (
        "a RequestRedirect together with a backendRef",
        users_route,
        lambda r: once(r).update(filters=[REDIRECT]),
        "RequestRedirect filter must not be used together with backendRefs",
        True,
    ),
    (
        "a RequestRedirect and a URLRewrite in one rule",
        users_route,
        lambda r: once(r)["filters"].append(REDIRECT),
        "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite",
        True,
    ),
    (
        "URLRewrite repeated in one rule",
        users_route,
        lambda r: once(r)["filters"].append(PREFIX_REWRITE),
        "URLRewrite filter cannot be repeated",
        True,
    ),
    (
        "ReplacePrefixMatch on an Exact match",
        users_route,
        lambda r: once(r)["matches"][0]["path"].update(type="Exact"),
        "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix",
        True,
    ),
    (
        "a path prefix that is not absolute",
        users_route,
        lambda r: once(r)["matches"][0]["path"].update(value="api/users"),
        "value must be an absolute path and start with '/'",
        True,
    ),
    (
        "an attempt's timeout longer than the request's",
        users_route,
        lambda r: once(r).update(timeouts={"request": "10s", "backendRequest": "30s"}),
        "backendRequest timeout cannot be longer than request timeout",
        True,
    ),
    (
        "two rules of one name",
        users_route,
        lambda r: once(r).update(name=r["spec"]["rules"][0]["name"]),
        "Rule name must be unique within the route",
        True,
    ),
    (
        "a ClientTrafficPolicy targeting a route",
        committed("ClientTrafficPolicy", "fixup-clients"),
        lambda p: p["spec"]["targetRefs"][0].update(kind="HTTPRoute"),
        "this policy can only have a targetRefs[*].kind of Gateway",
        True,
    ),
    (
        "a BackendTrafficPolicy targeting another group",
        committed("BackendTrafficPolicy", "fixup-backends"),
        lambda p: p["spec"]["targetRefs"][0].update(group="apps"),
        "this policy can only have a targetRefs[*].group of gateway.networking.k8s.io",
        True,
    ),
    (
        "a regex rewrite without its substitution",
        committed("HTTPRouteFilter", "fixup-strip-users"),
        lambda f: f["spec"]["urlRewrite"]["path"].pop("replaceRegexMatch"),
        "If HTTPPathModifier type is ReplaceRegexMatch, replaceRegexMatch",
        True,
    ),
    (
        "port 0",
        gateway,
        lambda g: listener(g, "https").update(port=0),
        "/spec/listeners/1/port must be >= 1",
        False,
    ),
    (
        "a field the schema lacks (timeout for timeouts)",
        users_route,
        lambda r: once(r).update(timeout=once(r).pop("timeouts")),
        "TS2353",
        False,
    ),
]
IDS = [p[0] for p in PLANTS]


def planted(i: int, make: Callable[[], dict[str, Any]], plant: Plant) -> dict[str, Any]:
    """The object with its error, named `plant-<i>` (its lines in the scan's output)."""
    document = copy.deepcopy(make())
    plant(document)
    document["metadata"]["name"] = f"plant-{i}"
    return document


def lines_of(output: str, document: dict[str, Any]) -> str:
    name = f"{document['kind']} {document['metadata']['name']} ({document['apiVersion']})"
    return "\n".join(line for line in output.splitlines() if line.startswith(name + ":"))


def test_the_unplanted_objects_pass() -> None:
    objects = [make() for make in {id(m): m for _, m, _, _, _ in PLANTS}.values()]
    objects.append(committed("HTTPRoute", "fixup-https-redirect")())
    done = deploy_scan.validate_gateway_objects(objects)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(("what", "make", "plant", "message", "cel"), PLANTS, ids=IDS)
def test_the_cel_rules_refuse_their_plants(
    what: str, make: Callable[[], dict[str, Any]], plant: Plant, message: str, cel: bool
) -> None:
    found = k8s_cel.check(planted(0, make, plant))
    assert any(message in f for f in found) is cel, f"{what}: {found}"


def test_the_scan_refuses_each_plant_with_its_message_where_the_schema_alone_did_not() -> None:
    """One scan over every plant: each refused, its own lines naming the API server's
    message; validate.mjs alone (the scan before the CEL rules) passes every CEL plant."""
    objects = [planted(i, make, plant) for i, (_, make, plant, _, _) in enumerate(PLANTS)]
    done = deploy_scan.validate_gateway_objects(objects)
    assert done.returncode == 1
    for (what, _, _, message, _), document in zip(PLANTS, objects, strict=True):
        assert message in lines_of(done.stdout, document), f"{what}: {done.stdout}"
    alone = deploy_scan.validate_gateway_objects(objects, cel=False)
    missed = [
        what
        for (what, *_), d in zip(PLANTS, objects, strict=True)
        if lines_of(alone.stdout, d).endswith(": ok")
    ]
    assert missed == [what for what, _, _, _, cel in PLANTS if cel]
    assert len(missed) >= 12
