"""The third-party releases of the deploy files, each pinned in one place; the comment
above each says where it is used. tools/deploy/advisories.py records, per component, the
release that fixed each advisory we know of; tests/unit/test_images.py fails when a pin here
is older. A pin is an exact version tag; a digest (`…@sha256:<digest>`) is appended only
once read from the registry (`docker buildx imagetools inspect nginx:<tag> --format
'{{json .Manifest.Digest}}'`), with each nginx stable release: docs/operations.md, "Supply
chain".
"""

from __future__ import annotations

# nginx's stable branch, even minor (nginx.org/en/download.html), for Compose's gateway
# (docker-compose.yml; Debian-based: its healthcheck runs curl) and the Kubernetes account
# pages (deploy/k8s/base/pages.yaml)
NGINX_VERSION = "1.30.7"
NGINX = f"nginx:{NGINX_VERSION}"
# uid 101 by default, listens on 8080: the account pages' pod (read-only root filesystem)
NGINX_UNPRIVILEGED = f"nginxinc/nginx-unprivileged:{NGINX_VERSION}-alpine"

# the alert router in Compose (docker-compose.yml) and the Kubernetes base
# (deploy/k8s/base/alertmanager.yaml); upstream supports its latest release only
ALERTMANAGER_VERSION = "0.34.0"
ALERTMANAGER = f"prom/alertmanager:v{ALERTMANAGER_VERSION}"

# Compose's Prometheus (docker-compose.yml): a supported 3.x release (2.x is out of support)
PROMETHEUS_VERSION = "3.14.0"
PROMETHEUS = f"prom/prometheus:v{PROMETHEUS_VERSION}"

# the Kubernetes edge's controller (ADR 0035, installed once per cluster:
# deploy/k8s/README.md); its Helm chart at this version installs the CRDs (Gateway API
# experimental channel v1.6.1 included) that tools/gatewaylint/crds/ vendors
ENVOY_GATEWAY_VERSION = "1.9.0"

# pgBackRest must be the same release on the repository host (the backup CronJob: the
# fixup image's runtime stage) and on the PostgreSQL host (Debian 12's package, 2.45-1:
# tools/packages.py installs it there). The Dockerfile installs exactly this release
# (ARG PGBACKREST_VERSION) and the CronJob refuses to run another one.
PGBACKREST_VERSION = "2.45"

# the Dockerfile's bases (tests/unit/test_images.py reads its FROM lines): Node's active LTS
# for the Swagger UI bundle stage (platform-neutral files only); the Python stages stay on
# Debian 12 (LTS until 2028-06) while the database hosts do: Debian 13's pgBackRest is not
# 2.45, and the build and runtime stages must share one C library
NODE_IMAGE = "node:24-trixie-slim"
PYTHON_IMAGE = "python:3.11-slim-bookworm"
