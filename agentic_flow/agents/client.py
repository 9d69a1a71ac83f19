"""The agent client: one call to the Anthropic Messages API (POST {base_url}/v1/messages).

It talks to api.anthropic.com and to the local proxy alike.  A call sends a message history and, for an
agent that acts, its `tools` (and a `tool_choice` when asked); it returns the whole assistant turn: text
and tool_use blocks, each tool_use's input assembled from its `input_json_delta` pieces when streaming.
Streaming responses are read as server-sent events and each text delta goes to `on_text` as soon as it
arrives.  Failures worth another try (429, 529, other 5xx, a dropped connection, an overloaded error
inside the stream) are retried with exponential backoff and jitter, honouring `retry-after`, but only
while no text has reached the caller: once part of an answer has been shown, a retry would show it twice.

Over 350 lines on purpose: one call's request, retries, error reading and turn assembly are one concept,
and splitting them would pass the half-built turn between modules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

import aiohttp

from .. import __version__
from ..anthropic.errors import parse_error_body
from ..anthropic.responses import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    ErrorEvent,
    InputJsonDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    TextContent,
    TextDelta,
    ToolUseContent,
    read_event,
    read_message,
)
from ..anthropic.sse import SSEEvent, iter_events
from ..errors import AgentError, ConfigError, TransientAgentError

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
RETRY_STATUSES = frozenset({429, 529})  # and every 5xx
RETRY_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error"})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
MAX_RETRY_AFTER_S = 60.0  # a longer retry-after is treated as absent (the SDK does the same)


@dataclass(frozen=True)
class AgentRun:
    base_url: str  # without /v1: "https://api.anthropic.com" or "http://127.0.0.1:3001"
    api_key: str | None
    model: str
    system: str
    task: str
    max_tokens: int = 1024
    temperature: float | None = None
    stream: bool = True
    timeout: float = 600.0  # seconds for the whole run, retries included
    max_retries: int = 2
    # The conversation so far; empty means one user turn holding `task`.
    messages: tuple[Mapping[str, Any], ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()  # the Messages API's `tools`: [{name, description, input_schema}]
    tool_choice: Mapping[str, Any] | None = None  # {"type": "auto" | "any" | "tool", "name"?: ...}

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be more than 0 seconds, got {self.timeout}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {self.max_retries}")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        base = base.removesuffix("/v1")  # a common slip: clients want the base without /v1
        return f"{base}/v1/messages"


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # as Anthropic counts them: the prompt tokens not read from a cache
    output_tokens: int = 0
    cache_read_input_tokens: int = 0  # the prompt tokens read from the server's (prefix) cache

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_input_tokens + other.cache_read_input_tokens)


@dataclass(frozen=True)
class Text:
    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]
    input_error: str | None = None  # the streamed input was not a JSON object: why (the loop tells the model)

    def to_wire(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": self.input}


Block: TypeAlias = Text | ToolUse


@dataclass(frozen=True)
class Timings:
    first_token_s: float | None  # None when no text came back
    total_s: float


@dataclass(frozen=True)
class AgentResult:
    text: str
    stop_reason: str | None
    usage: Usage
    model: str
    timings: Timings
    request_id: str | None
    attempts: int = 1
    content: tuple[Block, ...] = ()  # the assistant turn in order: text and tool_use blocks

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [block for block in self.content if isinstance(block, ToolUse)]


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not; leaves this module as a TransientAgentError."""

    def __init__(self, message: str, error_type: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.retry_after = retry_after

    def transient(self, note: str, shown: bool, attempts: int) -> TransientAgentError:
        return TransientAgentError(f"{self} ({note})", error_type=self.error_type, status=self.status,
                                   retry_after=self.retry_after, shown=shown, attempts=attempts)


@dataclass
class _Delivery:
    """The text handed to the caller, across attempts."""

    on_text: Callable[[str], None] | None
    started: float
    parts: list[str] = field(default_factory=list)
    first_token_s: float | None = None

    def __call__(self, text: str) -> None:
        if not text:
            return
        if self.first_token_s is None:
            self.first_token_s = time.monotonic() - self.started
        self.parts.append(text)
        if self.on_text is not None:
            self.on_text(text)


@dataclass
class _Reply:
    """What one attempt learned besides the text."""

    model: str
    request_id: str | None
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    blocks: dict[int, _BlockParts] = field(default_factory=dict)  # by the stream's content index


@dataclass
class _BlockParts:
    """One content block as it streams in: text pieces, or a tool_use and its input's JSON pieces."""

    kind: str
    parts: list[str] = field(default_factory=list)
    tool: ToolUseContent | None = None

    def block(self) -> Block | None:
        if self.kind == "text":
            return Text("".join(self.parts))
        if self.tool is None:
            return None
        if not self.parts:  # no deltas: the input came whole in content_block_start (non-streaming style)
            return ToolUse(self.tool.id, self.tool.name, dict(self.tool.input))
        return _tool_use(self.tool, "".join(self.parts))


def _tool_use(tool: ToolUseContent, raw: str) -> ToolUse:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return ToolUse(tool.id, tool.name, {}, f"the input is not valid JSON ({exc}): {raw[:200]!r}")
    if not isinstance(value, dict):
        return ToolUse(tool.id, tool.name, {}, f"the input must be a JSON object, got {raw[:200]!r}")
    return ToolUse(tool.id, tool.name, value)


def session() -> aiohttp.ClientSession:
    # aiohttp's own default (5 minutes total) would cut long answers short: the limit is the caller's.
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))


