"""The upstream client against a real aiohttp server on a free port that speaks OpenAI's wire format.

The peer is scripted (each request takes the next step of a script), which is what lets these tests
force a 429, a dropped connection or a stall at an exact moment."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentic_flow.openai.errors import UpstreamError
from agentic_flow.openai.providers import UpstreamConfig, normalize_base_url
from agentic_flow.openai.upstream import UpstreamClient, retry_after_seconds

from .openai_support import anthropic_message, sse_bytes

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST = {"model": "claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Peer:
    steps: list[Step] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
            return await step(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    state = Peer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.handle)
    server = TestServer(app, host="127.0.0.1")  # port 0: the OS picks a free one
    await server.start_server()
    try:
        yield state, str(server.make_url(""))  # no /v1: the client must add it
    finally:
        await server.close()


def client(url: str, **overrides: Any) -> UpstreamClient:
    settings: dict[str, Any] = {"retries": 2, "backoff": 0.01, "api_key": "sk-test", "model": "up-model"}
    return UpstreamClient(UpstreamConfig(base_url=normalize_base_url(url), **(settings | overrides)))


def completion(text: str = "hello") -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "c1", "object": "chat.completion", "model": "up-model", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
    return step


def failure(status: int, retry_after: str | None = None) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return web.json_response({"error": {"message": f"status {status}", "type": "x", "code": status}},
                                 status=status, headers=headers)
    return step


def streamed(*parts: bytes, drop_after: int | None = None, delay: float = 0.0) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, part in enumerate(parts):
            if drop_after is not None and i == drop_after:
                assert request.transport is not None
                request.transport.close()  # the upstream dies mid-answer
                return response
            await response.write(part)
            await asyncio.sleep(delay)
        return response
    return step


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


STREAM_PARTS = (
    b": OPENROUTER PROCESSING\n\n", sse_bytes(chunk("Hel")), sse_bytes(chunk("lo")), sse_bytes(chunk(None, "stop")),
    sse_bytes({"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}), b"data: [DONE]\n\n",
)


async def collect(upstream: UpstreamClient, request: dict[str, Any] = REQUEST) -> list[dict[str, Any]]:
    async with aclosing(upstream.stream(request)) as events:
        return [event async for event in events]


async def test_messages_translates_and_authenticates(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [completion("hello there")]
    async with client(url) as upstream:
        message = await upstream.messages(REQUEST)
    assert message["content"] == [{"type": "text", "text": "hello there"}]
    assert message["model"] == "claude-x" and message["usage"]["input_tokens"] == 3
    assert state.bodies[0]["model"] == "up-model" and state.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert "stream" not in state.bodies[0]
    assert state.headers[0]["Authorization"] == "Bearer sk-test"


async def test_retries_a_429_honouring_retry_after(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [failure(429, "0"), failure(503), completion()]
    async with client(url) as upstream:
        message = await upstream.messages(REQUEST)
    assert message["content"][0]["text"] == "hello" and len(state.bodies) == 3


async def test_gives_up_with_the_mapped_error_and_retry_after(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [failure(503, "0")]
    async with client(url, retries=1) as upstream:
        with pytest.raises(UpstreamError) as info:
            await upstream.messages(REQUEST)
    assert (info.value.status, info.value.error_type, info.value.retry_after) == (529, "overloaded_error", "0")
    assert len(state.bodies) == 2


@pytest.mark.parametrize(("status", "retry_after", "error_type"), [
    (400, None, "invalid_request_error"), (401, None, "authentication_error"), (429, "120", "rate_limit_error")])
async def test_no_retry_for_client_errors_or_long_retry_after(
    peer: tuple[Peer, str], status: int, retry_after: str | None, error_type: str
) -> None:
    state, url = peer
    state.steps = [failure(status, retry_after), completion()]
    async with client(url) as upstream:
        with pytest.raises(UpstreamError) as info:
            await upstream.messages(REQUEST)
    assert info.value.error_type == error_type and info.value.retry_after == retry_after
    assert len(state.bodies) == 1


async def test_stream_tolerates_comments_and_tiny_writes(peer: tuple[Peer, str]) -> None:
    state, url = peer
    body = b"".join(STREAM_PARTS)
    state.steps = [streamed(*[body[i:i + 5] for i in range(0, len(body), 5)])]
    async with client(url) as upstream:
        events = await collect(upstream)
    message = anthropic_message(events)
    assert message.content[0].text == "Hello" and message.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 2)
    assert state.bodies[0]["stream"] is True and state.bodies[0]["stream_options"] == {"include_usage": True}


async def test_stream_retries_a_drop_before_any_output(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [streamed(*STREAM_PARTS, drop_after=0), failure(502), streamed(*STREAM_PARTS)]
    async with client(url) as upstream:
        message = anthropic_message(await collect(upstream))
    assert message.content[0].text == "Hello" and len(state.bodies) == 3  # type: ignore[union-attr]


async def test_stream_does_not_retry_after_output(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [streamed(*STREAM_PARTS, drop_after=3), streamed(*STREAM_PARTS)]
    async with client(url) as upstream:
        events = await collect(upstream)
    assert [e["type"] for e in events[:3]] == ["message_start", "content_block_start", "content_block_delta"]
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert len(state.bodies) == 1


async def test_stream_error_status_raises_before_any_event(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.steps = [failure(404)]
    async with client(url) as upstream:
        with pytest.raises(UpstreamError) as info:
            await collect(upstream)
    assert info.value.error_type == "not_found_error"


async def test_client_going_away_cancels_the_upstream_request(peer: tuple[Peer, str]) -> None:
    state, url = peer

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(sse_bytes(chunk("tick")))
                await asyncio.sleep(0.01)
        except (ConnectionResetError, asyncio.CancelledError):
            state.disconnected.set()
            raise

    state.steps = [endless]
    async with client(url) as upstream:
        async with aclosing(upstream.stream(REQUEST)) as events:
            async for event in events:
                if event["type"] == "content_block_delta":
                    break  # our client went away
        await asyncio.wait_for(state.disconnected.wait(), timeout=10)


async def test_requests_in_flight_are_bounded(peer: tuple[Peer, str]) -> None:
    state, url = peer

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return await completion()(request)

    state.steps = [slow]
    async with client(url, max_in_flight=2) as upstream:
        await asyncio.gather(*(upstream.messages(REQUEST) for _ in range(6)))
    assert len(state.bodies) == 6 and state.most_in_flight == 2


async def test_a_stalled_upstream_times_out_then_is_retried(peer: tuple[Peer, str]) -> None:
    state, url = peer

    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return await completion()(request)

    state.steps = [stall, completion("after the stall")]
    async with client(url, read_timeout=0.3) as upstream:
        message = await upstream.messages(REQUEST)
    assert message["content"][0]["text"] == "after the stall" and len(state.bodies) == 2


def test_retry_after_forms() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert retry_after_seconds("soon") is None


async def test_unreachable_upstream_is_an_api_error() -> None:
    with socket.socket() as probe:  # a free port that nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}", retries=0) as upstream:
        with pytest.raises(UpstreamError, match="could not reach"):
            await upstream.messages(REQUEST)
