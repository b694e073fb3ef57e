"""The CEL rules of the edge's CRDs, evaluated offline (ADR 0041): each CRD's
`x-kubernetes-validations` run with cel-python (`celpy`) on every rendered Gateway API /
Envoy Gateway object, after the schema's defaults are applied as the API server does. The
CRDs are tools/gatewaylint/crds/, vendored from the pinned Envoy Gateway release.

Not evaluated: transition rules (those reading `oldSelf`). Of Kubernetes' CEL libraries,
the functions these CRDs call are given here (FUNCTIONS); a rule calling another fails as
not evaluated, naming it.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from tools.deploy.generated import ROOT

CRDS = ROOT / "tools" / "gatewaylint" / "crds"


@dataclass(frozen=True)
class Rule:
    rule: str
    message: str
    program: celpy.Runner


def _is_ip(value: celtypes.StringType) -> celtypes.BoolType:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _split(value: celtypes.StringType, sep: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(value).split(str(sep))])


def _substring(value: celtypes.StringType, *bounds: celtypes.IntType) -> celtypes.StringType:
    return celtypes.StringType(str(value)[slice(*(int(b) for b in bounds))])


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isIP": _is_ip,
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "split": _split,
    "substring": _substring,
}


@cache
def environment() -> celpy.Environment:
    return celpy.Environment()


@cache
def compiled(rule: str, message: str) -> Rule:
    env = environment()
    return Rule(rule, message, env.program(env.compile(rule), functions=FUNCTIONS))


@cache
def schemas(directory: Path = CRDS) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of every CRD in the directory."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                out[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return out


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """The value with the schema's defaults filled in, as the API server stores it."""
    if isinstance(value, dict):
        out = dict(value)
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
        for name, item in out.items():
            sub = properties.get(name)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                out[name] = with_defaults(sub, item)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def nodes(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, schema, value) of the value and each value below it that the schema types."""
    yield path, schema, value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from nodes(sub, item, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from nodes(schema["items"], item, f"{path}[{i}]")


def failures(schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """Each rule on this node that does not hold: `<path>: <its message>`."""
    rules = schema.get("x-kubernetes-validations") or []
    if not rules or value is None:
        return
    self = json_to_cel(value)
    for entry in rules:
        if "oldSelf" in entry["rule"]:
            continue  # a transition rule: checked on an update only
        rule = compiled(entry["rule"], entry.get("message", ""))
        try:
            result = rule.program.evaluate({"self": self})
        except CELEvalError as exc:
            yield f"{path}: rule not evaluated ({exc.args[0]}): {rule.rule}"
            continue
        if isinstance(result, CELEvalError):
            yield f"{path}: rule not evaluated ({result.args[0]}): {rule.rule}"
        elif not isinstance(result, celtypes.BoolType) or not result:
            yield f"{path}: {rule.message or 'failed rule: ' + rule.rule}"


def check(document: dict[str, Any]) -> list[str]:
    """The CEL rules this object breaks; [] when every rule holds. An object whose kind the
    CRDs lack is validate.mjs's finding (no published schema), not this one's."""
    schema = schemas().get((str(document.get("apiVersion")), str(document.get("kind"))))
    if schema is None:
        return []
    stored = with_defaults(schema, document)
    out: list[str] = []
    for path, sub, value in nodes(schema, stored, "self"):
        out += failures(sub, value, path)
    return out


def report(objects: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(how many objects break a rule, one line per object: "ok" or each broken rule)."""
    lines: list[str] = []
    failed = 0
    for document in objects:
        name = (
            f"{document.get('kind')} {(document.get('metadata') or {}).get('name', '?')} "
            f"({document.get('apiVersion')})"
        )
        found = check(document)
        failed += bool(found)
        lines += [f"{name}: CEL {f}" for f in found] or [f"{name}: CEL ok"]
    return failed, lines
