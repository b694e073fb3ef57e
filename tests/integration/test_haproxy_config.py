"""HAProxy's one configuration (deploy/haproxy/primary.cfg) as both tiers fill it: the
PostgreSQL members behind Patroni's checks, the MariaDB pair behind its watcher's; each
accepted by HAProxy's own check (`haproxy -c`), each server checked on its own port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.ha.ha_mariadb import MariaLayout, pair_proxy
from tools.ha.ha_postgres import PgLayout, primary_proxy

PG = PgLayout(
    etcd_client=(20001, 20002, 20003),
    etcd_peer=(20004, 20005, 20006),
    postgres=(20007, 20008, 20009),
    rest=(20010, 20011, 20012),
    primary=20013,
)
MARIA = MariaLayout(primary=20021, replica=20022, address=20023, checks=(20024, 20025))


@pytest.mark.parametrize(
    ("config", "listen", "servers"),
    [
        (primary_proxy(PG), "bind 127.0.0.1:20013", zip(PG.postgres, PG.rest, strict=True)),
        (pair_proxy(MARIA), "bind 127.0.0.1:20023", zip(MARIA.servers, MARIA.checks, strict=True)),
    ],
    ids=["postgres", "mariadb"],
)
def test_each_tier_fills_the_one_configuration_haproxy_accepts(
    config: str, listen: str, servers: zip[tuple[int, int]], tmp_path: Path
) -> None:
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is not installed: python3 -m tools.packages ensure ha"
    assert listen in config
    for port, check in servers:
        assert f"127.0.0.1:{port} maxconn 500 check port {check}" in config
    (tmp_path / "haproxy.cfg").write_text(config)
    done = subprocess.run(
        [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
