"""The runner against a real HTTP peer: an aiohttp server that speaks the Anthropic Messages wire format.

Each test gives the server a script: one handler per expected call, in order.  The stream events are
byte-for-byte the shape Anthropic sends (message_start with usage, a text content_block_start carrying
"text": "", pings, text deltas, message_delta with usage.output_tokens, message_stop); one test checks
that the official `anthropic` SDK accepts the same stream, so the fake cannot drift into a dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from agentic_flow.agents.client import AgentRun, backoff_delay, parse_retry_after, run_agent
from agentic_flow.anthropic.errors import parse_error_body
from agentic_flow.errors import AgentError, ConfigError, TransientAgentError
from agentic_flow.eventstream import SSEEvent, SSEParser

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class FakeAnthropic:
    """Serves POST /v1/messages from a script of handlers and records what it received."""

    def __init__(self, *script: Handler) -> None:
        self.script = list(script)
        self.received: list[tuple[CIMultiDict[str], dict[str, Any]]] = []

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.headers.copy(), await request.json()))
        if not self.script:
            return web.json_response(error_envelope("api_error", "no more scripted answers"), status=500)
        return await self.script.pop(0)(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return app


Start = Callable[..., Awaitable[tuple[FakeAnthropic, str]]]


@pytest.fixture
def fake_api(aiohttp_server: ServerFactory) -> Start:
    async def start(*script: Handler) -> tuple[FakeAnthropic, str]:
        fake = FakeAnthropic(*script)
        server = await aiohttp_server(fake.app())
        return fake, str(server.make_url("")).rstrip("/")

    return start


def run(base_url: str, **overrides: Any) -> AgentRun:
    fields: dict[str, Any] = dict(
        base_url=base_url, api_key="sk-test", model="claude-haiku-4-5", system="You are terse.",
        task="Say hello", max_tokens=64, temperature=0.2, stream=True, timeout=10.0, max_retries=2,
    )
    fields.update(overrides)
    return AgentRun(**fields)


# ---------------------------------------------------------------- the wire format

def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def error_envelope(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}


def message_start(model: str = "claude-haiku-4-5", input_tokens: int = 12) -> bytes:
    message: dict[str, Any] = {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": model,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return sse("message_start", {"type": "message_start", "message": message})


def text_events(*chunks: str) -> list[bytes]:
    events = [sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}),
              sse("ping", {"type": "ping"})]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": c}}) for c in chunks]
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    return events


def message_end(output_tokens: int, stop_reason: str = "end_turn") -> list[bytes]:
    return [
        sse("message_delta", {"type": "message_delta",
                              "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                              "usage": {"output_tokens": output_tokens}}),
        sse("message_stop", {"type": "message_stop"}),
    ]


def streamed(*events: bytes, pause: asyncio.Event | None = None) -> Handler:
    """A 200 event stream; with `pause`, the stream stops after the events until it is set (or 5 s pass,
    so a failing test cannot leave the server waiting forever)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_123"})
        await resp.prepare(request)
        for event in events:
            await resp.write(event)
        if pause is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pause.wait(), 5)
        return resp

    return handler


def answer(*chunks: str, output_tokens: int = 6) -> Handler:
    return streamed(message_start(), *text_events(*chunks), *message_end(output_tokens))


def failing(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(error_envelope(error_type, message), status=status, headers=headers)

    return handler


# ---------------------------------------------------------------- streaming

async def test_stream_delivers_each_text_delta_as_it_arrives_and_reports_usage(fake_api: Any) -> None:
    _, url = await fake_api(answer("Hello", ",", " world"))
    seen: list[str] = []

    result = await run_agent(run(url), on_text=seen.append)

    assert seen == ["Hello", ",", " world"]
    assert result.text == "Hello, world"
    assert result.stop_reason == "end_turn"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 6)
    assert result.model == "claude-haiku-4-5"
    assert result.request_id == "req_123"
    assert result.attempts == 1
    assert result.timings.first_token_s is not None
    assert 0 <= result.timings.first_token_s <= result.timings.total_s


