"""The proxy's lifecycle (after uvicorn's Server.serve): bind, load the model, serve, drain, stop.

- The port is bound before the model loads, so a port in use fails fast with a clear message, and
  /health answers 503 "loading" until the model is verified and loaded.
- SIGTERM/SIGINT only set an event; shutdown then stops accepting connections and lets in-flight
  streams finish within the grace period.  A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
from pathlib import Path

import psutil
from aiohttp import web

from ..engine.base import Engine
from ..engine.worker import MAX_GROUPS
from ..errors import AgenticFlowError, PortInUse
from ..settings import ProxySettings
from .admission import Admission
from .app import create_app
from .state import ProxyState

log = logging.getLogger(__name__)



def configure_logging(level: str) -> None:
    """The proxy logs to stderr, whether it runs as `python -m agentic_flow.proxy` or in the foreground
    of `agentic-flow proxy start`."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def load_engine(settings: ProxySettings, state: ProxyState) -> Engine:
    from ..engine.client import WorkerEngine
    from ..models import store, verify

    path = store.resolve(settings.model, store=settings.model_dir)
    known = store.catalog_name_for(path, store=settings.model_dir)
    # The original system loaded truncated downloads and failed deep inside the runtime: check first.
    verify.verify_model_dir(path, name=known)
    state.model_path = str(path)
    log.info("loading %s from %s", settings.model, path)
    return await WorkerEngine.start(path, state.model_name, settings.providers, settings.threads,
                                    settings.max_batch, settings.log_level)


def initial_state(settings: ProxySettings) -> ProxyState:
    from ..models import store

    name = Path(settings.model).name if os.sep in settings.model else settings.model
    installed = (row.name for row in store.list_models(store=settings.model_dir) if row.installed)
    others = frozenset(n for n in installed if n != name)
    # As many generations run as the inference process can step at once; the rest wait here.
    admission = Admission(settings.max_batch * MAX_GROUPS, settings.max_queue)
    return ProxyState(name, settings.model, settings.providers, admission, other_models=others)


async def serve(settings: ProxySettings) -> int:
    state = initial_state(settings)
    app = create_app(state, api_key=settings.api_key, max_body=settings.max_body)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=settings.grace_seconds,
                           access_log=log if settings.log_level == "debug" else None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {settings.port} on {settings.host} is already in use; choose another with "
                "--port or ONNX_PROXY_PORT"
            ) from None
        raise
    print(f"agentic-flow proxy listening on http://{settings.host}:{settings.port}", file=sys.stderr,
          flush=True)

    stop = asyncio.Event()
    _install_signal_handlers(stop)
    exit_code = 0

    async def load() -> None:
        nonlocal exit_code
        try:
            state.engine = await load_engine(settings, state)
            log.info("model loaded; ready")
        except AgenticFlowError as exc:
            state.load_error = str(exc)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            exit_code = exc.exit_code
            stop.set()

    loader = asyncio.create_task(load())
    watchdog = asyncio.create_task(_watch_parent(settings.parent_pid, stop))
    await stop.wait()
    loader.cancel()
    watchdog.cancel()
    log.info("shutting down: draining in-flight requests (up to %ss)", settings.grace_seconds)
    await runner.cleanup()
    if state.engine is not None:
        await state.engine.close()
    return exit_code


async def _watch_parent(parent_pid: int | None, stop: asyncio.Event) -> None:
    """Stop when the process that started us is gone, so a killed CLI leaves no orphan proxy."""
    if parent_pid is None:
        return
    while _alive(parent_pid):
        await asyncio.sleep(1.0)
    log.info("parent process %s is gone; shutting down", parent_pid)
    stop.set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def first_then_force(signum: int) -> None:
        if stop.is_set():
            # A second signal: the user does not want to wait for the drain.  The inference process
            # goes with us; orphaned, it would finish its batch first.
            children = psutil.Process().children(recursive=True)
            for child in children:
                child.kill()
            psutil.wait_procs(children, timeout=2)  # a SIGKILL lands when the child is next scheduled
            os._exit(128 + signum)
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, first_then_force, signum)
