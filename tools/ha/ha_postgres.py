"""PostgreSQL that survives the loss of a machine: 3 etcd members, 3 PostgreSQL members
managed by Patroni in synchronous mode, and HAProxy sending connections to the primary
(tools/ha/ha_tier.py drives this module; ADR 0033).

Plain processes under `var/ha/` on loopback ports of their own. The members' settings are
the checked-in deploy/patroni/patroni.yml and member.yml; this module fills in only each
member's name, ports and directories.
"""

from __future__ import annotations

import json
import shutil
import string
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.ha.ha_network import MemberNet
from tools.local.local_servers import (
    StartError,
    hand_to,
    listening,
    postgres_bin,
    require,
    spawn,
    wait_until,
)
from tools.packages import ensure_patroni, patroni_command
from tools.time_scale import scaled

MEMBERS = 3
SHARED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "patroni" / "patroni.yml"
MEMBER_CONFIG = SHARED_CONFIG.with_name("member.yml")
HAPROXY_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "primary.cfg"
CHECK_INTER_MS = 1000  # HAProxy asks each member's Patroni this often
CHECK_FALL = 2  # failed checks before a member is out (its sessions cut)
# seconds a leader key lives without its Patroni renewing it (the shared file's)
TTL = int(yaml.safe_load(SHARED_CONFIG.read_text())["bootstrap"]["dcs"]["ttl"])
# three initdb/basebackups on a 2-core machine at load 3: 90 s, times FIXUP_TIME_SCALE
START_TIMEOUT = scaled(90.0)
SCOPE = "fixup"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PgLayout:
    """The ports of one HA PostgreSQL: etcd client/peer, PostgreSQL, Patroni REST, HAProxy."""

    etcd_client: tuple[int, ...]
    etcd_peer: tuple[int, ...]
    postgres: tuple[int, ...]
    rest: tuple[int, ...]
    primary: int  # HAProxy: the current primary
    net: MemberNet | None = None  # the members on hosts of their own (tools/ha/ha_network.py)

    def host(self, k: int) -> str:
        """The address member k's PostgreSQL and Patroni REST API listen on."""
        return LOOPBACK if self.net is None else self.net.host(k)

    @property
    def etcd_host(self) -> str:
        """etcd's address as the members reach it."""
        return LOOPBACK if self.net is None else self.net.gateway

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.primary}"

    @property
    def multi_host_dsn(self) -> str:
        hosts = ",".join(f"{self.host(k)}:{port}" for k, port in enumerate(self.postgres))
        return f"postgresql://postgres@{hosts}"


def _etcd_command(layout: PgLayout, k: int, root: Path) -> list[str]:
    cluster = ",".join(f"e{i}=http://{LOOPBACK}:{p}" for i, p in enumerate(layout.etcd_peer))
    port = layout.etcd_client[k]
    client = f"http://{layout.etcd_host}:{port}"  # what etcd tells the members of itself
    listen = ",".join(dict.fromkeys([f"http://{LOOPBACK}:{port}", client]))
    peer = f"http://{LOOPBACK}:{layout.etcd_peer[k]}"
    return [
        *("etcd", "--name", f"e{k}", "--data-dir", str(root / f"etcd{k}")),
        *("--listen-client-urls", listen, "--advertise-client-urls", client),
        *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
        *("--initial-cluster", cluster, "--initial-cluster-token", SCOPE),
        *("--initial-cluster-state", "new", "--log-level", "warn"),
    ]


def write_config(layout: PgLayout, k: int, root: Path, extra: dict[str, str] | None) -> Path:
    """Member k's configuration directory, as Patroni merges it (its .yml files in name
    order): deploy/patroni/patroni.yml, deploy/patroni/member.yml filled in, then what the
    member alone has: `extra` parameters (its WAL archiving, tools/backups/backup_servers.py)
    and, on hosts of their own, the members' subnet in pg_hba."""
    home = root / f"pg{k}"
    conf = home / "patroni"
    conf.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHARED_CONFIG, conf / "00-shared.yml")
    member = string.Template(MEMBER_CONFIG.read_text()).substitute(
        name=f"pg{k}",
        host=layout.host(k),
        port=layout.postgres[k],
        rest_port=layout.rest[k],
        etcd_hosts=",".join(f"{layout.etcd_host}:{port}" for port in layout.etcd_client),
        home=home,
        bin_dir=postgres_bin(),
    )
    (conf / "10-member.yml").write_text(member)
    own: dict[str, object] = {"parameters": extra or {}}
    if layout.net is not None:  # the members' and HAProxy's addresses, not loopback's
        subnet = f"{layout.net.subnet}.0/24"
        own["pg_hba"] = [
            "local all all trust",
            f"host replication replicator {subnet} trust",
            f"host all all {subnet} trust",
        ]
    (conf / "20-own.yml").write_text(json.dumps({"postgresql": own}))  # JSON is YAML
    return conf


def haproxy_config(
    name: str, bind: str, servers: list[tuple[str, str, int, int]], inter_ms: int, fall: int
) -> str:
    """deploy/haproxy/primary.cfg for one address; `servers`: (name, host, port, check port)."""
    lines = "\n".join(
        f"    server {server} {host}:{port} maxconn 500 check port {check}"
        for server, host, port, check in servers
    )
    template = string.Template(HAPROXY_TEMPLATE.read_text())
    return template.substitute(name=name, bind=bind, servers=lines, inter_ms=inter_ms, fall=fall)


