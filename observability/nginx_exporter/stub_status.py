"""nginx's stub_status page -> Prometheus series, fetched on every scrape of /metrics.

    Active connections: 291
    server accepts handled requests
     16630948 16630948 31070465
    Reading: 6 Writing: 179 Waiting: 106

Series (the names of nginx-prometheus-exporter, so existing dashboards fit):
nginx_up (1 when the page answered), nginx_connections_active / _reading / _writing /
_waiting (gauges), nginx_connections_accepted_total, nginx_connections_handled_total and
nginx_http_requests_stub_total (counters: nginx's own totals since it started; the last
is named apart from the access-log counter nginx_http_requests_total).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_PAGE = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s+"
    r"server accepts handled requests\s+(?P<accepted>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s+"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)"
)


@dataclass(frozen=True, slots=True)
class StubStatus:
    active: int
    accepted: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


def parse_stub_status(text: str) -> StubStatus:
    match = _PAGE.search(text)
    if match is None:
        raise ValueError(f"not a stub_status page: {text[:200]!r}")
    return StubStatus(**{k: int(v) for k, v in match.groupdict().items()})


async def fetch(session: aiohttp.ClientSession, url: str, seconds: float = 2.0) -> StubStatus:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=seconds)) as resp:
        resp.raise_for_status()
        return parse_stub_status(await resp.text())


class StubStatusCollector(Collector):
    """Exposes the last fetched page; `update` is called by the /metrics handler."""

    def __init__(self) -> None:
        self.last: StubStatus | None = None
        self.up = False

    def update(self, status: StubStatus | None) -> None:
        self.up = status is not None
        if status is not None:
            self.last = status

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "nginx_up", "1 when nginx's stub_status answered", value=int(self.up)
        )
        status = self.last
        if status is None or not self.up:
            return
        for name, value in (
            ("active", status.active),
            ("reading", status.reading),
            ("writing", status.writing),
            ("waiting", status.waiting),
        ):
            yield GaugeMetricFamily(
                f"nginx_connections_{name}", f"client connections: {name}", value=value
            )
        yield CounterMetricFamily(
            "nginx_connections_accepted", "client connections accepted", value=status.accepted
        )
        yield CounterMetricFamily(
            "nginx_connections_handled", "client connections handled", value=status.handled
        )
        yield CounterMetricFamily(
            "nginx_http_requests_stub", "client requests (stub_status)", value=status.requests
        )
