"""What the proxy's handlers share, stored on the app under one typed key."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from aiohttp import web

from .. import __version__
from ..engine.base import Engine
from ..errors import NotFound
from ..models.catalog import Sampling
from ..openai.upstream import UpstreamClient
from .admission import Admission
from .health import Health, HealthStatus


@dataclass
class ProxyState:
    model_name: str
    model_path: str
    providers: tuple[str, ...]
    admission: Admission
    # Installed models this proxy does not serve: asking for one by name is an error, while any
    # other name (claude-sonnet-4-5, ...) is served by the loaded model and echoed back.
    other_models: frozenset[str] = frozenset()
    engine: Engine | None = None
    # The loaded model's published sampling, for requests that set none (catalog models only).
    default_sampling: Sampling | None = None
    code_blocks: bool = False  # tools' code fields are written as fenced blocks (tooluse/codeblocks.py)
    repetition_guard: bool = True  # a reply that repeats itself is cut (engine/repetition.py)
    body_timeout: float = 60.0  # seconds to receive a request body
    # A stream whose engine has been silent this long (a long prefill) gets a ping event, so no
    # client's first-byte or idle watchdog gives up on it.
    ping_interval: float = 5.0
    load_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    pid: int = field(default_factory=os.getpid)
    # Streams being written, so that shutdown can end them with an error event when the grace is over.
    streams: set[asyncio.Task[object]] = field(default_factory=set)
    grace_over: bool = False
    # Upstream mode: no engine; /v1/messages goes to this OpenAI-compatible server instead.
    upstream: UpstreamClient | None = None

    def cut_streams(self) -> list[asyncio.Task[object]]:
        """Cancel every stream; each sees `grace_over` and ends with an error event, not a silent cut."""
        self.grace_over = True
        tasks = list(self.streams)
        for task in tasks:
            task.cancel()
        return tasks

    def check_model_name(self, requested: str) -> None:
        if requested in self.other_models:
            raise NotFound(
                f"model: {requested} is installed but this proxy serves {self.model_name}; "
                f"start it with --model {requested} to use it"
            )

    def health(self) -> Health:
        if self.upstream is not None:
            return self._upstream_health(self.upstream)
        stats = self.engine.stats() if self.engine is not None else None
        error = self.load_error or (stats.error if stats is not None else None)
        if error:
            status = HealthStatus.ERROR
        elif stats is None:
            status = HealthStatus.LOADING
        elif stats.state == "fatal":  # it kept dying: the proxy is exiting
            status = HealthStatus.ERROR
        else:  # the engine says whether its inference process is up or being restarted
            status = HealthStatus(stats.state)
        return Health(
            status=status, version=__version__, model=self.model_name, model_path=self.model_path,
            providers=self.providers, loaded=self.engine is not None,
            uptime_seconds=round(time.monotonic() - self.started, 3),
            requests_in_flight=self.admission.running, requests_waiting=self.admission.waiting,
            pid=self.pid, error=error,
        )


    def _upstream_health(self, client: UpstreamClient) -> Health:
        config = client.config
        return Health(
            status=HealthStatus.OK, version=__version__, model=config.model or "(the client's model name)",
            model_path="", providers=(), loaded=True, uptime_seconds=round(time.monotonic() - self.started, 3),
            requests_in_flight=self.admission.running, requests_waiting=self.admission.waiting, pid=self.pid,
            provider=config.provider, upstream=config.base_url,
        )


STATE = web.AppKey("state", ProxyState)
