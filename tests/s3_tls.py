"""S3 behind TLS for clients that speak nothing else (pgBackRest's own S3 client): NGINX
terminates TLS on a free loopback port with a self-signed certificate for `localhost`
(pgBackRest matches the endpoint against the certificate's DNS names, not IP addresses)
and passes the requests to moto's S3 server unchanged."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.local.local_servers import START_TIMEOUT
from tools.local.ports import free_port

CONF = """daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {root}/cert.pem;
    ssl_certificate_key {root}/key.pem;
    location / {{
      proxy_pass {upstream};
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
      proxy_request_buffering off;
    }}
  }}
}}
"""


@dataclass(frozen=True, slots=True)
class TlsFront:
    host: str
    port: int
    ca_file: Path  # the self-signed certificate itself
    access_log: Path


@contextmanager
def tls_front(upstream: str) -> Iterator[TlsFront]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = Path(tempfile.mkdtemp(prefix="fixup-tls-"))
    root.chmod(0o755)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=START_TIMEOUT,
    )  # fmt: skip
    (root / "cert.pem").chmod(0o644)
    port = free_port()
    (root / "nginx.conf").write_text(CONF.format(root=root, port=port, upstream=upstream))
    proc = subprocess.Popen(
        [nginx, "-c", str(root / "nginx.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        check = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"]
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # poll until a TLS handshake succeeds
            done = subprocess.run(check, input=b"", capture_output=True, timeout=START_TIMEOUT)
            if done.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no TLS on {port}: {(root / 'error.log').read_text()}")
            time.sleep(0.2)  # a poll interval
        yield TlsFront("localhost", port, root / "cert.pem", root / "access.log")
    finally:
        proc.terminate()
        proc.wait(START_TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
