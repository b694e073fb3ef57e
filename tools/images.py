"""NGINX's and Alertmanager's images in the deploy files, pinned in one place: Compose's gateway
(tools/compose.py) and the Kubernetes account pages (tools/k8s_pages.py) run the same
release of nginx's stable branch (even minor: 1.30; 1.27 reached its end of life).

The pin is an exact version tag. A digest (`…@sha256:<digest>`) pins the bytes as well;
it is appended here once read from the registry, never typed from memory:
`docker buildx imagetools inspect nginx:<tag> --format '{{json .Manifest.Digest}}'`
(the multi-arch index's digest; likewise for nginxinc/nginx-unprivileged). Refresh it
with each nginx stable release: docs/operations.md, "Supply chain".
"""

from __future__ import annotations

NGINX_VERSION = "1.30.6"  # nginx's stable branch (nginx.org/en/download.html); 1.30.5 had a CVE
# Debian-based: the Compose gateway's healthcheck runs curl, which the image carries
NGINX = f"nginx:{NGINX_VERSION}"
# uid 101 by default, listens on 8080: the account pages' pod (read-only root filesystem)
NGINX_UNPRIVILEGED = f"nginxinc/nginx-unprivileged:{NGINX_VERSION}-alpine"

# the alert router in Compose (tools/compose.py) and the Kubernetes base
# (tools/k8s_alertmanager.py); 0.25.1 fixes CVE-2023-40577 (stored XSS in its UI)
ALERTMANAGER_VERSION = "0.25.1"
ALERTMANAGER = f"prom/alertmanager:v{ALERTMANAGER_VERSION}"
