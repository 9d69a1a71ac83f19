"""Server-sent events of the Messages API: the one place that writes them and the one that reads them.

Writing (the proxy): `message_events` turns a running `Generation` into the exact byte chunks of a
Messages stream:

    message_start, content_block_start (index 0, an empty text block), ping,
    content_block_delta (one per text delta), content_block_stop, message_delta, message_stop

each framed as `event: NAME\\ndata: JSON\\n\\n` with compact JSON whose `type` equals the event name.
`message_json` is the same message as one non-streaming body, and `error_event` the error envelope
during a stream.  Callers write the bytes; nothing here does I/O.

Both forms always carry exactly one text block, even when the model produced no text: a streamed
reply and a non-streamed one then decode to the same message, and clients that read
`content[0].text` never meet an empty list.

Reading (the agent client, the benchmark): `iter_events` splits a byte stream into `SSEEvent`s and
`responses.read_event` types each one.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from ..engine.base import Completion, Generation
from ..errors import EngineError
from . import responses as r

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

# The response headers of every stream the proxy writes (X-Accel-Buffering: nginx must not buffer it).
HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


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


def message_json(
    message_id: str, model: str, text: str, completion: Completion, input_tokens: int
) -> dict[str, object]:
    """The body of a non-streaming Messages response."""
    message = r.ResponseMessage(
        id=message_id, model=model, content=[r.TextContent(text=text)],
        stop_reason=completion.stop_reason, stop_sequence=completion.stop_sequence,
        usage=r.Usage(input_tokens=input_tokens, output_tokens=completion.output_tokens),
    )
    return message.model_dump()


async def message_events(message_id: str, model: str, generation: Generation) -> AsyncGenerator[bytes, None]:
    """The byte chunks of a streamed Messages response: `stream_events`, each one framed.

    If the caller stops iterating (the client went away) and closes this generator, the generation is
    cancelled; wrap it in `contextlib.aclosing` so that happens at once rather than at garbage collection."""
    async with aclosing(stream_events(message_id, model, generation)) as events:
        async for event in events:
            yield frame_event(event)


async def stream_events(
    message_id: str, model: str, generation: Generation
) -> AsyncGenerator[r.StreamEvent, None]:
    """The typed events of a streamed Messages response, `model` echoed as the client sent it; other
    APIs' encoders (openai.serve_response) consume these, not our framed bytes.

    A generation that fails with an EngineError ends the stream with an `error` event.  Closing this
    generator early cancels the generation."""
    usage = r.Usage(input_tokens=generation.input_tokens, output_tokens=_START_OUTPUT_TOKENS)
    yield r.MessageStartEvent(message=r.ResponseMessage(id=message_id, model=model, usage=usage))
    yield r.ContentBlockStartEvent(index=0, content_block=r.TextContent())
    yield r.PingEvent()
    finished = False
    try:
        async for text in generation:
            if text:
                yield r.ContentBlockDeltaEvent(index=0, delta=r.TextDelta(text=text))
        finished = True
    except EngineError as exc:
        yield r.ErrorEvent(error=r.ErrorDetail(type="api_error", message=str(exc)))
        return
    finally:
        if not finished:
            await generation.aclose()
    yield r.ContentBlockStopEvent(index=0)
    yield _message_delta(generation.completion)
    yield r.MessageStopEvent()


def _message_delta(completion: Completion) -> r.MessageDeltaEvent:
    return r.MessageDeltaEvent(
        delta=r.MessageDeltaBody(stop_reason=completion.stop_reason, stop_sequence=completion.stop_sequence),
        usage=r.DeltaUsage(output_tokens=completion.output_tokens),
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
