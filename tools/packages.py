"""The system (Debian) packages each entry point needs, in one place.

    python3 -m tools.packages ensure run|test|ci [--strict]

installs what is missing with apt-get when it can (root and apt-get present), else prints
the command to run. `make run` and `make test` call it (a missing package is a note: the
run goes on and the test that needs it fails saying so); `.ci/run` calls it `--strict`,
before .venv exists, so this module uses the standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Package:
    name: str  # the Debian package
    why: str
    commands: tuple[str, ...] = ()  # any one found proves it is installed; none: ask dpkg


SBIN = ("/usr/sbin", "/usr/local/sbin")  # not on a normal user's PATH
ROOT = Path(__file__).resolve().parents[1]
# the HA tier's Patroni comes from PyPI, not Debian (the pin's reason is in the file). As
# root the postgres user runs it, so it lives where that user can always reach it, named
# by its pins (a checkout under a 0700 home is closed to postgres); otherwise the user who
# runs the tier runs it too, from the checkout
PATRONI_REQUIREMENTS = ROOT / "deploy" / "patroni" / "requirements.txt"
_PINS = hashlib.sha256(PATRONI_REQUIREMENTS.read_bytes()).hexdigest()[:12]
PATRONI_VENV = (
    Path("/opt/fixup") / f"patroni-{_PINS}" if os.geteuid() == 0 else ROOT / ".venv-patroni"
)
SYSTEM_PYTHON = Path("/usr/bin/python3")  # one the postgres user can run (not under /root)

SERVERS = (
    Package("postgresql", "the PostgreSQL server"),
    Package("postgresql-client", "pg_dump, psql", ("pg_dump",)),
    Package("mariadb-server", "the MariaDB server", ("mariadbd",)),
    Package("mariadb-client", "mariadb-dump, mariadb-admin", ("mariadb-dump",)),
    Package("redis-server", "the Redis server", ("redis-server",)),
)
BUILD = (
    Package("python3-venv", "the .venv"),
    Package("make", "the Makefile", ("make",)),
)
GATEWAY = (Package("nginx", "the gateway at :8080", ("nginx",)),)
# Swagger UI at /docs/ and playwright-core come from npm; a node that bundles npm
# (nodesource) conflicts with Debian's npm package, so each is installed only when absent
NODE = (
    Package("nodejs", "npm ci in tools/swagger (/docs/)", ("node",)),
    Package("npm", "npm ci in tools/swagger (/docs/)", ("npm",)),
)
BROWSER = (Package("chromium", "the Swagger UI test", ("chromium", "chromium-browser")),)
METRICS = (
    Package("prometheus", "Prometheus at :9090 and promtool", ("prometheus",)),
    Package("prometheus-postgres-exporter", "PG metrics", ("prometheus-postgres-exporter",)),
    Package("prometheus-mysqld-exporter", "MariaDB metrics", ("prometheus-mysqld-exporter",)),
    Package("prometheus-redis-exporter", "Redis metrics", ("prometheus-redis-exporter",)),
    Package("prometheus-alertmanager", "Alertmanager at :9093", ("prometheus-alertmanager",)),
)
LOAD = (
    Package("wrk", "the load tests (tests/reliability) and bench/", ("wrk",)),
    Package("valgrind", "bench/http_instructions.py (callgrind)", ("valgrind",)),
)
EXAMPLES = (
    Package("curl", "docs/examples.md (run by tests/e2e/test_examples.py)", ("curl",)),
    Package("jq", "docs/examples.md (run by tests/e2e/test_examples.py)", ("jq",)),
    Package("lsof", "docs/examples.md's breaker step", ("lsof",)),
)
CLOCKS = (
    Package("faketime", "a users service 90 s off (tests/e2e/test_clock_skew.py)", ("faketime",)),
)
HA = (
    Package("etcd-server", "the HA tier's consensus (tools/ha/ha_postgres.py)", ("etcd",)),
    Package("haproxy", "the HA tier's one address of the primary", ("haproxy",)),
    Package("tini", "the HA tier's members: reaps each postmaster Patroni leaves", ("tini",)),
    Package(
        "redis-sentinel", "the HA tier's Redis failover (tools/ha/ha_redis.py)", ("redis-sentinel",)
    ),
    Package(
        "pgbouncer",
        "POOLER=pgbouncer, make test-pgbouncer (tools/local/pgbouncer.py)",
        ("pgbouncer",),
    ),
)
BACKUPS = (
    Package("pgbackrest", "make backup / make restore: WAL archive, backups", ("pgbackrest",)),
    Package("mariadb-backup", "make backup / make restore: MariaDB copies", ("mariadb-backup",)),
)
LINTERS = (
    Package("docker-compose", "docker-compose config (lint)", ("docker-compose",)),
    Package("kubectl", "kubectl kustomize (deploy/k8s overlays)", ("kubectl",)),
)

TEST = GATEWAY + NODE + BROWSER + METRICS + LOAD + LINTERS + EXAMPLES + CLOCKS + HA + BACKUPS
TARGETS: dict[str, tuple[Package, ...]] = {
    "run": GATEWAY + NODE + METRICS,
    "backup": BACKUPS,
    "test": TEST,
    "ci": SERVERS + BUILD + TEST,
    "ha": SERVERS + HA + METRICS,  # the drill watches its tier (tools/ha/data_tier_watch.py)
}


def sbin(name: str) -> str | None:
    """A command by name, in the sbin directories a normal user's PATH lacks too."""
    return shutil.which(name, path=os.pathsep.join([*SBIN, os.environ.get("PATH", os.defpath)]))


