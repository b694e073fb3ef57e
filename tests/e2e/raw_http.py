"""Raw bytes to a port and the responses back: for what an HTTP client will not send."""

from __future__ import annotations

import asyncio

from tools.local.service_process import PROCESS_MARGIN


async def exchange(port: int, *chunks: bytes) -> bytes:
    """Send the chunks (one write each) and read until the server closes the connection
    (it must: after a request it cannot parse, the connection's framing is lost)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), PROCESS_MARGIN)
    finally:
        writer.close()


def parse_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response in `raw` (Content-Length framed, which is all these are): status,
    headers (lower-case names), body."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return found