async def run_agent(request: AgentRun, *, on_text: Callable[[str], None] | None = None) -> AgentResult:
    """Send the task to the model with the agent's system prompt; stream text to `on_text`.

    Raises AgentError for an HTTP error, a failed stream or a timeout (exit code 1); a failure another
    call may not meet (overloaded, a 5xx, a dropped connection) is its subclass TransientAgentError, with
    the error type, so that the agent loop can run the turn again.
    A non-streaming run calls `on_text` once with the whole answer.
    """
    try:
        async with asyncio.timeout(request.timeout), session() as http:
            return await send(http, request, on_text=on_text)
    except TimeoutError:
        raise AgentError(f"the request to {request.url} timed out after {request.timeout:g} s") from None


async def send(
    http: aiohttp.ClientSession, request: AgentRun, *, on_text: Callable[[str], None] | None = None
) -> AgentResult:
    """One call (with its retries) in the caller's session and time limit: the agent loop makes many."""
    started = time.monotonic()
    delivery = _Delivery(on_text, started)
    reply, attempts = await _with_retries(http, request, delivery)
    timings = Timings(delivery.first_token_s, time.monotonic() - started)
    usage = Usage(reply.input_tokens, reply.output_tokens, reply.cache_read)
    content = tuple(b for _, parts in sorted(reply.blocks.items()) if (b := parts.block()) is not None)
    return AgentResult(
        "".join(delivery.parts), reply.stop_reason, usage, reply.model, timings, reply.request_id, attempts,
        content,
    )


async def _with_retries(
    session: aiohttp.ClientSession, request: AgentRun, delivery: _Delivery
) -> tuple[_Reply, int]:
    attempt = 0
    while True:
        try:
            return await _attempt(session, request, delivery), attempt + 1
        except _Retryable as exc:
            if delivery.parts:
                raise exc.transient("after part of the answer was shown, so not retried", True, attempt + 1) \
                    from None
            if attempt >= request.max_retries:
                raise exc.transient(f"gave up after {attempt + 1} attempts", False, attempt + 1) from None
            delay = backoff_delay(attempt, exc.retry_after)
            total = request.max_retries + 1
            log.info("%s; retrying in %.2f s (attempt %d of %d)", exc, delay, attempt + 2, total)
            await asyncio.sleep(delay)
            attempt += 1


def backoff_delay(
    attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random
) -> float:
    """The server's retry-after when given, else 0.5 s doubling per attempt (capped at 8 s) less up to 25%."""
    if retry_after is not None:
        return retry_after
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(attempt, 16)) * (1 - 0.25 * rand())


async def _attempt(session: aiohttp.ClientSession, request: AgentRun, delivery: _Delivery) -> _Reply:
    body = json.dumps(request_body(request))
    try:
        async with session.post(request.url, data=body, headers=request_headers(request)) as resp:
            request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
            if resp.status != 200:
                await _raise_for_status(resp, request_id)
            reply = _Reply(model=request.model, request_id=request_id)
            # Dispatch on what came back, not on what was asked: some servers answer JSON to stream=true.
            if resp.content_type == "text/event-stream":
                await _read_stream(resp, reply, delivery)
            else:
                await _read_json(resp, reply, delivery)
            return reply
    except aiohttp.InvalidURL:
        raise AgentError(f"invalid API base URL {request.base_url!r}") from None
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise _Retryable(f"connection to {request.url} failed: {exc or type(exc).__name__}",
                         "connection_error") from None


def request_body(request: AgentRun) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": list(request.messages) or [{"role": "user", "content": request.task}],
        "stream": request.stream,
    }
    if request.tools:
        body["tools"] = list(request.tools)
    if request.tool_choice is not None:
        body["tool_choice"] = dict(request.tool_choice)
    if request.system:
        body["system"] = request.system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def request_headers(request: AgentRun) -> dict[str, str]:
    headers = {
        "anthropic-version": ANTHROPIC_VERSION,
        "content-type": "application/json",
        "accept": "text/event-stream" if request.stream else "application/json",
        "user-agent": f"agentic-flow/{__version__}",
    }
    if request.api_key:
        headers["x-api-key"] = request.api_key
    return headers


