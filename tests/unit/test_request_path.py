"""The middleware order is declared once (lib.http.middleware.chain) and docs/architecture.md
walks it in that order ("The path of a request")."""

from __future__ import annotations

import re
from pathlib import Path

from lib.config import ServiceSettings
from lib.http import middleware as mw

ROOT = Path(__file__).resolve().parents[2]
# each layer's name in the document
STEP = {
    "security_headers_middleware": "security headers",
    "request_id_middleware": "request id",
    "database_scope_middleware": "database scope",
    "cors": "CORS",
    "observe": "access log and metrics",
    "error_middleware": "errors",
    "ip_limit": "per-IP rate limit",
    "auth_middleware": "auth",
    "user_limit_middleware": "per-user rate limit",
    "not_modified_middleware": "not modified",
    "audit_middleware": "audit",
}


def test_the_document_walks_the_chain_in_its_order() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The path of a request", 1)[1].split("\n## ", 1)[0]
    documented = [s for s in re.findall(r"^\s+\d+\. \*([^*]+)\*", section, re.M) if s != "tracing"]
    chain = [STEP[layer.__name__] for layer in mw.chain(ServiceSettings(service="t"))]
    assert documented == chain
