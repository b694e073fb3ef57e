"""The second pgBackRest repository on S3: pgBackRest's own S3 client (TLS, SigV4) against
moto's S3 server behind a TLS front (tests/s3_tls.py), the keys from the environment
into a 0600 file only. `make backup` writes into both repositories, WAL is archived to
both, and `verify` reads the S3 copy back."""

from __future__ import annotations

from dataclasses import replace

import botocore.session
import pytest

from tests.pictures_support import moto_server
from tests.s3_tls import tls_front
from tools.backups import backup, backup_servers, pgbackrest
from tools.backups.backup_settings import BackupSettings, S3Repository
from tools.local.local_servers import run
from tools.local.server_homes import remove_home, server_home

BUCKET = "fixup-backups"


def test_make_backup_writes_the_s3_repository_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_S3_KEY", "testing")
    monkeypatch.setenv("BACKUP_S3_KEY_SECRET", "testing")
    root = server_home("backups-")  # the postgres and mysql users reach below it
    with moto_server() as url, tls_front(url) as front:
        s3 = botocore.session.get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        repo = S3Repository(
            endpoint=front.host, port=front.port, bucket=BUCKET, region="us-east-1",
            path="/pgbackrest", verify_tls=True, ca_file=str(front.ca_file), uri_style="path",
        )  # fmt: skip
        settings = replace(BackupSettings.from_env(root), s3=repo)
        try:
            backup_servers.up(settings)
            keys = settings.pgbackrest_include / "s3-keys.conf"
            assert oct(keys.stat().st_mode & 0o777) == "0o600"
            assert "testing" not in settings.pgbackrest_conf.read_text()
            lines = backup.backup(settings, "full")
            assert any("into repo2" in line for line in lines), lines
            run(pgbackrest.pgbackrest(settings, "check"))  # WAL reaches both repositories
            assert [b.repo for b in pgbackrest.info(settings)] == [1, 2]
            verified = run(
                pgbackrest.pgbackrest(settings, "verify", "--repo=2", "--output=text", "--verbose")
            )
            assert pgbackrest.verify_problems(verified) == [], verified
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="pgbackrest/backup/fixup/")
            assert listed["KeyCount"] > 0
            assert "PUT /fixup-backups/pgbackrest/archive/" in front.access_log.read_text()
        finally:
            backup_servers.down(settings)
            remove_home(root)
