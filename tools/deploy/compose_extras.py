"""The Compose services around the apps, for tools/deploy/compose.py: MinIO (S3), Mailpit (SMTP),
the Swagger UI, and ELK (observability/elk/: Elasticsearch, Logstash, Filebeat, Kibana and
the one-shot `elk-setup`). Security is on; every password comes from .env.
"""

from __future__ import annotations

from typing import Any

from lib import registry

ELASTIC_VERSION = "8.15.3"
ELASTIC = "docker.elastic.co"
ELK = "./observability/elk"
# Filebeat's Docker autodiscover reads only the containers carrying this label (the apps)
LOG_LABELS = {"co.elastic.logs/enabled": "true"}
VOLUMES: dict[str, Any] = {"esdata": {}, "miniodata": {}}
S3_BUCKET = "fixup"
APP_DEPENDS_ON = {
    "mailpit": {"condition": "service_healthy"},
    "minio-setup": {"condition": "service_completed_successfully"},
}
SMTP_PORT = 1025


def secret(name: str) -> str:
    """A value only .env gives: Compose refuses to start without it."""
    return f"${{{name}:?set {name} in .env}}"


def health(test: str, interval: str = "5s", retries: int = 30) -> dict[str, Any]:
    return {"test": ["CMD-SHELL", test], "interval": interval, "timeout": "5s", "retries": retries}


def healthy(*names: str) -> dict[str, Any]:
    return {name: {"condition": "service_healthy"} for name in names}


def mail_storage_env() -> dict[str, str]:
    """What the apps need to send mail through Mailpit and store files in MinIO."""
    return {
        "SMTP_HOST": "mailpit",
        "SMTP_PORT": str(SMTP_PORT),
        "S3_BUCKET": S3_BUCKET,
        "S3_ENDPOINT_URL": "http://minio:9000",
        "S3_ACCESS_KEY_ID": "fixup",
        "S3_SECRET_ACCESS_KEY": secret("MINIO_ROOT_PASSWORD"),
    }


def mail_storage_services() -> dict[str, Any]:
    return {
        "minio": {
            "image": "minio/minio:RELEASE.2024-10-13T13-34-11Z",
            "command": ["server", "/data", "--console-address", ":9001"],
            "environment": {
                "MINIO_ROOT_USER": "fixup",
                "MINIO_ROOT_PASSWORD": secret("MINIO_ROOT_PASSWORD"),
            },
            "ports": ["127.0.0.1:9001:9001"],
            "volumes": ["miniodata:/data"],
            "healthcheck": health("mc ready local"),
        },
        "minio-setup": {  # one-shot: the bucket the apps write to
            "image": "minio/mc:RELEASE.2024-10-08T09-37-26Z",
            "entrypoint": ["/bin/sh", "-c"],
            "command": [
                'mc alias set fixup http://minio:9000 fixup "$$MINIO_ROOT_PASSWORD"'
                f" && mc mb --ignore-existing fixup/{S3_BUCKET}"
            ],
            "environment": {"MINIO_ROOT_PASSWORD": secret("MINIO_ROOT_PASSWORD")},
            "depends_on": healthy("minio"),
        },
        "mailpit": {
            "image": "axllent/mailpit:v1.20.5",
            "ports": ["127.0.0.1:8025:8025"],
            "healthcheck": health("/mailpit readyz"),
        },
        "swagger-ui": {
            "image": "swaggerapi/swagger-ui:v5.17.14",
            "ports": ["127.0.0.1:8081:8080"],
            "environment": {"URLS_PRIMARY_NAME": "departments", "URLS": swagger_urls()},
            "volumes": ["./docs/openapi:/usr/share/nginx/html/openapi:ro"],
            "healthcheck": health("wget -q -O /dev/null http://127.0.0.1:8080/"),
        },
    }


def swagger_urls() -> str:
    urls = [
        f'{{"name":"{s.name}","url":"openapi/{s.name}.json"}}' for s in registry.built_services()
    ]
    return "[" + ",".join(urls) + "]"


def elk() -> dict[str, Any]:
    es_auth = "-u elastic:$${ELASTIC_PASSWORD}"
    return {
        "elasticsearch": {
            "image": f"{ELASTIC}/elasticsearch/elasticsearch:{ELASTIC_VERSION}",
            "environment": {
                "discovery.type": "single-node",
                "xpack.security.enabled": "true",
                "ELASTIC_PASSWORD": secret("ELASTIC_PASSWORD"),
                "ES_JAVA_OPTS": "-Xms512m -Xmx512m",
            },
            "volumes": ["esdata:/usr/share/elasticsearch/data"],
            "ports": ["127.0.0.1:9200:9200"],
            "healthcheck": health(
                f"curl -fsS {es_auth} 'http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow'",
                interval="10s",
            ),
        },
        "kibana": {
            "image": f"{ELASTIC}/kibana/kibana:{ELASTIC_VERSION}",
            "environment": {"KIBANA_SYSTEM_PASSWORD": secret("KIBANA_SYSTEM_PASSWORD")},
            "volumes": [f"{ELK}/kibana/kibana.yml:/usr/share/kibana/config/kibana.yml:ro"],
            "ports": ["127.0.0.1:5601:5601"],
            "depends_on": healthy("elasticsearch"),
            "healthcheck": health(
                "curl -fsS http://127.0.0.1:5601/api/status | grep -q available",
                interval="10s",
            ),
        },
        "elk-setup": {  # one-shot: ILM policy, index template, users, Kibana objects
            "image": "curlimages/curl:8.10.1",
            "entrypoint": ["/bin/sh", "/elk/setup/setup.sh"],
            "environment": {
                "ELASTIC_PASSWORD": secret("ELASTIC_PASSWORD"),
                "KIBANA_SYSTEM_PASSWORD": secret("KIBANA_SYSTEM_PASSWORD"),
                "LOGSTASH_WRITER_PASSWORD": secret("LOGSTASH_WRITER_PASSWORD"),
            },
            "volumes": [f"{ELK}:/elk:ro"],
            "depends_on": healthy("elasticsearch"),
        },
        "logstash": {
            "image": f"{ELASTIC}/logstash/logstash:{ELASTIC_VERSION}",
            "environment": {
                "LOGSTASH_WRITER_PASSWORD": secret("LOGSTASH_WRITER_PASSWORD"),
                "LS_JAVA_OPTS": "-Xms256m -Xmx256m",
            },
            "volumes": [
                f"{ELK}/logstash/config/logstash.yml:/usr/share/logstash/config/logstash.yml:ro",
                f"{ELK}/logstash/pipeline:/usr/share/logstash/pipeline:ro",
            ],
            "depends_on": {
                "elasticsearch": {"condition": "service_healthy"},
                "elk-setup": {"condition": "service_completed_successfully"},
            },
            "healthcheck": health("curl -fsS http://127.0.0.1:9600/", interval="10s"),
        },
        "filebeat": {
            "image": f"{ELASTIC}/beats/filebeat:{ELASTIC_VERSION}",
            "user": "root",  # reads the Docker socket and /var/lib/docker/containers
            "command": ["filebeat", "-e", "--strict.perms=false"],
            "volumes": [
                f"{ELK}/filebeat/filebeat.yml:/usr/share/filebeat/filebeat.yml:ro",
                "nginxlogs:/var/log/nginx:ro",
                "/var/lib/docker/containers:/var/lib/docker/containers:ro",
                "/var/run/docker.sock:/var/run/docker.sock:ro",
            ],
            "depends_on": healthy("logstash"),
            "healthcheck": health("curl -fsS http://127.0.0.1:5066/", interval="10s"),
        },
    }
