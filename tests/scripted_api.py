"""A scripted Messages API server: a real aiohttp server on a free port that answers POST /v1/messages
with the next turn of a script, in the real wire format, and records every request body it got.

Streams are written with the project's one SSE encoder (`anthropic.sse.frame_event` over the typed
events of `anthropic.responses`), in Anthropic's order: message_start, then per block
content_block_start / deltas / content_block_stop (a tool_use's input arrives as `input_json_delta`
pieces cut mid-token), message_delta with the stop reason and usage, message_stop.  JSON answers are
the same message in one body.  The server runs in its own thread, so a CLI run in-process or as a
subprocess can reach it.

    with ScriptedApi(turn(tool("Write", file_path="a.py", content="x")), turn(text("done"))) as api:
        ... ANTHROPIC_BASE_URL=api.url ...
        api.requests[1]["messages"]
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from agentic_flow.anthropic import responses as r
from agentic_flow.anthropic.sse import frame_event

JSON_PIECE = 5  # characters per input_json_delta: small, so a key and a value are always cut apart


@dataclass(frozen=True)
class Turn:
    blocks: tuple[r.TextContent | r.ToolUseContent, ...]
    stop_reason: str | None = None  # None: tool_use when a block is one, else end_turn

    @property
    def stop(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, r.ToolUseContent) for b in self.blocks) else "end_turn"


def text(value: str) -> r.TextContent:
    return r.TextContent(text=value)


_ids = iter(range(1, 1_000_000))


def tool(name: str, **tool_input: Any) -> r.ToolUseContent:
    return r.ToolUseContent(id=f"toolu_{next(_ids):04d}", name=name, input=tool_input)


PARTIAL = "_partial_json"  # a tool() input holding only this key streams it as is: a call cut short


def partial(name: str, raw: str) -> r.ToolUseContent:
    """A tool_use whose streamed input stops at `raw` (not JSON), as when max_tokens cuts a call."""
    return r.ToolUseContent(id=f"toolu_{next(_ids):04d}", name=name, input={PARTIAL: raw})


@dataclass(frozen=True)
class Failure:
    """A scripted answer that is an API error (529 overloaded by default), with `retry-after: 0`."""

    status: int = 529
    error_type: str = "overloaded_error"


def turn(*blocks: r.TextContent | r.ToolUseContent, stop_reason: str | None = None) -> Turn:
    return Turn(tuple(blocks), stop_reason)


class ScriptedApi:
    def __init__(self, *turns: Turn | Failure, repeat_last: bool = False) -> None:
        self.script: list[Turn | Failure] = list(turns)
        self.repeat_last = repeat_last  # answer the last turn forever (a model that never stops calling tools)
        self.requests: list[dict[str, Any]] = []  # every request body, in order
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the scripted API did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: the kernel picks a free one
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # --- answers -----------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.script:
            envelope = {"type": "error", "error": {"type": "api_error", "message": "no more scripted turns"}}
            return web.json_response(envelope, status=500)
        current = self.script[0] if self.repeat_last and len(self.script) == 1 else self.script.pop(0)
        if isinstance(current, Failure):
            envelope = {"type": "error", "error": {"type": current.error_type, "message": "scripted failure"}}
            return web.json_response(envelope, status=current.status, headers={"retry-after": "0"})
        current = _fresh_ids(current) if self.repeat_last else current
        number = len(self.requests)
        usage = r.Usage(input_tokens=100 * number, output_tokens=10)
        if body.get("stream"):
            return await _stream(request, current, body["model"], usage)
        message = r.ResponseMessage(id=f"msg_{number}", model=body["model"], content=list(current.blocks),
                                    stop_reason=current.stop, usage=usage)  # type: ignore[arg-type]
        return web.json_response(message.model_dump(), headers={"request-id": f"req_{number}"})


def _fresh_ids(current: Turn) -> Turn:
    """A repeated turn gets new tool_use ids, as a model's would."""
    blocks = tuple(tool(b.name, **b.input) if isinstance(b, r.ToolUseContent) else b for b in current.blocks)
    return Turn(blocks, current.stop_reason)


async def _stream(request: web.Request, current: Turn, model: str, usage: r.Usage) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_stream"})
    await response.prepare(request)
    start_usage = r.Usage(input_tokens=usage.input_tokens, output_tokens=1)
    await response.write(frame_event(r.MessageStartEvent(message=r.ResponseMessage(
        id="msg_stream", model=model, usage=start_usage))))
    for index, block in enumerate(current.blocks):
        for event in _block_events(index, block):
            await response.write(frame_event(event))
        if index == 0:
            await response.write(frame_event(r.PingEvent()))
    await response.write(frame_event(r.MessageDeltaEvent(
        delta=r.MessageDeltaBody(stop_reason=current.stop),  # type: ignore[arg-type]
        usage=r.DeltaUsage(output_tokens=usage.output_tokens))))
    await response.write(frame_event(r.MessageStopEvent()))
    await response.write_eof()
    return response


def _block_events(index: int, block: r.TextContent | r.ToolUseContent) -> list[r.StreamEvent]:
    events: list[r.StreamEvent] = []
    if isinstance(block, r.TextContent):
        events.append(r.ContentBlockStartEvent(index=index, content_block=r.TextContent()))
        middle = len(block.text) // 2
        for piece in (block.text[:middle], block.text[middle:]):
            if piece:
                events.append(r.ContentBlockDeltaEvent(index=index, delta=r.TextDelta(text=piece)))
    else:
        start = r.ToolUseContent(id=block.id, name=block.name, input={})
        events.append(r.ContentBlockStartEvent(index=index, content_block=start))
        raw = block.input[PARTIAL] if set(block.input) == {PARTIAL} else json.dumps(block.input)
        for at in range(0, len(raw), JSON_PIECE):
            delta = r.InputJsonDelta(partial_json=raw[at:at + JSON_PIECE])
            events.append(r.ContentBlockDeltaEvent(index=index, delta=delta))
    events.append(r.ContentBlockStopEvent(index=index))
    return events
