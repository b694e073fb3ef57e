"""The backup schedule in Kubernetes (deploy/k8s/base/backup.yaml, by tools/deploy/k8s.py): the
CronJob `fixup-backup` and its settings, the ConfigMap `fixup-backup`.

The pod is pgBackRest's repository host (ADR 0027, "Production"): it reaches the pgBackRest
TLS server on the PostgreSQL host (`pg1-host-type=tls`, port 8432) and writes to the S3
repository. Every hour a differential backup, at BACKUP_FULL_HOUR (UTC) a full one;
`stanza-create` first (it succeeds when the stanza exists and matches, so a new cluster
needs no manual step). The secrets are files of the Secret `fixup-backup-keys` (referenced,
never written): `s3-keys.conf` in pgBackRest's include path (`repo1-s3-key`,
`repo1-s3-key-secret`, `repo1-cipher-pass`) and the client certificate for the TLS server.
MariaDB's `mariadb-backup` reads the server's data directory, so it runs on that host, not
in a pod (docs/operations.md, "Backups").
"""

from __future__ import annotations

from typing import Any

from tools.backups.backup_settings import STANZA
from tools.deploy import images
from tools.deploy.k8s_objects import PART_OF, container_security, labels, metadata, pod_security

NAME = "fixup-backup"
SECRET = "fixup-backup-keys"  # provisioned outside the repository, like fixup-secrets
TLS_SERVER_PORT = 8432  # pgBackRest's TLS server on the database host (tls-server-port)
HTTPS_PORT = 443  # the S3 repository
SCHEDULE = "15 * * * *"  # hourly; the full one at BACKUP_FULL_HOUR
FULL_HOUR = "02"
DEADLINE_SECONDS = 3600  # a run never outlives the next one (tools/backups/backup.py's bound)
KEYS_DIR = "/etc/pgbackrest/conf.d"
TLS_DIR = "/etc/pgbackrest/tls"
SCRATCH = "/tmp"
READ_BY_GROUP = 0o440  # owned by root, group = fsGroup: pgBackRest accepts a root key 0640

# pgBackRest reads every option from PGBACKREST_<OPTION>; the overlays set the host and the
# bucket (placeholders here name nothing that exists, so a forgotten one fails loudly)
SETTINGS = {
    "BACKUP_FULL_HOUR": FULL_HOUR,
    "PGBACKREST_STANZA": STANZA,
    "PGBACKREST_CONFIG_INCLUDE_PATH": KEYS_DIR,
    "PGBACKREST_LOCK_PATH": f"{SCRATCH}/pgbackrest",
    "PGBACKREST_LOG_PATH": f"{SCRATCH}/pgbackrest",
    "PGBACKREST_LOG_LEVEL_CONSOLE": "info",
    "PGBACKREST_LOG_LEVEL_FILE": "off",
    "PGBACKREST_START_FAST": "y",
    "PGBACKREST_PG1_HOST": "postgresql.invalid",
    "PGBACKREST_PG1_HOST_TYPE": "tls",
    "PGBACKREST_PG1_HOST_PORT": str(TLS_SERVER_PORT),
    "PGBACKREST_PG1_HOST_CA_FILE": f"{TLS_DIR}/ca.crt",
    "PGBACKREST_PG1_HOST_CERT_FILE": f"{TLS_DIR}/tls.crt",
    "PGBACKREST_PG1_HOST_KEY_FILE": f"{TLS_DIR}/tls.key",
    "PGBACKREST_PG1_PATH": "/var/lib/postgresql/15/main",
    "PGBACKREST_REPO1_TYPE": "s3",
    "PGBACKREST_REPO1_PATH": "/pgbackrest",
    "PGBACKREST_REPO1_S3_BUCKET": "fixup-backups",
    "PGBACKREST_REPO1_S3_ENDPOINT": "s3.invalid",
    "PGBACKREST_REPO1_S3_REGION": "us-east-1",
    "PGBACKREST_REPO1_S3_URI_STYLE": "host",
    "PGBACKREST_REPO1_CIPHER_TYPE": "aes-256-cbc",
    # tools/backups/backup_settings.py's defaults (BACKUP_RETENTION_FULL/_DIFF)
    "PGBACKREST_REPO1_RETENTION_FULL": "2",
    "PGBACKREST_REPO1_RETENTION_DIFF": "6",
}

# pgBackRest refuses a repository host of another release than the PostgreSQL host's: the
# run stops first, naming both, when the image carries another (tools/deploy/images.py)
VERSION_CHECK = (
    f'test "$(pgbackrest version)" = "pgBackRest {images.PGBACKREST_VERSION}" || '
    f'{{ echo "pgbackrest: $(pgbackrest version), the database host runs '
    f'{images.PGBACKREST_VERSION}" >&2; exit 1; }}; '
)
SCRIPT = (
    "set -eu; " + VERSION_CHECK + "kind=diff; "
    'if [ "$(date -u +%H)" = "$BACKUP_FULL_HOUR" ]; then kind=full; fi; '
    'pgbackrest stanza-create && exec pgbackrest backup --type="$kind"'
)


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(NAME), "data": SETTINGS}


def secret_volume(name: str, items: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "secret": {
            "secretName": SECRET,
            "defaultMode": READ_BY_GROUP,
            "items": [{"key": k, "path": k} for k in items],
        },
    }


def cron_job(image: str, uid: int) -> dict[str, Any]:
    container = {
        "name": "backup",
        "image": image,
        "command": ["sh", "-c", SCRIPT],
        "envFrom": [{"configMapRef": {"name": NAME}}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": SCRATCH},
            {"name": "s3-keys", "mountPath": KEYS_DIR, "readOnly": True},
            {"name": "pg-tls", "mountPath": TLS_DIR, "readOnly": True},
        ],
    }
    pod = {
        "restartPolicy": "Never",  # a failed run shows as a failed Job; the next hour retries
        "automountServiceAccountToken": False,
        "securityContext": {**pod_security(uid), "fsGroup": uid},
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            secret_volume("s3-keys", ["s3-keys.conf"]),
            secret_volume("pg-tls", ["ca.crt", "tls.crt", "tls.key"]),
        ],
    }
    job = {
        "backoffLimit": 1,
        "activeDeadlineSeconds": DEADLINE_SECONDS,
        "template": {"metadata": {"labels": {**labels(NAME), **PART_OF}}, "spec": pod},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(NAME),
        "spec": {
            "schedule": SCHEDULE,
            "concurrencyPolicy": "Forbid",  # two backups of one stanza never run together
            "startingDeadlineSeconds": 600,  # a run missed by more is skipped, not piled up
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels(NAME)}, "spec": job},
        },
    }


def objects(image: str, uid: int) -> list[dict[str, Any]]:
    return [config_map(), cron_job(image, uid)]
