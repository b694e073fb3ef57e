"""The registry's part of `.env.example`: `python -m tools.deploy.env_example [check]`.

`.env.example` is written by hand (each setting with its comment) except the blocks
between `# >>> registry: <block>` and `# <<< registry`, which this fills from
lib/registry.py: each service's port (and gRPC port), database URL, and the address its
peers call it at. `make deploy-gen` rewrites them; `check` (make swag-check) fails when
they are stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from lib import registry

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
BLOCK = re.compile(r"^# >>> registry: (\w+)\n.*?^# <<< registry\n", re.M | re.S)


def ports() -> list[str]:
    lines = []
    for s in registry.MICROSERVICES:
        lines.append(f"{s.env_prefix}_PORT={s.http_port}")
        if s.grpc_port is not None:
            lines.append(f"{s.env_prefix}_GRPC_PORT={s.grpc_port}")
    return lines


def databases() -> list[str]:
    return [f"{s.env_prefix}_DATABASE_URL={s.default_database_url}" for s in registry.MICROSERVICES]


def addresses() -> list[str]:
    return [
        f"{s.env_prefix}_URL={s.local_url}"
        if s.grpc_port is None
        else f"{s.env_prefix}_GRPC_ADDR={s.local_grpc_addr}"
        for s in registry.MICROSERVICES
    ]


BLOCKS: dict[str, Callable[[], list[str]]] = {
    "ports": ports,
    "databases": databases,
    "addresses": addresses,
}


def render(text: str) -> str:
    """`text` with every registry block refilled; an unknown or missing block is an error."""
    found: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise ValueError(f".env.example: unknown block {name!r}; known: {', '.join(BLOCKS)}")
        found.append(name)
        body = "".join(line + "\n" for line in BLOCKS[name]())
        return f"# >>> registry: {name}\n{body}# <<< registry\n"

    out = BLOCK.sub(fill, text)
    missing = set(BLOCKS) - set(found)
    if missing:
        raise ValueError(f".env.example: no `# >>> registry: {sorted(missing)[0]}` block")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = ENV_EXAMPLE.read_text()
    wanted = render(text)
    if args[:1] == ["check"]:
        if text != wanted:
            print(
                "env-check: .env.example's registry blocks are stale; run make deploy-gen",
                file=sys.stderr,
            )
            return 1
        return 0
    if text != wanted:
        ENV_EXAMPLE.write_text(wanted)
        print("env: wrote .env.example")
    return 0


if __name__ == "__main__":
    sys.exit(main())
