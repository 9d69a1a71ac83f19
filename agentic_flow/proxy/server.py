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
import time
from collections.abc import Callable

import psutil
from aiohttp import web

from ..engine.base import Engine
from ..errors import AgenticFlowError, EngineError, PortInUse
from ..openai.upstream import UpstreamClient
from ..settings import ProxySettings
from .admission import Admission
from .app import create_app
from .backend import Backend
from .connections import ProxyRunner
from .idle import watch_idle
from .local_backend import LocalBackend
from .logs import configure_logging
from .state import ProxyState
from .upstream_backend import UpstreamBackend

log = logging.getLogger(__name__)



async def load_engine(settings: ProxySettings, backend: LocalBackend,
                      on_fatal: Callable[[str], None] | None = None) -> Engine:
    from ..engine.client import WorkerEngine
    from ..models import catalog, store, verify
    from . import tool_policy

    path = store.resolve(settings.model, store=settings.model_dir)
    known = store.catalog_name_for(path, store=settings.model_dir)
    # The original system loaded truncated downloads and failed deep inside the runtime: check first.
    verify.verify_model_dir(path, name=known)
    backend.model_path = str(path)
    entry = catalog.get(known) if known else None
    backend.default_sampling = entry.sampling if entry else None
    syntax = settings.tool_syntax if settings.tool_syntax != "auto" else (entry.tool_syntax if entry else "json")
    backend.code_blocks = syntax == "code"
    backend.repetition_guard = settings.repetition_guard
    backend.tool_policy = tool_policy.resolve(settings.tool_policy, entry.agent_tools if entry else None,
                                              known or path.name)
    log.info("tool policy: %s", backend.tool_policy.describe())
    log.info("loading %s from %s", settings.model, path)
    return await WorkerEngine.start(path, backend.model_name, settings.providers, settings.threads,
                                    settings.max_batch, settings.log_level, on_fatal=on_fatal,
                                    prefix_cache_mb=settings.prefix_cache_mb, draft_tokens=settings.draft_tokens,
                                    speculate_greedy=settings.speculate_greedy)


def initial_state(settings: ProxySettings) -> ProxyState:
    backend: Backend
    if settings.upstream_mode:
        backend = UpstreamBackend(UpstreamClient(settings.upstream_config()))
    else:
        backend = local_backend(settings)
    # As many generations run as the backend serves at once; the rest wait here, and beyond max_queue get 529.
    admission = Admission(backend.capacity, settings.max_queue)
    return ProxyState(backend, admission, body_timeout=settings.body_timeout, idle_exit=settings.idle_exit)


def local_backend(settings: ProxySettings) -> LocalBackend:
    from ..models import store

    name = settings.served_model
    installed = (row.name for row in store.list_models(store=settings.model_dir) if row.installed)
    others = frozenset(n for n in installed if n != name)
    return LocalBackend(name, settings.model, settings.providers, settings.max_batch, other_models=others)


class ProxyServer:
    """One run of the proxy, in three steps as uvicorn's Server: `startup` binds the port and starts
    loading the model (so /health answers "loading" at once), `main_loop` waits for a signal, a dead
    parent, a failed load or the idle exit (proxy/idle.py), and `shutdown` stops accepting, drains
    in-flight requests within the grace period, cuts what remains with an `error` event, and stops the
    inference process."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.state = initial_state(settings)
        self.should_exit = asyncio.Event()
        self.exit_code = 0
        self._runner: ProxyRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def serve(self) -> int:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()
        return self.exit_code

    async def startup(self) -> None:
        s = self.settings
        app = create_app(self.state, api_key=s.api_key, max_body=s.max_body)
        app.on_shutdown.append(self._drain)  # runs once the sites stop accepting, before connections close
        # The drain is ours (_drain); aiohttp's own timeout only bounds what is left after it.
        # lingering_time: after an error answered before the body was read (413, 408), aiohttp reads and
        # drops the rest for this long so that the client sees the answer; 10 s by default, which a
        # client sending its body a byte at a time would use to hold the connection.
        self._runner = ProxyRunner(app, max_connections=s.max_connections, keepalive_timeout=s.idle_timeout,
                                   lingering_time=1.0, handler_cancellation=True, shutdown_timeout=1.0,
                                   access_log=log if s.log_level == "debug" else None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, s.host, s.port).start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {s.port} on {s.host} is already in use; choose another with "
                                "--port or ONNX_PROXY_PORT") from None
            raise
        print(f"agentic-flow proxy listening on http://{s.host}:{s.port}", file=sys.stderr, flush=True)
        _install_signal_handlers(self.should_exit)
        self._tasks = [asyncio.create_task(_watch_parent(s.parent_pid, self.should_exit))]
        backend = self.state.backend
        if isinstance(backend, UpstreamBackend):  # nothing to load: serve at once, through the pooled client
            await backend.start()
            log.info("upstream mode: %s at %s", s.provider, backend.client.config.base_url)
            self._watch_idle()
        elif isinstance(backend, LocalBackend):
            self._tasks.append(asyncio.create_task(self._load(backend)))

    async def main_loop(self) -> None:
        await self.should_exit.wait()

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            log.info("shutting down: draining in-flight requests (up to %ss)", self.settings.grace_seconds)
            await self._runner.cleanup()
        await self.state.backend.close()

    def _watch_idle(self) -> None:
        """With --idle-exit, start the clock once the proxy can serve: a slow model load is not idleness."""
        if self.settings.idle_exit is not None:
            self.state.idle.last_request = time.monotonic()
            self._tasks.append(asyncio.create_task(watch_idle(self.state.idle, self.settings.idle_exit,
                                                              self.should_exit)))

    def _engine_gave_up(self, reason: str) -> None:
        # The inference process keeps dying: exit non-zero so the supervisor above (the CLI, systemd) sees it.
        print(f"error: {reason}", file=sys.stderr, flush=True)
        self.exit_code = EngineError.exit_code
        self.should_exit.set()

    async def _load(self, backend: LocalBackend) -> None:
        try:
            backend.engine = await load_engine(self.settings, backend, on_fatal=self._engine_gave_up)
            log.info("model loaded; ready")
            self._watch_idle()
        except AgenticFlowError as exc:
            backend.load_error = str(exc)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            self.exit_code = exc.exit_code
            self.should_exit.set()

    async def _drain(self, app: web.Application) -> None:
        admission = self.state.admission
        try:
            await asyncio.wait_for(admission.idle(), self.settings.grace_seconds)
        except TimeoutError:
            cut = self.state.cut_streams()
            log.warning("grace period over: ending %d stream(s) with an error event", len(cut))
            if cut:
                await asyncio.wait(cut, timeout=2.0)


def run(settings: ProxySettings) -> int:
    """Serve until stopped; the exit code.  The one entry point of `python -m agentic_flow.proxy` and
    `agentic-flow proxy start` (foreground)."""
    configure_logging(settings.log_level)
    return asyncio.run(ProxyServer(settings).serve())


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
