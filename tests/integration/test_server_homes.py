"""Where a server run as another user keeps its files (tools/local/server_homes.py): a directory
that user can pass, whatever the checkout's parents are (a 0700 `mktemp -d`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tools.backups.backup_settings import BackupSettings
from tools.ha import ha_tier
from tools.local import server_homes
from tools.local.local_servers import StartError


def as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)


def test_a_checkout_under_a_closed_directory_gets_a_home_its_server_user_can_write() -> None:
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        var = Path(closed) / "fixup" / "var"
        home = server_homes.server_home("pg-", "postgres", var)
        root = home.parent
        try:
            assert root == server_homes.server_root(var)
            assert root.parent == server_homes.SHARED
            assert oct(root.stat().st_mode & 0o777) == "0o711"
            assert not str(home).startswith(closed)
            if os.geteuid() == 0:
                assert home.owner() == "postgres"
            done = as_postgres("touch", str(home / "written"))
            assert done.returncode == 0, done.stderr
            # one root per checkout: another var is another root, the same var the same one
            other = server_homes.server_root(var.parent / "other")
            other.rmdir()
            assert other != root
        finally:
            server_homes.remove_home(home)
            root.rmdir()
        assert not home.exists()


def test_a_shared_name_that_is_not_a_directory_of_ours_is_refused() -> None:
    with tempfile.TemporaryDirectory(prefix="fixup-taken-") as taken:
        var = Path(taken) / "var"
        root = server_homes.server_root(var)
        root.rmdir()
        root.symlink_to(taken)  # someone else's name in a shared directory
        try:
            with pytest.raises(StartError, match=f"{root} is not a directory of ours"):
                server_homes.server_root(var)
        finally:
            root.unlink()


def test_backups_of_a_checkout_its_server_users_cannot_pass_live_in_the_server_root() -> None:
    """`make backup-servers`, `make backup`, `make restore` from a checkout under a 0700
    home: the clusters, the repository and the restored copies where postgres and mysql
    pass; from an open checkout, under var/ as before."""
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        var = Path(closed) / "fixup" / "var"
        settings = BackupSettings.from_env(var)
        root = server_homes.server_root(var)
        try:
            base = root if os.geteuid() == 0 else var  # as another user nothing is handed over
            assert settings.root == var
            assert [settings.backups, settings.servers, settings.restores] == [
                base / "backups", base / "db", base / "restore"
            ]  # fmt: skip
            Path(closed).chmod(0o755)
            assert BackupSettings.from_env(var).backups == var / "backups"
        finally:
            root.rmdir()


def test_the_ha_tier_of_a_closed_checkout_lives_where_its_users_can_pass() -> None:
    """`make run ha=1` from a checkout under a 0700 home: the tier's members (postgres runs
    Patroni, mysql the MariaDB pair) under the server root; from an open checkout, var/ha/."""
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        var = Path(closed) / "fixup" / "var"
        root = server_homes.root_of(var)
        expected = root / "ha" if os.geteuid() == 0 else var / "ha"
        assert ha_tier.tier_root(var) == expected
        assert not root.exists()  # named, not made: `up` makes it
        Path(closed).chmod(0o755)
        assert ha_tier.tier_root(var) == var / "ha"


def test_a_throwaway_tier_in_the_server_root_is_gone_after_down() -> None:
    """A drill's tier (free ports) of a closed checkout: `down` stops it and takes its
    directory away, which no temporary directory's cleanup would reach."""
    with tempfile.TemporaryDirectory(prefix="fixup-closed-") as closed:
        Path(closed).chmod(0o700)
        var = Path(closed) / "var"
        root = ha_tier.tier_root(var)
        try:
            ha_tier.up(var, free_ports=True, parts=("redis",))
            assert (root / ha_tier.LEDGER).exists()
        finally:
            stopped = ha_tier.down(var)
        assert stopped == 5  # two Redis servers, three Sentinels
        assert not root.exists()
