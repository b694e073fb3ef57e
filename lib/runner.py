"""The process of every service (`python -m services.<svc>`): uvloop, workers, SIGTERM drain.

`run_service(...)`: uvloop; WORKERS=N processes share the port with SO_REUSEPORT (then
prometheus_client's multiprocess mode sums /metrics over the workers, and REDIS_URL is
required, which the settings enforce); SIGTERM drains in-flight requests for up to
SHUTDOWN_TIMEOUT seconds. This module imports nothing that creates metrics, so the
multiprocess directory can be set before they exist.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import uvloop
from aiohttp import web

from lib import tracing
from lib.config import ServiceSettings, load_settings
from lib.http.server import serve_app
from lib.logging import configure_logging

AppFactory = Callable[[Any], web.Application]


def _factory(path: str) -> AppFactory:
    module, _, name = path.partition(":")
    factory: AppFactory = getattr(importlib.import_module(module), name)
    return factory


def serve(factory_path: str, settings: ServiceSettings, master_pid: int | None = None) -> None:
    """One worker: build the app and serve it until SIGTERM/SIGINT (or its master's end)."""
    if master_pid is not None:
        _end_with_master(master_pid)
    tracing.configure(settings.service)  # before the app: its middleware chain depends on it
    configure_logging(settings.service, settings.log_level, settings.log_file)
    app = _factory(factory_path)(settings)
    app.on_startup.append(_freeze_gc)
    if tracing.ENABLED:
        app.on_cleanup.append(_flush_traces)
    serve_app(  # web.run_app
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=settings.workers > 1,
        shutdown_timeout=settings.shutdown_timeout,
        keepalive_timeout=settings.http_keepalive_timeout,
        loop=uvloop.new_event_loop(),
    )


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _end_with_master(master_pid: int) -> None:
    """A worker whose master is gone (even SIGKILLed) must not go on serving, unseen and
    holding the port: it gets SIGTERM, drains and exits. Linux sends that signal itself the
    moment the master dies; elsewhere a thread watches for the worker's re-parenting."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_master, args=(master_pid,), daemon=True).start()
    if os.getppid() != master_pid:  # it died before the watch began
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_master(master_pid: int) -> None:
    while os.getppid() == master_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


async def _freeze_gc(_: web.Application) -> None:
    """Move start-up objects out of the collector's sight: fewer, shorter GC pauses under
    load (the p99 tail)."""
    gc.collect()
    gc.freeze()


async def _flush_traces(_: web.Application) -> None:
    """The spans still queued are exported before the worker exits."""
    tracing.shutdown()


def run_service(service: str, settings_cls: type[ServiceSettings], factory_path: str) -> None:
    settings = load_settings(settings_cls, service)
    if settings.workers == 1:
        serve(factory_path, settings)
        return
    # the workers' metric files live as long as the master: removed when the last worker ends
    with tempfile.TemporaryDirectory(prefix=f"fixup-{service}-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        exitcode = _run_workers(service, settings, factory_path)
    sys.exit(exitcode)


def _run_workers(service: str, settings: ServiceSettings, factory_path: str) -> int:
    """Spawn `settings.workers` workers, forward SIGTERM/SIGINT to them, wait for them all:
    the worst exit code."""
    context = multiprocessing.get_context("spawn")  # children import with the env set
    workers = [
        context.Process(
            target=serve, args=(factory_path, settings, os.getpid()), name=f"{service}-{i}"
        )
        for i in range(settings.workers)
    ]
    for index, worker in enumerate(workers):
        os.environ["FIXUP_WORKER_INDEX"] = str(index)  # the spawned child inherits it
        worker.start()

    def forward(signum: int, _: Any) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    return max((w.exitcode or 0) for w in workers)
