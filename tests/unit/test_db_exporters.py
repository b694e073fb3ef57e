"""The database exporters get their credentials from files and variables, never in a URL
or on a command line (tools/deploy/db_exporters.py), and `make run` watches the servers the
services are configured on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.deploy.db_exporters import Server, command, dev_servers

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("job", "url"),
    [
        ("postgres", f"postgresql://app:{SECRET}@db.internal:5433/fixup_orders"),
        ("mysqld", f"mysql://app:{SECRET}@db.internal:3307/fixup_points"),
        ("redis", f"redis://:{SECRET}@cache.internal:6380/0"),
    ],
)
def test_no_password_on_the_command_line_or_in_a_url(tmp_path: Path, job: str, url: str) -> None:
    server = Server.from_url(job, url)  # type: ignore[arg-type]
    argv, env = command(server, "exporter", "127.0.0.1:1", tmp_path / "secrets")
    assert not any(SECRET in arg for arg in argv)
    urls = [v for k, v in env.items() if k in ("DATA_SOURCE_URI", "DATA_SOURCE_NAME")]
    assert not any(SECRET in v for v in urls)
    files = list((tmp_path / "secrets").glob("*")) if job != "redis" else []
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert SECRET in path.read_text()
    if job == "redis":
        assert env == {"REDIS_PASSWORD": SECRET}
    else:
        assert len(files) == 1


def test_without_a_password_nothing_is_written(tmp_path: Path) -> None:
    for job, url in (("postgres", "postgresql://postgres@127.0.0.1:5432"), ("mysqld", "")):
        command(Server.from_url(job, url), "x", "127.0.0.1:1", tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_make_run_watches_the_configured_servers() -> None:
    env = {
        "DEPARTMENTS_DATABASE_URL": "postgresql://app@10.0.0.5:6432/fixup_departments",
        "REDIS_URL": "redis://127.0.0.1:7000/0",
    }
    by_job = {s.job: s for s in dev_servers(env)}
    assert (by_job["mysqld"].host, by_job["mysqld"].port, by_job["mysqld"].user) == (
        "127.0.0.1",
        3306,
        "root",
    )
    assert by_job["redis"].port == 7000
    # the first PostgreSQL database of the registry (departments) names the server
    assert (by_job["postgres"].host, by_job["postgres"].port) == ("10.0.0.5", 6432)
