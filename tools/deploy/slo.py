"""Prometheus rules from lib/slo.py: `python -m tools.deploy.slo [write|check]`.

Writes observability/prometheus/rules/slo.yml (`check`, in `make swag-check`, fails when it
is stale): per SLO the error ratio over every window the alerts and the budget need
(`slo:sli_error:ratio_rate<window>{service, slo}`), its objective and error budget, the
budget left over 30 days, and two alerts after the SRE workbook's multiwindow,
multi-burn-rate alerts (as Sloth and Pyrra generate them): `ErrorBudgetBurn` pages at
14.4x over 1 h (5 min short window) or 6x over 6 h (30 min), `ErrorBudgetSlowBurn` opens a
ticket at 1x over 3 d (6 h). Unit tests: observability/prometheus/tests/slo*_test.yml.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from lib import registry, slo
from tools.deploy.generated import ROOT, write_or_check

RULES_FILE = ROOT / "observability" / "prometheus" / "rules" / "slo.yml"
RUNBOOKS = "docs/runbooks"
WINDOWS = ("5m", "30m", "1h", "6h", "3d", slo.WINDOW)
# (burn rate, long window, short window): the workbook's table
PAGE = ((14.4, "1h", "5m"), (6.0, "6h", "30m"))
TICKET = ((1.0, "3d", "6h"),)
GRPC_ERRORS = "UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS"
WS_ROUTE = "/v1/conversations/{id}/ws"


@dataclass(frozen=True, slots=True)
class Objective:
    """One SLO as PromQL: `errors` and `total` are rates with `$w` for the window."""

    service: str
    name: str
    target: float
    errors: str
    total: str

    def ratio(self, window: str) -> str:
        errors, total = (e.replace("$w", window) for e in (self.errors, self.total))
        return f"({errors})\n/\n({total})"

    @property
    def labels(self) -> dict[str, str]:
        return {"service": self.service, "slo": self.name}

    @property
    def budget(self) -> float:
        return round(1 - self.target, 10)


def rate(selector: str) -> str:
    return f"sum(rate({selector}[$w]))"


def objectives(service: registry.Microservice) -> list[Objective]:
    declared = slo.of(service)
    name = service.name
    if service.grpc_port is not None:
        calls = f'grpc_server_handled_total{{job="{name}"}}'
        failed = f'grpc_server_handled_total{{job="{name}", code=~"{GRPC_ERRORS}"}}'
        out = [Objective(name, "availability", declared.availability, rate(failed), rate(calls))]
        duration, where = "grpc_server_handling_seconds", f'job="{name}"'
    else:
        answers = f'http_requests_total{{service="{name}"}}'
        failed = f'http_requests_total{{service="{name}", status=~"5.."}}'
        out = [Objective(name, "availability", declared.availability, rate(failed), rate(answers))]
        # a WebSocket's request lasts as long as the socket: not a latency
        duration, where = "http_request_duration_seconds", f'service="{name}", route!~".*/ws"'
    for route_class in declared.latency:
        methods = "" if service.grpc_port is not None else f', method=~"{route_class.methods}"'
        total = rate(f"{duration}_count{{{where}{methods}}}")
        fast = rate(f'{duration}_bucket{{{where}{methods}, le="{route_class.threshold}"}}')
        out.append(
            Objective(
                name, f"latency-{route_class.name}", route_class.target, f"{total} - {fast}", total
            )
        )
    if declared.websocket_delivery is not None:
        dropped = f'chat_websockets_closed_total{{service="{name}", reason="slow"}}'
        opened = f'http_requests_total{{service="{name}", route="{WS_ROUTE}"}}'
        out.append(
            Objective(
                name, "websocket-delivery", declared.websocket_delivery, rate(dropped), rate(opened)
            )
        )
    return out


def all_objectives() -> list[Objective]:
    return [o for service in registry.built_services() for o in objectives(service)]


def burn(windows: tuple[tuple[float, str, str], ...]) -> str:
    """Both windows above `factor` times the budget; the short one resets the alert soon
    after the burn stops."""
    return "\nor\n".join(
        f"(\n  slo:sli_error:ratio_rate{long} > {factor:g} * slo:error_budget:ratio\n"
        f"and\n  slo:sli_error:ratio_rate{short} > {factor:g} * slo:error_budget:ratio\n)"
        for factor, long, short in windows
    )


def notes(alert: str, summary: str, description: str) -> dict[str, str]:
    return {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOKS}/{alert}.md",
    }


ALERTS: list[dict[str, Any]] = [
    {
        "alert": "ErrorBudgetBurn",
        "expr": burn(PAGE),
        "for": "2m",
        "labels": {"severity": "page"},
        "annotations": notes(
            "ErrorBudgetBurn",
            "{{ $labels.service }} {{ $labels.slo }}: error budget burning fast",
            "{{ $labels.service }} fails its {{ $labels.slo }} SLO at 6 to 14.4 times the rate"
            " its error budget allows: at this rate the 30-day budget is gone within days.",
        ),
    },
    {
        "alert": "ErrorBudgetSlowBurn",
        "expr": burn(TICKET),
        "for": "1h",
        "labels": {"severity": "ticket"},
        "annotations": notes(
            "ErrorBudgetSlowBurn",
            "{{ $labels.service }} {{ $labels.slo }}: error budget leaking",
            "{{ $labels.service }} has failed its {{ $labels.slo }} SLO faster than its error"
            " budget allows for 3 days: the 30-day budget runs out before the period ends.",
        ),
    },
]


def rules() -> dict[str, Any]:
    objectives = all_objectives()
    ratios = [
        {"record": f"slo:sli_error:ratio_rate{window}", "expr": o.ratio(window), "labels": o.labels}
        for window in WINDOWS
        for o in objectives
    ]
    meta: list[dict[str, Any]] = []
    for o in objectives:
        meta += [
            {"record": "slo:objective:ratio", "expr": f"vector({o.target})", "labels": o.labels},
            {"record": "slo:error_budget:ratio", "expr": f"vector({o.budget})", "labels": o.labels},
        ]
    meta.append(
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": f"1 - slo:sli_error:ratio_rate{slo.WINDOW} / slo:error_budget:ratio",
        }
    )
    # one group: its rules run in this order, so the alerts and the budget read the ratios
    # of the same evaluation (separate groups run in no set order, and a recorded sample
    # older than the 5-minute lookback would look absent)
    return {"groups": [{"name": "slo", "rules": [*meta[:-1], *ratios, meta[-1], *ALERTS]}]}


class Literal(str):
    """A multi-line string dumped as a YAML block (readable PromQL)."""


def literal(dumper: yaml.SafeDumper, value: Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


class BlockDumper(yaml.SafeDumper):
    """SafeDumper writing `Literal` strings as blocks."""


BlockDumper.add_representer(Literal, literal)


def dump(document: dict[str, Any]) -> str:
    def blocks(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: blocks(v) for k, v in node.items()}
        if isinstance(node, list):
            return [blocks(v) for v in node]
        return Literal(node) if isinstance(node, str) and "\n" in node else node

    header = (
        "# GENERATED by `python -m tools.deploy.slo` from lib/slo.py"
        " - do not edit (make deploy-gen)\n"
    )
    body: str = yaml.dump(blocks(document), Dumper=BlockDumper, sort_keys=False, width=100)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.slo", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["write", "check"], default="write")
    args = parser.parse_args(argv)
    files = {RULES_FILE: dump(rules())}
    return write_or_check(files, args.command == "check", "python -m tools.deploy.slo")


if __name__ == "__main__":
    sys.exit(main())
