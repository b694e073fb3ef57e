"""The data tier watched for a drill or a test: Debian's exporters on every server of a tier,
a real Prometheus with the data tier's rules (observability/prometheus/rules/data_tier.yml)
and a real Alertmanager (tools/deploy/alertmanager.py's routing) posting to a webhook run here.

    with DataTierWatch(root, Watched.of_tier(layout)) as watch:
        watch.wait_scraped()                      # every exporter scraped, every server up
        ...kill the primary...
        note = watch.wait_for_alert("PostgresPrimaryChanged", timeout)

`python -m tools.ha.data_tier_watch [--var var]` watches the tier `tools.ha.ha_tier up` recorded
there and prints each alert as it arrives, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tools.deploy import alertmanager, prometheus
from tools.deploy.db_exporters import BINARIES, Job, Server, command
from tools.ha import ha_tier
from tools.ha.ha_mariadb import MariaLayout
from tools.ha.ha_postgres import PgLayout
from tools.ha.ha_redis import RedisLayout
from tools.local.local_servers import StartError, spawn, wait_until
from tools.local.ports import free_ports
from tools.local.processes import stop_pid
from tools.packages import sbin
from tools.time_scale import scaled

RULES = prometheus.RULES / "data_tier.yml"
INTERVAL = 1.0  # s: scrape, rule evaluation and Alertmanager's group wait/interval
# Prometheus and Alertmanager ready on a 2-core machine at load 3, times FIXUP_TIME_SCALE
START_TIMEOUT = scaled(30.0)
UP_METRIC: dict[Job, str] = {"postgres": "pg_up", "mysqld": "mysql_up", "redis": "redis_up"}


@dataclass(frozen=True, slots=True)
class Watched:
    """The servers to watch: one exporter each."""

    servers: tuple[Server, ...]

    @classmethod
    def of_tier(
        cls,
        postgres: PgLayout | None = None,
        redis: RedisLayout | None = None,
        mariadb: MariaLayout | None = None,
    ) -> Watched:
        """Every PostgreSQL member, both Redis servers, the MariaDB primary and replica."""
        out: list[Server] = []
        if postgres is not None:
            out += [
                Server("postgres", postgres.host(k), p, "postgres")
                for k, p in enumerate(postgres.postgres)
            ]
        if redis is not None:
            out += [Server("redis", "127.0.0.1", p) for p in redis.servers]
        if mariadb is not None:
            out += [Server("mysqld", "127.0.0.1", p, "root") for p in mariadb.servers]
        return cls(tuple(out))


@dataclass
class Webhook:
    """Alertmanager's receiver: every notification it posts, in order."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, alertname: str, status: str = "firing") -> dict[str, Any] | None:
        """The first notification carrying `alertname` in `status`, with that alert."""
        with self.lock:
            notes = list(self.notifications)
        for note in notes:
            for alert in note.get("alerts", []):
                if alert["status"] == status and alert["labels"].get("alertname") == alertname:
                    return {**note, "alert": alert}
        return None

    def serve(self) -> ThreadingHTTPServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                note = json.loads(self.rfile.read(length) or b"{}")
                with hook.lock:
                    hook.notifications.append(note)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the notifications are the record

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class DataTierWatch:
    """Exporters + Prometheus + Alertmanager + webhook for `watched`, under `root`."""

    def __init__(self, root: Path, watched: Watched, for_override: str | None = None) -> None:
        self.root = root
        self.watched = watched
        self.for_override = for_override  # every rule's `for:` (a test's short clock)
        self.webhook = Webhook()
        self.groups: list[int] = []  # each process's group (local_servers.spawn)
        self.hook_server: ThreadingHTTPServer | None = None
        self.targets: dict[str, list[str]] = {}
        self.prometheus_url = ""
        self.alertmanager_url = ""

    @property
    def delivery(self) -> float:
        """From an alert's condition (its `for:` elapsed) to the webhook, at most: a scrape,
        an evaluation, a group wait and a loaded machine's delays (15 intervals at load 3)."""
        return scaled(15 * INTERVAL)

    def __enter__(self) -> DataTierWatch:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.groups.append(spawn(argv, self.root / f"{name}.log", env=env))

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        needed = [
            "prometheus",
            alertmanager.BINARY,
            *(BINARIES[s.job] for s in self.watched.servers),
        ]
        missing = [name for name in needed if sbin(name) is None]
        if missing:
            raise StartError(f"{missing[0]} missing: {prometheus.INSTALL_HINT}")
        exporter_ports = free_ports(len(self.watched.servers))
        for server, port in zip(self.watched.servers, exporter_ports, strict=True):
            found = sbin(BINARIES[server.job])
            assert found is not None
            argv, env = command(server, found, f"127.0.0.1:{port}", self.root / "secrets")
            self._spawn(f"exporter-{server.name}", argv, env)
            self.targets.setdefault(server.job, []).append(f"127.0.0.1:{port}")
        self.hook_server = self.webhook.serve()
        hook = f"http://127.0.0.1:{self.hook_server.server_address[1]}/hook"
        receiver = {"webhook_configs": [{"url": hook, "send_resolved": True}]}
        wait = f"{INTERVAL:g}s"
        am_conf = self.root / "alertmanager.yml"
        am_conf.write_text(
            alertmanager.render(
                alertmanager.config({"page": receiver, "ticket": receiver}, wait, wait)
            )
        )
        am_port, prom_port = free_ports(2)
        self._spawn(
            "alertmanager",
            alertmanager.command(am_conf, self.root / "alertmanager", f"127.0.0.1:{am_port}"),
        )
        rules = self.root / "rules"
        rules.mkdir(exist_ok=True)
        document = yaml.safe_load(RULES.read_text())
        if self.for_override is not None:
            for group in document["groups"]:
                for rule in group["rules"]:
                    if "for" in rule:
                        rule["for"] = self.for_override
        (rules / RULES.name).write_text(yaml.safe_dump(document, sort_keys=False))
        prom_conf = self.root / "prometheus.yml"
        prom_conf.write_text(
            prometheus.local_config(self.targets, f"{INTERVAL:g}s", f"127.0.0.1:{am_port}", rules)
        )
        self._spawn(
            "prometheus",
            prometheus.prometheus_command(prom_conf, self.root / "tsdb", f"127.0.0.1:{prom_port}"),
        )
        self.alertmanager_url = f"http://127.0.0.1:{am_port}"
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"
        for url in (self.alertmanager_url, self.prometheus_url):
            wait_until(partial(_ready, f"{url}/-/ready"), f"{url} ready", START_TIMEOUT)

    def stop(self) -> None:
        while self.groups:
            stop_pid(self.groups.pop(), group=True)
        if self.hook_server is not None:
            self.hook_server.shutdown()
            self.hook_server.server_close()
            self.hook_server = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (empty when Prometheus refuses or has nothing)."""
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                body = json.load(answer)
        except (OSError, ValueError):
            return []
        return (
            list(body.get("data", {}).get("result", [])) if body.get("status") == "success" else []
        )

    def scraped(self) -> bool:
        """Every exporter answers its scrape and says its server is up."""
        for job in {server.job for server in self.watched.servers}:
            ups = self.query(f'{UP_METRIC[job]}{{job="{job}"}} == 1 and on (instance) up == 1')
            if len(ups) != len(self.targets[job]):
                return False
        return True

    def wait_scraped(self) -> None:
        """Until every exporter's server is seen up: a few scrapes, bounded."""
        wait_until(self.scraped, "every exporter scraped with its server up", self.delivery)

    def wait_for_alert(
        self, alertname: str, timeout: float, status: str = "firing"
    ) -> dict[str, Any]:
        """The first notification of `alertname` in `status` at the webhook, within `timeout`."""
        what = f"{alertname} ({status}) at the webhook"
        wait_until(lambda: self.webhook.find(alertname, status) is not None, what, timeout)
        return self.webhook.find(alertname, status) or {}  # found: notifications only add up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ha.data_tier_watch", description=__doc__)
    parser.add_argument("--var", type=Path, default=Path("var"))
    args = parser.parse_args(argv)
    entry = ha_tier.ledger(args.var)
    pg = ha_tier.read_layout(args.var)[0] if entry["ports"] else None
    redis = ha_tier.read_redis(args.var)[0] if entry["redis_ports"] else None
    with DataTierWatch(ha_tier.tier_root(args.var) / "watch", Watched.of_tier(pg, redis)) as watch:
        print(
            f"data tier watch: Prometheus {watch.prometheus_url}, Alertmanager "
            f"{watch.alertmanager_url}",
            flush=True,
        )
        seen = 0
        try:
            while True:
                with watch.webhook.lock:
                    notes = watch.webhook.notifications[seen:]
                seen += len(notes)
                for note in notes:
                    for alert in note["alerts"]:
                        labels = alert["labels"]
                        print(
                            f"{alert['status']}: {labels['alertname']} {labels.get('instance', '')}"
                        )
                time.sleep(INTERVAL)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