def primary_proxy(layout: PgLayout) -> str:
    """HAProxy's configuration of the cluster: each member in while its Patroni says primary."""
    members = [
        (f"pg{k}", layout.host(k), port, layout.rest[k]) for k, port in enumerate(layout.postgres)
    ]
    bind = f"{LOOPBACK}:{layout.primary}"
    return haproxy_config("primary", bind, members, CHECK_INTER_MS, CHECK_FALL)


def start_member(root: Path, layout: PgLayout, k: int) -> int:
    """Member k's Patroni (which starts its PostgreSQL), on its own host when the members
    have one; -> its process group. Under tini as a subreaper: Patroni's postmaster, once
    stopped, must be reaped near, or under the test suite's subreaper its zombie looks
    alive to Patroni, which waits on it for ever."""
    home = root / f"pg{k}"
    command = [str(patroni_command()), str(home / "patroni")]
    host = [] if layout.net is None else layout.net.run_in(k, [])
    prefix = (shutil.which("tini") or "/usr/bin/tini", "-s", "--", *host)
    return spawn(command, home / "patroni.log", as_postgres=True, prefix=prefix)


def _rest(layout: PgLayout, k: int, path: str) -> dict[str, Any]:
    """Member k's Patroni REST API's answer at `path`; {} when it is away."""
    try:
        url = f"http://{layout.host(k)}:{layout.rest[k]}{path}"
        with urllib.request.urlopen(url, timeout=1) as answer:
            found = json.load(answer)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def member_status(layout: PgLayout, k: int) -> dict[str, Any]:
    """Member k's own status (role, state; on the primary, its pg_stat_replication)."""
    return _rest(layout, k, "/patroni")


def cluster_state(layout: PgLayout) -> list[dict[str, object]]:
    """Patroni's view of every member (name, role, state, lag), from any member that answers."""
    for k in range(MEMBERS):
        if members := _rest(layout, k, "/cluster").get("members"):
            return list(members)
    return []


def sync_standby(layout: PgLayout) -> str | None:
    """The member that holds every acknowledged commit beside the primary, if one does."""
    members = cluster_state(layout)
    return next((str(m["name"]) for m in members if m.get("role") == "sync_standby"), None)


def primary_member(layout: PgLayout) -> int | None:
    """The member that holds the leader key and calls itself primary (one just woken may
    call itself primary a moment before it finds another holds the key), if one does."""
    leader = next((m.get("name") for m in cluster_state(layout) if m.get("role") == "leader"), None)
    names = [f"pg{k}" for k in range(MEMBERS)]
    if leader not in names:
        return None
    k = names.index(str(leader))
    return k if member_status(layout, k).get("role") == "primary" else None


def postmaster_pid(root: Path, k: int) -> int:
    """Member k's postmaster, from its data directory (the primary-kill fault)."""
    return int((root / f"pg{k}" / "data" / "postmaster.pid").read_text().split()[0])


def member_data(root: Path) -> list[Path]:
    """Every member's data directory."""
    return [root / f"pg{k}" / "data" for k in range(MEMBERS)]


def require_packages() -> None:
    """A StartError naming what to install: etcd, HAProxy, tini, PostgreSQL or Patroni missing."""
    for tool in ("etcd", "haproxy", "tini"):
        require(tool, "etcd-server haproxy tini")
    if not patroni_command().exists() and (why := ensure_patroni()):
        raise StartError(f"no Patroni: {why}")
    postgres_bin()


def start(
    layout: PgLayout,
    root: Path,
    started: list[int],
    extra: Callable[[Path], dict[str, str]] | None = None,
) -> None:
    """etcd, then the Patroni members, then HAProxy, each process group appended to
    `started` as it starts (a failure half-way still knows what to stop); `extra(data)`:
    parameters of the member whose data directory that is."""
    require_packages()
    root.mkdir(parents=True, exist_ok=True)
    for k in range(MEMBERS):
        started.append(spawn(_etcd_command(layout, k, root), root / f"etcd{k}.log"))
    wait_until(
        lambda: all(listening(LOOPBACK, p) for p in layout.etcd_client), "etcd", START_TIMEOUT
    )
    for k in range(MEMBERS):
        home = root / f"pg{k}"
        conf = write_config(layout, k, root, extra(home / "data") if extra else None)
        hand_to("postgres", home, conf, *conf.iterdir())
        home.chmod(0o700)
        started.append(start_member(root, layout, k))
    wait_until(lambda: primary_member(layout) is not None, "a Patroni primary", START_TIMEOUT)
    cfg = root / "haproxy.cfg"
    cfg.write_text(primary_proxy(layout))
    started.append(spawn([require("haproxy"), "-db", "-f", str(cfg)], root / "haproxy.log"))
    wait_until(lambda: listening(LOOPBACK, layout.primary), "HAProxy", START_TIMEOUT)
    wait_until(lambda: sync_standby(layout) is not None, "a synchronous standby", START_TIMEOUT)


def layout_from(ports: list[int], *, isolated: bool = False) -> PgLayout:
    """A layout over 4 x MEMBERS + 1 ports, in the order of the fields."""
    m = MEMBERS
    return PgLayout(
        etcd_client=tuple(ports[0:m]),
        etcd_peer=tuple(ports[m : 2 * m]),
        postgres=tuple(ports[2 * m : 3 * m]),
        rest=tuple(ports[3 * m : 4 * m]),
        primary=ports[4 * m],
        net=MemberNet(ports[4 * m], m) if isolated else None,
    )


PORTS_NEEDED = 4 * MEMBERS + 1
