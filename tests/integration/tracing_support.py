"""Tracing on in the test process for one test (then off again), into a real OTLP/gRPC
receiver on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lib import tracing
from tests.otlp_receiver import Receiver


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracing.configure("orders")
    try:
        yield running
    finally:
        await asyncio.to_thread(tracing.shutdown)  # the receiver answers on this loop
        await running.stop()
