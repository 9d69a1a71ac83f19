"""Server-sent events of the Messages API: the one place that writes them and the one that reads them.

Writing (the proxy): `stream_events` encodes the neutral events of a generation (`agentic_flow.chat`,
from serving.generation) as the typed events of a Messages stream:

    message_start, content_block_start (index 0, an empty text block), ping,
    content_block_delta (one per text delta), content_block_stop, message_delta, message_stop

and `message_events` frames each as `event: NAME\\ndata: JSON\\n\\n` with compact JSON whose `type`
equals the event name.  `message_json` is a whole `chat.Answer` as one non-streaming body, and
`error_event` the error envelope during a stream.  Callers write the bytes; nothing here does I/O.

A reply of text only always carries exactly one text block, even when the model produced no text:
a streamed reply and a non-streamed one then decode to the same message, and clients that read
`content[0].text` never meet an empty list.  A reply to a request with tools carries text and
tool_use blocks in the order generated (`input_json_delta` pieces when streamed, which joined parse
as the non-streamed `input`), and still at least one block.

Reading (the agent client, the benchmark): `iter_events` (the project's one SSE decoder,
agentic_flow.eventstream) splits a byte stream into `SSEEvent`s and `responses.read_event` types each one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

from .. import chat
from ..eventstream import SSEEvent, iter_events
from . import responses as r

__all__ = [
    "HEADERS", "PING", "SSEEvent", "error_event", "frame", "frame_event", "iter_events",
    "message_events", "message_json", "new_message_id", "new_request_id", "stream_events",
]

# Anthropic's message_start reports output_tokens 1 (the stream starts with the first token on its
# way); the true count follows in message_delta, which clients take as final.
_START_OUTPUT_TOKENS = 1


def new_message_id() -> str:
    return chat.new_id("msg_")


def new_request_id() -> str:
    return chat.new_id("req_")


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


def _usage(usage: chat.Usage, output_tokens: int | None = None) -> r.Usage:
    # As Anthropic: input_tokens counts only what was not read from the (prefix) cache.
    output = usage.output_tokens if output_tokens is None else output_tokens
    return r.Usage(input_tokens=usage.input_tokens - usage.cached_tokens,
                   cache_read_input_tokens=usage.cached_tokens, output_tokens=output)


def message_json(message_id: str, model: str, answer: chat.Answer) -> dict[str, object]:
    """The body of a non-streaming Messages response: text and tool_use blocks in the order generated,
    `model` echoed as the client sent it."""
    content: list[r.ResponseContent] = [
        r.TextContent(text=part) if isinstance(part, str)
        else r.ToolUseContent(id=part.id, name=part.name, input=dict(part.input))
        for part in answer.content
    ]
    if not content:  # never an empty content list: clients read content[0]
        content.append(r.TextContent(text=""))
    stop = answer.stop
    message = r.ResponseMessage(
        id=message_id, model=model, content=content, stop_reason=stop.reason, stop_sequence=stop.sequence,
        usage=_usage(stop.usage),
    )
    return message.model_dump()


async def message_events(
    message_id: str, model: str, events: AsyncGenerator[chat.Event, None]
) -> AsyncGenerator[bytes, None]:
    """The byte chunks of a streamed Messages response: `stream_events`, each one framed.

    Closing this generator closes `events` (and so cancels the generation) at once; wrap it in
    `contextlib.aclosing` so that happens when the client goes away rather than at garbage collection."""
    async with aclosing(stream_events(message_id, model, events)) as typed:
        async for event in typed:
            yield frame_event(event)


async def stream_events(
    message_id: str, model: str, events: AsyncGenerator[chat.Event, None]
) -> AsyncGenerator[r.StreamEvent, None]:
    """The typed events of a streamed Messages response, `model` echoed as the client sent it.

    A reply without tools opens its text block at once (clients see the block before the first
    token); a reply with tools opens blocks as the parser finds text or calls.  A `ping` follows the
    start, and more while the engine is silent.  A `chat.Failure` ends the stream with an `error` event.
    Closing this generator early closes `events`."""
    blocks = _Blocks()
    expected = 0
    async with aclosing(events):
        async for event in events:
            if isinstance(event, chat.Start):
                expected = event.usage.cached_tokens
                yield r.MessageStartEvent(message=r.ResponseMessage(
                    id=message_id, model=model, usage=_usage(event.usage, _START_OUTPUT_TOKENS)))
                if not event.guided:
                    yield blocks.open(r.TextContent())
                yield r.PingEvent()
            elif isinstance(event, chat.Failure):
                yield r.ErrorEvent(error=r.ErrorDetail(type="api_error", message=event.message))
                return
            elif isinstance(event, chat.Stop):
                for typed in blocks.close(empty_text=True):
                    yield typed
                yield _message_delta(event, expected)
                yield r.MessageStopEvent()
            else:
                for typed in blocks.write(event):
                    yield typed


class _Blocks:
    """Content blocks of a stream: indexes count up from 0, one block open at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.open_kind: str | None = None

    def open(self, block: r.TextContent | r.ToolUseContent) -> r.StreamEvent:
        self.open_kind = block.type
        return r.ContentBlockStartEvent(index=self.count, content_block=block)

    def close(self, empty_text: bool = False) -> list[r.StreamEvent]:
        out: list[r.StreamEvent] = []
        if self.open_kind is None and self.count == 0 and empty_text:
            out.append(self.open(r.TextContent()))  # never a message without a block
        if self.open_kind is not None:
            out.append(r.ContentBlockStopEvent(index=self.count))
            self.open_kind = None
            self.count += 1
        return out

    def write(self, event: chat.Event) -> list[r.StreamEvent]:
        if isinstance(event, chat.Text):
            out = [] if self.open_kind == "text" else [*self.close(), self.open(r.TextContent())]
            return [*out, r.ContentBlockDeltaEvent(index=self.count, delta=r.TextDelta(text=event.text))]
        if isinstance(event, chat.ToolCallStart):
            return [*self.close(), self.open(r.ToolUseContent(id=event.id, name=event.name))]
        if isinstance(event, chat.ToolInputDelta):
            args = r.InputJsonDelta(partial_json=event.partial_json)
            return [r.ContentBlockDeltaEvent(index=self.count, delta=args)]
        if isinstance(event, chat.ToolCallDone):
            return self.close()
        return [r.PingEvent()]  # the engine has been silent for a while


def _message_delta(stop: chat.Stop, expected_cached: int) -> r.MessageDeltaEvent:
    # message_start carried the reuse expected when the request was queued; when the engine reused
    # another amount, the true counts follow here (the SDK's accumulator takes them as final).
    usage, cached = stop.usage, stop.usage.cached_tokens
    correct = cached != expected_cached
    delta_usage = r.DeltaUsage(
        output_tokens=usage.output_tokens,
        input_tokens=usage.input_tokens - cached if correct else None,
        cache_read_input_tokens=cached if correct else None,
    )
    return r.MessageDeltaEvent(
        delta=r.MessageDeltaBody(stop_reason=stop.reason, stop_sequence=stop.sequence), usage=delta_usage,
    )






