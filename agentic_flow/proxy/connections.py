"""The proxy's connections, below the application: how many, for how long, and what a request that
aiohttp's own HTTP parser refuses is answered with.

- A connection that has not sent a complete request head in time (a slow client trickling headers,
  or an idle keep-alive) is closed: aiohttp's keep-alive timer, which also runs from the moment a
  connection opens.  The body has `body_timeout` (views.read_json).
- Keep-alive without a race: every response promises `Keep-Alive: timeout=N` (N: `idle_timeout` in
  whole seconds), and the server closes an idle connection only `keepalive_grace(idle_timeout)` later.
  A server that closes at exactly the time its clients assume loses requests: its idle clock starts
  when it has written the last byte of a response, the client's when it has read it (later), so a
  client reusing a connection just inside its own limit sends into a socket the server is closing
  ("Connection error", or "Server disconnected", which a client without retries reports as such).
  aiohttp's client pools connections for 15 s, httpx for 5 s, undici for the header's N less 1 s:
  all below what the proxy now keeps.
- At most `max_connections` are open; one more gets 529 `overloaded_error` and is closed, so slow or
  idle clients cannot use up the process's file descriptors.
- aiohttp answers its parser's errors (a header over 8 KB, a bad chunk size, Content-Length with
  Transfer-Encoding, a NUL in a header) itself, below the middlewares, as plain text logged at ERROR
  with a traceback.  Here they get Anthropic's error envelope and a request id, and one WARNING line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ..anthropic.errors import ERROR_TYPES, error_body
from ..anthropic.sse import new_request_id
from .middlewares import error_response

log = logging.getLogger(__name__)


class ProxyRequestHandler(RequestHandler):  # type: ignore[misc]
    max_connections = 0  # set per connection by HttpServer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if self.max_connections and manager is not None and len(manager.connections) > self.max_connections:
            log.warning("connection refused: %d connections open (the limit)", self.max_connections)
            _refuse(transport)

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)  # a bug of ours: keep aiohttp's trace
        request_id = new_request_id()
        reason = message or (str(exc) if exc else "bad request")
        log.warning("refused a malformed request (%s): %d %s", request_id, status, reason.splitlines()[0][:200])
        response = error_response(status, ERROR_TYPES.get(status, "invalid_request_error"),
                                  f"malformed HTTP request: {reason.splitlines()[0][:200]}", request_id)
        response.force_close()  # the parser's state is unknown: never read another request from it
        return response


def _refuse(transport: asyncio.BaseTransport) -> None:
    request_id = new_request_id()  # in the header too, as on every other error
    body = json.dumps(error_body("overloaded_error", "too many open connections; retry shortly",
                                 request_id)).encode()
    head = (f"HTTP/1.1 529 Site Overloaded\r\nContent-Type: application/json\r\nrequest-id: {request_id}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    if isinstance(transport, asyncio.WriteTransport):
        transport.write(head + body)
    transport.close()


class HttpServer(web.Server):
    """aiohttp's low-level server, making our request handler for each connection."""

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_connections = max_connections

    def __call__(self) -> RequestHandler:
        handler = ProxyRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.max_connections = self._max_connections
        return handler


def keepalive_grace(idle_timeout: float) -> float:
    """How long past the promised idle timeout the server still keeps an idle connection."""
    return max(1.0, idle_timeout / 2)


def advertised_timeout(idle_timeout: float) -> int:
    return max(1, int(idle_timeout))


class ProxyRunner(web.AppRunner):
    """An AppRunner whose server is HttpServer (BaseRunner's abstract hook `_make_server`).
    `keepalive_timeout` is the idle time promised to clients; connections are kept a grace longer."""

    def __init__(self, app: web.Application, *, max_connections: int, keepalive_timeout: float,
                 **kwargs: Any) -> None:
        promised = advertised_timeout(keepalive_timeout)
        super().__init__(app, keepalive_timeout=keepalive_timeout + keepalive_grace(keepalive_timeout), **kwargs)
        self._max_connections = max_connections

        async def promise(request: web.BaseRequest, response: web.StreamResponse) -> None:
            if response.keep_alive is not False and request.keep_alive:
                response.headers.setdefault("Keep-Alive", f"timeout={promised}")

        app.on_response_prepare.append(promise)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return HttpServer(server.request_handler, request_factory=server.request_factory,
                          handler_cancellation=server.handler_cancellation,
                          max_connections=self._max_connections, **server._kwargs)