# ---------------------------------------------------------------- errors

async def _raise_for_status(resp: aiohttp.ClientResponse, request_id: str | None) -> NoReturn:
    error_type, message = parse_error_body(await resp.text(errors="replace"), resp.reason)
    text = f"API error {resp.status} {error_type}: {message}"
    if request_id:
        text += f" (request-id {request_id})"
    if resp.status in RETRY_STATUSES or resp.status >= 500:
        raise _Retryable(text, error_type, resp.status, parse_retry_after(resp.headers))
    if resp.status == 401:
        text += "; check the API key (ANTHROPIC_API_KEY)"
    raise AgentError(text)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as the server asked (retry-after-ms or retry-after in seconds), if sensible."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
        if 0 <= seconds <= MAX_RETRY_AFTER_S:
            return seconds
    return None


# ---------------------------------------------------------------- response bodies

async def _read_json(resp: aiohttp.ClientResponse, reply: _Reply, deliver: _Delivery) -> None:
    try:
        message = read_message(await resp.text())
    except ValueError:
        raise AgentError("the server's answer is not an Anthropic message") from None
    reply.model = message.model or reply.model
    reply.stop_reason = message.stop_reason
    usage = message.usage
    _apply_usage(reply, usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens)
    for index, block in enumerate(message.content):
        if isinstance(block, TextContent):
            reply.blocks[index] = _BlockParts("text", [block.text])
        elif isinstance(block, ToolUseContent):
            reply.blocks[index] = _BlockParts("tool_use", tool=block)
    deliver("".join(block.text for block in message.content if isinstance(block, TextContent)))


async def _read_stream(resp: aiohttp.ClientResponse, reply: _Reply, deliver: _Delivery) -> None:
    async for event in iter_events(resp.content.iter_any()):
        if _apply_event(event, reply, deliver):
            return
    raise _Retryable("the stream ended before message_stop", "connection_error")


def _apply_event(sse_event: SSEEvent, reply: _Reply, deliver: _Delivery) -> bool:
    """Fold one Anthropic stream event into the reply; True at message_stop."""
    try:
        event = read_event(sse_event.event, sse_event.data)
    except ValueError:
        excerpt = sse_event.data[:200]
        raise AgentError(f"malformed {sse_event.event} event from the server: {excerpt!r}") from None
    match event:
        case MessageStartEvent(message=message):
            reply.model = message.model or reply.model
            _apply_usage(reply, message.usage.input_tokens, message.usage.output_tokens,
                         message.usage.cache_read_input_tokens)
        case ContentBlockStartEvent(index=index, content_block=TextContent(text=text)):
            reply.blocks[index] = _BlockParts("text", [text])
            deliver(text)
        case ContentBlockStartEvent(index=index, content_block=ToolUseContent() as tool):
            reply.blocks[index] = _BlockParts("tool_use", tool=tool)
        case ContentBlockDeltaEvent(index=index, delta=TextDelta(text=text)):
            reply.blocks.setdefault(index, _BlockParts("text")).parts.append(text)
            deliver(text)
        case ContentBlockDeltaEvent(index=index, delta=InputJsonDelta(partial_json=piece)):
            if index in reply.blocks:
                reply.blocks[index].parts.append(piece)
        case ContentBlockStopEvent():
            pass
        case MessageDeltaEvent(delta=delta, usage=usage):
            reply.stop_reason = delta.stop_reason or reply.stop_reason
            _apply_usage(reply, usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens)
        case ErrorEvent(error=error):
            _raise_stream_error(error.type, error.message)
    return isinstance(event, MessageStopEvent)


def _raise_stream_error(error_type: str, message: str) -> NoReturn:
    text = f"the API reported an error during the stream: {error_type}: {message}"
    if error_type in RETRY_STREAM_ERRORS:
        raise _Retryable(text, error_type)
    raise AgentError(text)


def _apply_usage(reply: _Reply, input_tokens: int | None, output_tokens: int | None,
                 cache_read: int | None = None) -> None:
    # message_delta's counts are cumulative, so the last value seen is the total.
    reply.input_tokens = input_tokens or reply.input_tokens
    reply.output_tokens = output_tokens or reply.output_tokens
    # A count sent again (message_delta: the reuse turned out other than announced) replaces, 0 included.
    reply.cache_read = reply.cache_read if cache_read is None else cache_read
