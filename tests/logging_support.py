"""Tests that call lib.logging.configure_logging put every global it changes back."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import structlog
import structlog.testing

import lib.logging


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Undo configure_logging on exit: root handlers and level, aiohttp.access, structlog,
    the access-log writer and the files it opened (closed here, so no writer keeps one)."""
    root = logging.getLogger()
    aiohttp_access = logging.getLogger("aiohttp.access")
    access = lib.logging.access_log
    saved_root = (root.handlers[:], root.level, aiohttp_access.disabled)
    saved_access = (access.service, access.stream, access.enabled)
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    saved_files = lib.logging._open_files[:]
    try:
        yield
    finally:
        for opened in lib.logging._open_files:
            if opened not in saved_files:
                opened.close()
        lib.logging._open_files[:] = saved_files
        structlog.contextvars.clear_contextvars()
        if saved_structlog is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**saved_structlog)
        root.handlers[:], level, aiohttp_access.disabled = saved_root
        root.setLevel(level)
        access.configure(*saved_access)


@contextlib.contextmanager
def logging_to(service: str, path: str, level: str = "INFO") -> Iterator[None]:
    """configure_logging(service, level, path) for the block, then everything as before."""
    with logging_restored():
        lib.logging.configure_logging(service, level, path)
        yield


@contextlib.contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's capture_logs at every level, whatever level an earlier test configured
    (its capture keeps the configured level filter, so a leftover WARNING would hide info)."""
    with logging_restored():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        with structlog.testing.capture_logs() as logs:
            yield logs