async def test_request_carries_anthropic_headers_and_body(fake_api: Any) -> None:
    fake, url = await fake_api(answer("ok"))

    await run_agent(run(url + "/v1"), on_text=None)  # a base URL ending in /v1 is tolerated

    headers, body = fake.received[0]
    assert headers["x-api-key"] == "sk-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert body == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "stream": True, "system": "You are terse.",
        "temperature": 0.2, "messages": [{"role": "user", "content": "Say hello"}],
    }


async def test_first_token_arrives_before_the_stream_ends(fake_api: Any) -> None:
    gate = asyncio.Event()
    _, url = await fake_api(streamed(message_start(), *text_events("early"), pause=gate))
    seen: list[str] = []

    def on_text(text: str) -> None:
        seen.append(text)
        gate.set()  # the server finishes only once the client has shown the first delta

    task = asyncio.create_task(run_agent(run(url), on_text=on_text))
    await asyncio.wait_for(gate.wait(), 5)
    assert seen == ["early"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_max_tokens_stop_reason_is_reported(fake_api: Any) -> None:
    _, url = await fake_api(streamed(message_start(), *text_events("cut"), *message_end(64, "max_tokens")))

    result = await run_agent(run(url), on_text=None)

    assert (result.text, result.stop_reason, result.usage.output_tokens) == ("cut", "max_tokens", 64)


async def test_official_sdk_accepts_the_fake_stream(fake_api: Any) -> None:
    """Guards the fake itself: what the runner is tested against is what the real SDK parses."""
    _, url = await fake_api(answer("Hello", " there"))
    client = anthropic.AsyncAnthropic(base_url=url, api_key="sk-test", max_retries=0)
    async with client.messages.stream(model="claude-haiku-4-5", max_tokens=64,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        message = await stream.get_final_message()
    await client.close()
    assert message.content[0].type == "text" and message.content[0].text == "Hello there"
    assert message.usage.output_tokens == 6


# ---------------------------------------------------------------- non-streaming

async def test_non_streaming_reads_the_json_message(fake_api: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 2},
        }, headers={"request-id": "req_json"})

    fake, url = await fake_api(handler)
    seen: list[str] = []

    result = await run_agent(run(url, stream=False), on_text=seen.append)

    assert fake.received[0][1]["stream"] is False
    assert seen == ["Hi there"]
    assert (result.text, result.stop_reason, result.request_id) == ("Hi there", "end_turn", "req_json")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (9, 2)


# ---------------------------------------------------------------- errors and retries

async def test_client_error_reports_the_api_type_message_and_status_without_retrying(fake_api: Any) -> None:
    fake, url = await fake_api(failing(400, "invalid_request_error", "max_tokens: must be at least 1"))

    with pytest.raises(AgentError) as err:
        await run_agent(run(url), on_text=None)

    assert "400" in str(err.value)
    assert "invalid_request_error: max_tokens: must be at least 1" in str(err.value)
    assert err.value.exit_code == 1
    assert len(fake.received) == 1


async def test_unauthorized_points_at_the_api_key(fake_api: Any) -> None:
    _, url = await fake_api(failing(401, "authentication_error", "invalid x-api-key"))

    with pytest.raises(AgentError, match=r"401 authentication_error: invalid x-api-key.*ANTHROPIC_API_KEY"):
        await run_agent(run(url), on_text=None)


async def test_overloaded_529_is_retried_honouring_retry_after(fake_api: Any) -> None:
    overloaded = failing(529, "overloaded_error", "Overloaded", {"retry-after": "0"})
    fake, url = await fake_api(overloaded, answer("fine"))
    started = time.monotonic()

    result = await run_agent(run(url), on_text=None)

    assert result.text == "fine"
    assert result.attempts == 2
    assert len(fake.received) == 2
    assert time.monotonic() - started < 0.3  # retry-after: 0 replaced the backoff (at least 0.375 s)


async def test_gives_up_after_max_retries(fake_api: Any) -> None:
    busy = failing(500, "api_error", "Internal server error", {"retry-after": "0"})
    fake, url = await fake_api(busy, busy, busy, answer("too late"))

    with pytest.raises(TransientAgentError, match=r"500 api_error: Internal server error.*gave up after 3 attempts") \
            as failed:
        await run_agent(run(url, max_retries=2), on_text=None)
    assert len(fake.received) == 3
    # What the agent loop reads to decide whether the turn may run again
    error = failed.value
    assert (error.error_type, error.status, error.retry_after, error.shown, error.attempts) == \
        ("api_error", 500, 0.0, False, 3)


