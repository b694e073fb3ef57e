"""Prometheus of a local run, its scrape config from lib/registry.py.

    python -m tools.deploy.prometheus run [--optional]

Compose's config is observability/prometheus/prometheus.yml, a checked-in file. `run`
writes a local one (static 127.0.0.1 targets), starts Debian's exporters (PostgreSQL,
MariaDB, Redis: the servers the services are configured on, tools/deploy/db_exporters.py)
and prometheus on 127.0.0.1:9090 (`make run`; `--optional`: when prometheus is not
installed, say so and idle), sending its alerts to tools/deploy/alertmanager.py's
Alertmanager at 127.0.0.1:9093.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lib import registry
from tools.deploy import db_exporters
from tools.deploy.generated import ROOT
from tools.packages import sbin

HERE = ROOT / "observability" / "prometheus"
COMPOSE_FILE = HERE / "prometheus.yml"
RULES = HERE / "rules"
RUNTIME = ROOT / "var" / "prometheus"
LISTEN = "127.0.0.1:9090"
ALERTMANAGER = "127.0.0.1:9093"  # tools/deploy/alertmanager.py's, where `run` sends the alerts
NGINX_EXPORTER = 9150
# tools/backups/backup_exporter.py: the backups of a local run (Compose and Kubernetes archive
# nothing of their own: their databases are managed servers, ADR 0027)
BACKUP_EXPORTER = 9188
INSTALL_HINT = (
    "prometheus is not installed: apt-get install -y prometheus prometheus-postgres-exporter "
    "prometheus-mysqld-exporter prometheus-redis-exporter prometheus-alertmanager "
    "(Debian/Ubuntu, as root)"
)

# Debian's exporters' default ports (their binaries: tools/deploy/db_exporters.py)
EXPORTERS: dict[db_exporters.Job, int] = {"postgres": 9187, "mysqld": 9104, "redis": 9121}


def local_targets() -> dict[str, list[str]]:
    """job -> addresses of a local run: every replica of every built service, the exporters."""
    targets: dict[str, list[str]] = {
        s.name: [
            f"127.0.0.1:{p}" for p in (s.http_ports if s.grpc_port is None else (s.metrics_port,))
        ]
        for s in registry.built_services()
    }
    targets["nginx"] = [f"127.0.0.1:{NGINX_EXPORTER}"]
    targets["backups"] = [f"127.0.0.1:{BACKUP_EXPORTER}"]
    for job, port in EXPORTERS.items():
        targets[job] = [f"127.0.0.1:{port}"]
    targets["prometheus"] = [LISTEN]
    return targets


def local_config(
    targets: Mapping[str, list[str]],
    interval: str = "5s",
    alertmanager: str | None = None,
    rules: Path = RULES,
) -> str:
    document: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": addresses}]}
            for job, addresses in targets.items()
        ],
    }
    if alertmanager is not None:
        alerting = [{"static_configs": [{"targets": [alertmanager]}]}]
        document["alerting"] = {"alertmanagers": alerting}
    return yaml.safe_dump(document, sort_keys=False)


def prometheus_command(conf: Path, data: Path, listen: str) -> list[str]:
    found = sbin("prometheus")
    if found is None:
        raise FileNotFoundError(INSTALL_HINT)
    return [
        found,
        f"--config.file={conf}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
    ]


def missing(name: str, hint: str, optional: bool) -> int:
    """`name` is not installed: say how to get it; exit 2, or (`optional`, under honcho,
    where a process that exits stops every other one) idle until SIGTERM or SIGINT."""
    print(f"{name}: {hint}", file=sys.stderr, flush=True)
    if not optional:
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def run(conf: Path, optional: bool) -> int:
    """Exporters as children, then prometheus in the foreground; SIGTERM stops them all."""
    if sbin("prometheus") is None:
        return missing("prometheus", INSTALL_HINT, optional)
    children = []
    servers = {server.job: server for server in db_exporters.dev_servers()}
    for job, port in EXPORTERS.items():
        found = sbin(db_exporters.BINARIES[job])
        if found is None:
            print(
                f"prometheus: {db_exporters.BINARIES[job]} missing ({INSTALL_HINT})",
                file=sys.stderr,
            )
            continue
        command, env = db_exporters.command(
            servers[job], found, f"127.0.0.1:{port}", RUNTIME / "secrets"
        )
        children.append(subprocess.Popen(command, env={**os.environ, **env}))
    backups = [
        sys.executable,
        "-m",
        "tools.backups.backup_exporter",
        f"--listen=127.0.0.1:{BACKUP_EXPORTER}",
    ]
    children.append(subprocess.Popen(backups))
    main = subprocess.Popen(prometheus_command(conf, RUNTIME / "data", LISTEN))
    signal.signal(signal.SIGTERM, lambda *_: main.terminate())
    try:
        return main.wait()
    finally:
        for child in children:
            child.terminate()
            child.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy.prometheus", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--optional", action="store_true")
    args = parser.parse_args(argv)
    out = RUNTIME / "prometheus.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(local_config(local_targets(), alertmanager=ALERTMANAGER))
    return run(out, args.optional)


if __name__ == "__main__":
    sys.exit(main())
