"""Server-sent events of the Messages API: the one place that writes them and the one that reads them.

Writing (the proxy): `message_events` turns a running `Generation` into the exact byte chunks of a
Messages stream:

    message_start, content_block_start (index 0, an empty text block), ping,
    content_block_delta (one per text delta), content_block_stop, message_delta, message_stop

each framed as `event: NAME\\ndata: JSON\\n\\n` with compact JSON whose `type` equals the event name.
`message_json` is the same message as one non-streaming body, and `error_event` the error envelope
during a stream.  Callers write the bytes; nothing here does I/O.

A reply of text only always carries exactly one text block, even when the model produced no text:
a streamed reply and a non-streamed one then decode to the same message, and clients that read
`content[0].text` never meet an empty list.  A reply to a request with tools carries text and
tool_use blocks in the order generated (`input_json_delta` pieces when streamed, which joined parse
as the non-streamed `input`), and still at least one block.

Reading (the agent client, the benchmark): `iter_events` splits a byte stream into `SSEEvent`s and
`responses.read_event` types each one.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass

from ..engine.base import Completion, Generation, SamplingOptions
from ..errors import EngineError
from ..tooluse import ArgsDelta, CallEnd, CallStart, TextDelta
from . import responses as r
from .reply import Reply

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24

# Anthropic's message_start reports output_tokens 1 (the stream starts with the first token on its
# way); the true count follows in message_delta, which clients take as final.
_START_OUTPUT_TOKENS = 1


def new_message_id() -> str:
    return "msg_" + _random_id()


def new_request_id() -> str:
    return "req_" + _random_id()


def _random_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


# --- writing -------------------------------------------------------------------------------------


def frame(event: str, data: Mapping[str, object]) -> bytes:
    """One server-sent event.  json.dumps escapes newlines, so the data is always a single line."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


def frame_event(event: r.StreamEvent) -> bytes:
    """One typed stream event, framed under its own `type`.  JSON escapes newlines: one data line."""
    return b"event: " + event.type.encode() + b"\ndata: " + event.model_dump_json().encode() + b"\n\n"


PING = frame_event(r.PingEvent())


def error_event(error_type: str, message: str) -> bytes:
    """An error inside a stream that has already answered 200; the stream ends after it."""
    return frame_event(r.ErrorEvent(error=r.ErrorDetail(type=error_type, message=message)))


def _usage(input_tokens: int, cached: int, output_tokens: int) -> r.Usage:
    # As Anthropic: input_tokens counts only what was not read from the (prefix) cache.
    return r.Usage(input_tokens=input_tokens - cached, cache_read_input_tokens=cached, output_tokens=output_tokens)


def message_json(
    message_id: str, model: str, text: str, completion: Completion, input_tokens: int
) -> dict[str, object]:
    """The body of a non-streaming Messages response of text only."""
    message = r.ResponseMessage(
        id=message_id, model=model, content=[r.TextContent(text=text)],
        stop_reason=completion.stop_reason, stop_sequence=completion.stop_sequence,
        usage=_usage(input_tokens, completion.cached_tokens, completion.output_tokens),
    )
    return message.model_dump()


async def reply_json(message_id: str, model: str, reply: Reply) -> dict[str, object]:
    """The body of a non-streaming Messages response: text and tool_use blocks in the order generated.
    A call cut short (max_tokens) is left out: its input is unknown."""
    content: list[r.ResponseContent] = []
    text: list[str] = []
    async for event in reply.events():
        if isinstance(event, TextDelta):
            text.append(event.text)
            continue
        if text:
            content.append(r.TextContent(text="".join(text)))
            text = []
        if isinstance(event, CallEnd) and event.call is not None:
            call = event.call
            content.append(r.ToolUseContent(id=call.id, name=call.name, input=dict(call.input)))
    if text or not content:  # never an empty content list: clients read content[0]
        content.append(r.TextContent(text="".join(text)))
    generation = reply.generation
    message = r.ResponseMessage(
        id=message_id, model=model, content=content, stop_reason=reply.stop_reason,
        stop_sequence=reply.stop_sequence,
        usage=_usage(generation.input_tokens, reply.cached_tokens, reply.output_tokens),
    )
    return message.model_dump()