async def test_error_event_inside_a_200_stream_after_text_raises_without_retry(fake_api: Any) -> None:
    overloaded = sse("error", error_envelope("overloaded_error", "Overloaded"))
    fake, url = await fake_api(streamed(message_start(), *text_events("partial"), overloaded), answer("again"))
    seen: list[str] = []

    with pytest.raises(TransientAgentError, match=r"overloaded_error: Overloaded.*not retried") as failed:
        await run_agent(run(url), on_text=seen.append)
    assert seen == ["partial"]
    assert len(fake.received) == 1
    assert (failed.value.error_type, failed.value.status, failed.value.shown) == ("overloaded_error", None, True)


async def test_overloaded_event_before_any_text_is_retried(fake_api: Any) -> None:
    overloaded = sse("error", error_envelope("overloaded_error", "Overloaded"))
    _, url = await fake_api(streamed(message_start(), overloaded), answer("recovered"))
    seen: list[str] = []

    result = await run_agent(run(url), on_text=seen.append)

    assert (seen, result.attempts) == (["recovered"], 2)


async def test_error_event_that_cannot_succeed_on_retry_is_raised_at_once(fake_api: Any) -> None:
    invalid = sse("error", error_envelope("invalid_request_error", "prompt is too long"))
    fake, url = await fake_api(streamed(message_start(), invalid), answer("unused"))

    with pytest.raises(AgentError, match="invalid_request_error: prompt is too long") as failed:
        await run_agent(run(url), on_text=None)
    assert len(fake.received) == 1
    assert not isinstance(failed.value, TransientAgentError)  # the loop must not run this turn again


async def test_dropped_connection_before_any_text_is_retried(fake_api: Any) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(message_start())
        assert request.transport is not None
        request.transport.close()
        return resp

    _, url = await fake_api(drop, answer("second time"))

    result = await run_agent(run(url), on_text=None)

    assert (result.text, result.attempts) == ("second time", 2)


async def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        with pytest.raises(AgentError, match=r"connection to http://127.0.0.1:\d+/v1/messages failed"):
            await run_agent(run(f"http://127.0.0.1:{port}", max_retries=0), on_text=None)


async def test_total_timeout_is_reported_in_seconds(fake_api: Any) -> None:
    never = asyncio.Event()
    _, url = await fake_api(streamed(message_start(), pause=never))
    started = time.monotonic()

    with pytest.raises(AgentError, match=r"timed out after 0.3 s"):
        await run_agent(run(url, timeout=0.3), on_text=None)
    assert time.monotonic() - started < 2
    never.set()


# ---------------------------------------------------------------- pure parts

def test_sse_decoder_handles_crlf_comments_and_multiline_data() -> None:
    decoder = SSEParser()
    lines = [": keep-alive\r\n", "event: ping\r\n", "data: {\"type\":\r\n", "data: \"ping\"}\r\n", "\r\n"]
    events = [e for e in (decoder.feed_line(line) for line in lines) if e is not None]
    assert events == [SSEEvent("ping", '{"type":\n"ping"}')]


def test_backoff_doubles_with_bounded_jitter_and_honours_retry_after() -> None:
    assert backoff_delay(0, None, rand=lambda: 0.0) == 0.5
    assert backoff_delay(2, None, rand=lambda: 0.0) == 2.0
    assert backoff_delay(2, None, rand=lambda: 1.0) == 1.5
    assert backoff_delay(10, None, rand=lambda: 0.0) == 8.0
    assert backoff_delay(3, 0.0) == 0.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert parse_retry_after({"retry-after": "3600"}) is None
    assert parse_retry_after({}) is None


def test_error_body_without_envelope_falls_back_to_the_text() -> None:
    html = "<html>Bad Gateway</html>"
    assert parse_error_body(html, "Bad Gateway") == ("error", html)
    assert parse_error_body("", "Bad Gateway") == ("error", "Bad Gateway")


@pytest.mark.parametrize("field,value", [("max_tokens", 0), ("timeout", 0.0), ("max_retries", -1)])
def test_bad_run_settings_are_config_errors(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        run("http://127.0.0.1:1", **{field: value})
