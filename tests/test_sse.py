"""The stream serializer: exact bytes, and the official SDK's own decoder reading them back."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable

import anthropic
import httpx2
import pytest

from agentic_flow import chat
from agentic_flow.anthropic import responses as r
from agentic_flow.anthropic.errors import error_body
from agentic_flow.anthropic.responses import read_event
from agentic_flow.anthropic.sse import (
    PING,
    error_event,
    frame,
    frame_event,
    iter_events,
    message_events,
    message_json,
    new_message_id,
    new_request_id,
)
from agentic_flow.engine.base import Completion
from agentic_flow.errors import EngineError
from agentic_flow.serving.generation import text_only
from tests.fake_engine import FakeGeneration


async def collect(
    generation: FakeGeneration, message_id: str = "msg_golden", model: str = "claude-sonnet-4-5"
) -> bytes:
    return b"".join([chunk async for chunk in message_events(message_id, model, text_only(generation))])


def text_answer(text: str, completion: Completion, input_tokens: int) -> chat.Answer:
    """A whole reply of text only, as serving.generation.collect gives it."""
    usage = chat.Usage(input_tokens, completion.cached_tokens, completion.output_tokens)
    return chat.Answer((text,) if text else (), chat.Stop(completion.stop_reason, completion.stop_sequence, usage))


GOLDEN = (
    b'event: message_start\n'
    b'data: {"type":"message_start","message":{"id":"msg_golden","type":"message","role":"assistant",'
    b'"content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":7,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    b'"output_tokens":1}}}\n'
    b'\n'
    b'event: content_block_start\n'
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n'
    b'\n'
    b'event: ping\n'
    b'data: {"type":"ping"}\n'
    b'\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n'
    b'\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n'
    b'\n'
    b'event: content_block_stop\n'
    b'data: {"type":"content_block_stop","index":0}\n'
    b'\n'
    b'event: message_delta\n'
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":2}}\n'
    b'\n'
    b'event: message_stop\n'
    b'data: {"type":"message_stop"}\n'
    b'\n'
)


async def test_golden_stream_bytes() -> None:
    generation = FakeGeneration(["Hel", "lo"], Completion("end_turn", None, 2))
    assert await collect(generation) == GOLDEN
    assert not generation.closed  # a finished generation needs no cancelling


async def test_each_event_is_one_frame_whose_type_is_its_name() -> None:
    body = await collect(FakeGeneration(["a\nb", "ü\r\n\u2028"], Completion("max_tokens", None, 3)))
    frames = body.decode().split("\n\n")
    assert frames.pop() == ""
    for raw in frames:
        event_line, data_line = raw.split("\n")  # newlines in text are escaped: one data line per event
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name


async def test_empty_deltas_are_not_sent() -> None:
    body = await collect(FakeGeneration(["", "x", ""], Completion("end_turn", None, 1)))
    assert body.count(b"event: content_block_delta") == 1


async def test_stop_sequence_and_unicode_are_carried() -> None:
    body = await collect(FakeGeneration(["café"], Completion("stop_sequence", "###", 4)))
    assert '"text":"café"'.encode() in body
    delta = b'"delta":{"stop_reason":"stop_sequence","stop_sequence":"###"},"usage":{"output_tokens":4}'
    assert delta in body


async def test_engine_failure_mid_stream_ends_with_an_error_event() -> None:
    generation = FakeGeneration(["partial"], Completion(), fail=EngineError("inference process died"))
    body = await collect(generation)
    assert body.endswith(
        b'event: error\n'
        b'data: {"type":"error","error":{"type":"api_error","message":"inference process died"}}\n\n'
    )
    assert b"message_stop" not in body
    assert generation.closed


async def test_closing_the_stream_early_cancels_the_generation() -> None:
    generation = FakeGeneration(["a", "b", "c"], Completion("end_turn", None, 3))
    async with contextlib.aclosing(message_events("msg_x", "m", text_only(generation))) as events:
        async for chunk in events:
            if b"content_block_delta" in chunk:
                break  # the client went away after the first delta
    assert generation.closed


def test_error_framings() -> None:
    assert error_event("overloaded_error", "Overloaded") == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    assert error_body("not_found_error", "model: no such model", "req_1") == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: no such model"},
        "request_id": "req_1",
    }
    assert "request_id" not in error_body("api_error", "boom")
    assert PING == frame("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_message_json() -> None:
    body = message_json("msg_1", "claude-3-5-haiku-latest", text_answer("Paris.", Completion("end_turn", None, 3), 12))
    assert body == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Paris."}],
        "model": "claude-3-5-haiku-latest",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 3},
    }


def test_message_json_keeps_one_text_block_when_there_is_no_text() -> None:
    body = message_json("msg_1", "m", text_answer("", Completion("max_tokens", None, 1), 5))
    assert body["content"] == [{"type": "text", "text": ""}]


@pytest.mark.parametrize(("make", "prefix"), [(new_message_id, "msg_"), (new_request_id, "req_")])
def test_ids(make: Callable[[], str], prefix: str) -> None:
    ids = {make() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(prefix + "[A-Za-z0-9]{24}", value) for value in ids)


# --- the official SDK reads what we write --------------------------------------------------------


# A model name no SDK release will list as deprecated: the SDK warns on those, and warnings are errors here.
SDK_MODEL = "smollm2-135m"


def sdk_client(status: int, body: bytes, content_type: str) -> anthropic.AsyncAnthropic:
    """The real SDK over an in-memory transport that answers every request with `body`."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    transport = httpx2.MockTransport(answer)
    return anthropic.AsyncAnthropic(
        api_key="test-key", base_url="http://proxy.test", max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )


