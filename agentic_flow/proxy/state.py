"""What the proxy's handlers share, stored on the app under one typed key."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from aiohttp import web

from .. import __version__
from .admission import Admission
from .backend import Backend
from .health import Health
from .idle import IdleClock


@dataclass
class ProxyState:
    backend: Backend  # the local engine or an upstream server (proxy/backend.py)
    admission: Admission
    body_timeout: float = 60.0  # seconds to receive a request body
    idle_exit: float | None = None  # --idle-exit: seconds without a request before the proxy exits
    started: float = field(default_factory=time.monotonic)
    pid: int = field(default_factory=os.getpid)
    # Streams being written, so that shutdown can end them with an error event when the grace is over.
    streams: set[asyncio.Task[object]] = field(default_factory=set)
    grace_over: bool = False
    idle: IdleClock = field(default_factory=IdleClock)  # for --idle-exit

    def cut_streams(self) -> list[asyncio.Task[object]]:
        """Cancel every stream; each sees `grace_over` and ends with an error event, not a silent cut."""
        self.grace_over = True
        tasks = list(self.streams)
        for task in tasks:
            task.cancel()
        return tasks

    def health(self) -> Health:
        b = self.backend.health()
        return Health(
            status=b.status, version=__version__, model=b.model, model_path=b.model_path, providers=b.providers,
            loaded=b.loaded, uptime_seconds=round(time.monotonic() - self.started, 3),
            requests_in_flight=self.admission.running, requests_waiting=self.admission.waiting, pid=self.pid,
            error=b.error, provider=b.provider, upstream=b.upstream, idle_exit_s=self.idle_exit,
            speculation=b.speculation,
        )


STATE = web.AppKey("state", ProxyState)
