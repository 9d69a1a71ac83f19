"""The client for an OpenAI-compatible upstream, with the manners a shared cluster expects:

- one pooled `aiohttp.ClientSession` for the proxy's lifetime (keep-alive connections);
- a semaphore bounding the requests in flight (the rest wait their turn here, not at the upstream);
- connect and per-read timeouts;
- retries with exponential backoff, honouring `retry-after`, ONLY before anything was sent to our
  client: for a stream that means before its first event; after it, a failure ends the stream with
  an Anthropic `error` event;
- when our client goes away, closing the `stream()` generator closes the upstream response, which
  drops the connection so the engine (vLLM aborts on disconnect) stops generating.

The proxy calls two methods, both on Anthropic wire JSON:

    await client.messages(anthropic_request) -> Anthropic message dict   (raises UpstreamError)
    client.stream(anthropic_request) -> async iterator of Anthropic event dicts
        (raises UpstreamError before the first event; yields an `error` event after it)
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import Any

import aiohttp

from .errors import UpstreamError, upstream_error
from .providers import UpstreamConfig
from .sse import DONE_DATA, SSEParser, json_object
from .upstream_request import to_openai_request
from .upstream_response import StreamTranslator, to_anthropic_message

log = logging.getLogger(__name__)

_TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


class UpstreamClient:
    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> UpstreamClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Create the pooled session; call it inside the running loop (an aiohttp cleanup_ctx)."""
        if self._session is None:
            headers = {"Content-Type": "application/json", **self.config.headers}
            if self.config.api_key:
                headers["Authorization"] = f"Bearer {self.config.api_key}"
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_in_flight),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.config.connect_timeout, sock_read=self.config.read_timeout
                ),
                headers=headers,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return self._session

    def _payload(self, request: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        return to_openai_request(
            {**request, "stream": stream}, model=self.config.model, send_top_k=self.config.send_top_k
        )

    async def messages(self, request: Mapping[str, Any]) -> dict[str, Any]:
        payload = self._payload(request, stream=False)
        async with self._slots:
            for attempt in range(self.config.retries + 1):
                try:
                    async with self.session.post(self.config.chat_url, json=payload) as response:
                        if response.status != 200:
                            raise upstream_error(response.status, await response.read(), response.headers)
                        body = await response.json(content_type=None)
                    break
                except (*_TRANSIENT, UpstreamError, ValueError) as exc:  # ValueError: a body not JSON
                    await self._before_retry(exc, attempt)
        return to_anthropic_message(body, model=str(request["model"]))

    async def stream(self, request: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        payload = self._payload(request, stream=True)
        async with self._slots:
            for attempt in range(self.config.retries + 1):
                translator = StreamTranslator(model=str(request["model"]))
                try:
                    # aclosing: when our client goes away mid-stream, the upstream response is closed
                    # at once, not whenever the inner generator is garbage-collected.
                    async with aclosing(self._stream_once(payload, translator)) as events:
                        async for event in events:
                            yield event
                    return
                except (*_TRANSIENT, UpstreamError, ValueError) as exc:
                    if translator.started:  # output went out: no retry, end the stream visibly
                        yield _error_event(exc)
                        return
                    await self._before_retry(exc, attempt)

    async def _stream_once(
        self, payload: dict[str, Any], translator: StreamTranslator
    ) -> AsyncGenerator[dict[str, Any], None]:
        response = await self.session.post(self.config.chat_url, json=payload)
        try:
            if response.status != 200:
                raise upstream_error(response.status, await response.read(), response.headers)
            parser = SSEParser()
            done = False
            async for chunk in response.content.iter_any():
                for sse in parser.feed(chunk):
                    if sse.data.strip() == DONE_DATA:
                        done = True
                        break
                    for event in translator.feed(json_object(sse.data)):
                        yield event
                if done:
                    break
            if not (done or translator.finished):
                raise UpstreamError("the upstream stream ended before the reply was complete")
            for event in translator.finish():
                yield event
        finally:
            # Closing (not releasing) drops the connection: on an early exit - our client went away,
            # or an error - the upstream sees the disconnect and stops generating.
            response.close()

    async def _before_retry(self, exc: BaseException, attempt: int) -> None:
        """Sleep before the next attempt, or raise when this failure must reach the client."""
        error = exc if isinstance(exc, UpstreamError) else _transport_error(exc)
        wait = self._wait(error, attempt)
        if wait is None:
            raise error from (None if error is exc else exc)
        log.warning("upstream attempt %d failed (%s); retrying in %.2fs", attempt + 1, error, wait)
        await asyncio.sleep(wait)

    def _wait(self, error: UpstreamError, attempt: int) -> float | None:
        if attempt >= self.config.retries or not error.retryable:
            return None
        backoff = min(self.config.backoff * 2**attempt, self.config.max_backoff)
        if error.retry_after is None:
            return backoff
        asked = retry_after_seconds(error.retry_after)
        if asked is None:
            return backoff
        return asked if asked <= self.config.max_backoff else None


def _transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamError("the upstream timed out", error_type="timeout_error")
    if isinstance(exc, ValueError):
        return UpstreamError(f"the upstream sent a malformed answer: {exc}")
    return UpstreamError(f"could not reach the upstream: {exc}", error_type="api_error")


def _error_event(exc: BaseException) -> dict[str, Any]:
    error = exc if isinstance(exc, UpstreamError) else _transport_error(exc)
    return error.anthropic_body()


def retry_after_seconds(value: str) -> float | None:
    """`retry-after` as seconds: a number, or an HTTP date."""
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)