async def test_sdk_accumulates_our_stream_into_the_final_message() -> None:
    generation = FakeGeneration(["Hel", "", "lo"], Completion("stop_sequence", "\nUser:", 5))
    body = await collect(generation, "msg_sdk", SDK_MODEL)
    client = sdk_client(200, body, "text/event-stream")
    async with client.messages.stream(
        model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    await client.close()
    assert deltas == ["Hel", "lo"]
    assert final.id == "msg_sdk"
    assert final.model == SDK_MODEL
    assert [(block.type, getattr(block, "text", None)) for block in final.content] == [("text", "Hello")]
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "\nUser:")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 5)
    assert (final.usage.cache_creation_input_tokens, final.usage.cache_read_input_tokens) == (0, 0)


async def test_sdk_reads_a_stream_without_text_as_one_empty_text_block() -> None:
    body = await collect(FakeGeneration([], Completion("end_turn", None, 1)), model=SDK_MODEL)
    client = sdk_client(200, body, "text/event-stream")
    async with client.messages.stream(
        model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = await stream.get_final_message()
    await client.close()
    # The same content message_json gives a non-streamed reply without text.
    expected = message_json("x", SDK_MODEL, text_answer("", Completion("end_turn", None, 1), 7))["content"]
    assert [block.to_dict() for block in final.content] == expected


async def test_sdk_raw_events_match_the_anthropic_types() -> None:
    body = await collect(FakeGeneration(["Hi"], Completion("end_turn", None, 1)), model=SDK_MODEL)
    client = sdk_client(200, body, "text/event-stream")
    events = await client.messages.create(
        model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}], stream=True,
    )
    types = [event.type async for event in events]
    await client.close()
    # The SDK skips ping; everything else arrives as its typed event, in order.
    assert types == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop",
    ]


async def test_sdk_raises_on_an_error_event_inside_the_stream() -> None:
    generation = FakeGeneration(["partial"], Completion(), fail=EngineError("inference process died"))
    client = sdk_client(200, await collect(generation), "text/event-stream")
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(
            model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
        ) as stream:
            await stream.get_final_message()
    await client.close()
    assert "inference process died" in str(caught.value)


async def test_sdk_parses_the_non_streaming_body() -> None:
    body = json.dumps(message_json("msg_ns", SDK_MODEL, text_answer("Paris.", Completion("end_turn", None, 3), 9)))
    client = sdk_client(200, body.encode(), "application/json")
    message = await client.messages.create(
        model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "Capital of France?"}],
    )
    await client.close()
    assert message.id == "msg_ns"
    assert message.content[0].type == "text" and message.content[0].text == "Paris."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 3)


async def test_sdk_maps_the_error_body_to_its_exception() -> None:
    body = json.dumps(error_body("invalid_request_error", "max_tokens: Field required", "req_abc")).encode()
    client = sdk_client(400, body, "application/json")
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=SDK_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    await client.close()
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        "request_id": "req_abc",
    }
    assert "max_tokens: Field required" in str(caught.value)


# --- the decoder the agent client and the benchmark read with ------------------------------------


async def chunks_of(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize("size", [1, 7, 4096])
async def test_the_decoder_reads_back_what_the_encoder_wrote(size: int) -> None:
    """However the bytes are cut (one byte at a time splits UTF-8 sequences), the events come back typed."""
    body = GOLDEN.replace(b"Hel", "Hé".encode())
    events = [read_event(e.event, e.data) async for e in iter_events(chunks_of(body, size))]
    assert [type(event) for event in events] == [
        r.MessageStartEvent, r.ContentBlockStartEvent, r.PingEvent, r.ContentBlockDeltaEvent,
        r.ContentBlockDeltaEvent, r.ContentBlockStopEvent, r.MessageDeltaEvent, r.MessageStopEvent,
    ]
    deltas = [e.delta for e in events if isinstance(e, r.ContentBlockDeltaEvent)]
    assert [d.text for d in deltas if isinstance(d, r.TextDelta)] == ["Hé", "lo"]
    start = events[0]
    assert isinstance(start, r.MessageStartEvent) and start.message.usage.input_tokens == 7


async def test_a_last_event_without_its_blank_line_is_dropped() -> None:
    body = b'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}'
    assert [e.event async for e in iter_events(chunks_of(body, 5))] == ["ping"]


def test_tool_use_blocks_and_input_json_deltas_are_typed() -> None:
    start = read_event("content_block_start", json.dumps({
        "type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}}))
    assert isinstance(start, r.ContentBlockStartEvent)
    assert start.content_block == r.ToolUseContent(id="toolu_1", name="Read", input={})
    delta = read_event("content_block_delta", json.dumps({
        "type": "content_block_delta", "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"path": "/a'}}))
    assert isinstance(delta, r.ContentBlockDeltaEvent)
    assert delta.delta == r.InputJsonDelta(partial_json='{"path": "/a')
    # Written back, they are the bytes Anthropic sends.
    assert frame_event(delta) == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
        b'"delta":{"type":"input_json_delta","partial_json":"{\\"path\\": \\"/a"}}\n\n'
    )


def test_types_added_later_are_skipped_not_refused() -> None:
    assert read_event("content_block_future", '{"type":"content_block_future"}') is None
    thinking = read_event("content_block_delta", json.dumps({
        "type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}))
    assert isinstance(thinking, r.ContentBlockDeltaEvent) and isinstance(thinking.delta, r.OtherDelta)
    with pytest.raises(ValueError):
        read_event("message_delta", '{"type":"message_delta","delta":{},"usage":{"output_tokens":"many"}}')
    with pytest.raises(ValueError):
        read_event("message_stop", '{"type":"ping"}')  # the data is not the event it is named