def installed(package: Package) -> bool:
    if package.commands:
        return any(sbin(command) for command in package.commands)
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package.name],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.endswith(" installed")


def apt_install(names: list[str]) -> None:
    """apt-get install; on failure (stale or empty lists on a fresh machine) update, retry."""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"packages: apt-get install {' '.join(names)}", file=sys.stderr, flush=True)
    command = [apt, "install", "-y", "-qq", *names]
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
        subprocess.run([apt, "update", "-qq"], env=env, check=False)
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)


def ensure(packages: tuple[Package, ...]) -> list[Package]:
    """Install the missing packages when possible; -> the ones still missing."""
    missing = [p for p in packages if not installed(p)]
    if missing:
        apt_install([p.name for p in missing])
    return [p for p in missing if not installed(p)]


def hint(missing: list[Package]) -> str:
    names = " ".join(p.name for p in missing)
    needs = "; ".join(f"{p.name}: {p.why}" for p in missing)
    how = "as root" if shutil.which("apt-get") else "on Debian/Ubuntu, as root"
    return f"not installed ({needs}); {how}: apt-get install -y {names}"


def patroni_command() -> Path:
    return PATRONI_VENV / "bin" / "patroni"


def ensure_patroni() -> str | None:
    """The HA tier's Patroni in a venv of its own, built with the system python3 from the
    pinned requirements (again whenever they change); -> why it could not be, or None."""
    stamp = PATRONI_VENV / "requirements.txt"
    wanted = PATRONI_REQUIREMENTS.read_text()
    if patroni_command().exists() and stamp.is_file() and stamp.read_text() == wanted:
        return None
    if not SYSTEM_PYTHON.exists():
        return f"Patroni's venv needs {SYSTEM_PYTHON}; as root: apt-get install -y python3-venv"
    print(f"packages: Patroni into {PATRONI_VENV}", file=sys.stderr, flush=True)
    steps = (
        [str(SYSTEM_PYTHON), "-m", "venv", "--clear", str(PATRONI_VENV)],
        [str(PATRONI_VENV / "bin" / "pip"), "install", "-q", "-r", str(PATRONI_REQUIREMENTS)],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            return f"Patroni's venv: {' '.join(step[:3])} failed: {' '.join(last)}"
    stamp.write_text(wanted)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.packages", description=__doc__)
    parser.add_argument("command", choices=["ensure", "list"])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--strict", action="store_true", help="exit 1 when one stays missing")
    args = parser.parse_args(argv)
    packages = TARGETS[args.target]
    if args.command == "list":
        print(" ".join(p.name for p in packages))
        return 0
    missing = ensure(packages)
    notes = [hint(missing)] if missing else []
    if any(p in HA for p in packages):
        notes += [why] if (why := ensure_patroni()) else []
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 1 if notes and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