async def message_events(
    message_id: str, model: str, source: Generation | Reply
) -> AsyncGenerator[bytes, None]:
    """The byte chunks of a streamed Messages response, `model` echoed as the client sent it.

    A plain `Generation` is read as a reply of text only.  A reply without guidance opens its text
    block at once (clients see the block before the first token); a reply with tools opens blocks as
    the parser finds text or calls.  A `ping` follows the start, and more while the engine is silent.
    A generation that fails with an EngineError ends the stream with an `error` event.  If the caller
    stops iterating (the client went away) and closes this generator, the generation is cancelled;
    wrap it in `contextlib.aclosing` so that happens at once rather than at garbage collection."""
    reply = source if isinstance(source, Reply) else Reply(source, (), SamplingOptions(max_tokens=1))
    generation = reply.generation
    expected = generation.expected_cached_tokens
    usage = _usage(generation.input_tokens, expected, _START_OUTPUT_TOKENS)
    yield frame_event(r.MessageStartEvent(message=r.ResponseMessage(id=message_id, model=model, usage=usage)))
    blocks = _Blocks()
    if reply.options.guidance is None:
        yield blocks.open(r.TextContent())
    yield PING
    finished = False
    try:
        async for event in reply.events():
            for chunk in blocks.write(event):
                yield chunk
        finished = True
    except EngineError as exc:
        yield error_event("api_error", str(exc))
        return
    finally:
        if not finished:
            await generation.aclose()
    for chunk in blocks.close(empty_text=True):
        yield chunk
    yield frame_event(_message_delta(reply, expected))
    yield frame_event(r.MessageStopEvent())


class _Blocks:
    """Content blocks of a stream: indexes count up from 0, one block open at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.open_kind: str | None = None

    def open(self, block: r.TextContent | r.ToolUseContent) -> bytes:
        self.open_kind = block.type
        return frame_event(r.ContentBlockStartEvent(index=self.count, content_block=block))

    def close(self, empty_text: bool = False) -> list[bytes]:
        out: list[bytes] = []
        if self.open_kind is None and self.count == 0 and empty_text:
            out.append(self.open(r.TextContent()))  # never a message without a block
        if self.open_kind is not None:
            out.append(frame_event(r.ContentBlockStopEvent(index=self.count)))
            self.open_kind = None
            self.count += 1
        return out

    def write(self, event: object) -> list[bytes]:
        if isinstance(event, TextDelta):
            out = [] if self.open_kind == "text" else [*self.close(), self.open(r.TextContent())]
            text = r.TextDelta(text=event.text)
            return [*out, frame_event(r.ContentBlockDeltaEvent(index=self.count, delta=text))]
        if isinstance(event, CallStart):
            return [*self.close(), self.open(r.ToolUseContent(id=event.id, name=event.name))]
        if isinstance(event, ArgsDelta):
            delta = r.InputJsonDelta(partial_json=event.partial_json)
            return [frame_event(r.ContentBlockDeltaEvent(index=self.count, delta=delta))]
        if isinstance(event, CallEnd):
            return self.close()
        return [PING]  # the engine has been silent for a while


def _message_delta(reply: Reply, expected_cached: int) -> r.MessageDeltaEvent:
    # message_start carried the reuse expected when the request was queued; when the engine reused
    # another amount, the true counts follow here (the SDK's accumulator takes them as final).
    cached = reply.cached_tokens
    correct = cached != expected_cached
    usage = r.DeltaUsage(
        output_tokens=reply.output_tokens,
        input_tokens=reply.generation.input_tokens - cached if correct else None,
        cache_read_input_tokens=cached if correct else None,
    )
    return r.MessageDeltaEvent(
        delta=r.MessageDeltaBody(stop_reason=reply.stop_reason, stop_sequence=reply.stop_sequence), usage=usage,
    )


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str


class SSEDecoder:
    """Server-sent events, one line at a time: `event:` and `data:` fields, dispatched on a blank line."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SSEEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event = SSEEvent(self._event or "message", "\n".join(self._data)) if self._data else None
        self._event, self._data = "", []
        return event


async def iter_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Lines of a byte stream, however it is cut.  Split here rather than with aiohttp's
    `async for line in content`, which caps a line at 64 KiB."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:  # "\n" never falls inside a UTF-8 sequence, so each line decodes alone
            yield line.decode("utf-8", errors="replace")
    if buffer:
        yield buffer.decode("utf-8", errors="replace")


async def iter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """The events of a byte stream (for aiohttp: `iter_events(response.content.iter_any())`)."""
    decoder = SSEDecoder()
    async for line in iter_lines(chunks):
        if (event := decoder.feed(line)) is not None:
            yield event
    # An event cut off before its blank line is dropped, as the SSE standard says: it may be partial.
