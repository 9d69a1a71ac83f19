"""The idle exit (`--idle-exit SECONDS`): a proxy kept warm for the next run (`--keep-warm`) exits by
itself once it has served no request for that long, so nothing the user did not ask for stays running.

The clock counts HTTP requests of every kind, /health included: the CLI probes /health before it
reuses a proxy, and that probe must buy the run a whole idle period, or a proxy about to time out
could close between the probe and the request.  A request in flight (a long prefill, a stream)
holds the clock: the idle time runs from the end of the last request, never across one."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)


class IdleClock:
    """Requests in flight and when the last one ended."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_request = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in flight."""
        return 0.0 if self.in_flight else time.monotonic() - self.last_request

    def middleware(self) -> Middleware:
        clock = self

        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            clock.in_flight += 1
            try:
                # A stream's handler returns once its last event is written: the clock stays held until then.
                return await handler(request)
            finally:
                clock.in_flight -= 1
                clock.last_request = time.monotonic()

        return count_requests


async def watch_idle(clock: IdleClock, seconds: float, stop: asyncio.Event) -> None:
    """Set `stop` once no request has been served for `seconds`."""
    while (left := seconds - clock.idle_for()) > 0:
        # Look again when the limit could be reached at the earliest, or in a second: a request that
        # starts and ends between two looks moves the limit, and the next look sees it.
        await asyncio.sleep(min(left, 1.0))
    log.info("no request for %g s (--idle-exit): shutting down", seconds)
    stop.set()
