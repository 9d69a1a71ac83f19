"""Helpers for the tests of agentic_flow.openai: the official SDKs rebuild what our translators emit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from agentic_flow.openai.sse import SSEParser, data_frame

_EVENT = TypeAdapter(RawMessageStreamEvent)


def anthropic_message(events: Iterable[Mapping[str, Any]]) -> Message:
    """Validate each event against the anthropic SDK's types and accumulate them as the SDK does."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        typed = _EVENT.validate_python(event)  # strict: a malformed event fails here
        snapshot = accumulate_event(event=typed, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None, "no events"
    return Message.model_validate(snapshot.model_dump())


def openai_completion(chunks: Iterable[Mapping[str, Any]]) -> ChatCompletion:
    """Accumulate chunk dicts with the openai SDK's own stream state."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return ChatCompletion.model_validate(state.get_final_completion().model_dump())


def sse_bytes(*items: Mapping[str, Any] | str) -> bytes:
    """An upstream's stream body: dicts become `data:` events, strings are sent verbatim."""
    return b"".join(item.encode() if isinstance(item, str) else data_frame(item) for item in items)


def parse_sse(body: bytes) -> list[str]:
    parser = SSEParser()
    return [event.data for event in parser.feed(body) + parser.close()]
