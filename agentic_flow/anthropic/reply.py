"""A running generation read as the content of an Anthropic reply: text and tool calls, then a stop reason.

The engine yields text; `Reply` feeds it to one `tooluse.ToolCallParser` (a plain pass-through when the
request has no tools to call) and yields its events, plus `PING` whenever the engine has been silent
for `ping_interval` seconds (a long prefill: clients with a first-byte watchdog would give up).

Two things are decided here rather than in the engine, because only the parser knows whether a
character is text or part of a call:
- stop sequences of a guided request apply to text only, never inside a call's JSON (the engine gets
  none for such a request: see `engine_options`);
- a call longer than `MAX_CALL_CHARS` (a small model looping inside a string) ends the generation, and
  the reply's stop reason is `max_tokens`;
- so does a reply that has started repeating itself (engine/repetition.py), text or call alike: greedy
  decoding does not leave such a loop, and every further token would be wasted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Final

from ..engine.base import Generation, SamplingOptions
from ..engine.repetition import RepetitionGuard
from ..engine.stops import StopMatcher
from ..tooluse import CallEnd, Event, TextDelta, ToolCallParser, ToolSpec
from .types import StopReason

log = logging.getLogger(__name__)


class _Ping:
    """The engine has produced nothing for a while: the writer sends a `ping` event."""


PING: Final = _Ping()
PING_INTERVAL_S = 5.0


def engine_options(options: SamplingOptions) -> SamplingOptions:
    """What the engine gets: a guided request's stop sequences are matched here, on text only."""
    return replace(options, stop_sequences=()) if options.guidance is not None else options


@dataclass
class Reply:
    generation: Generation
    tools: tuple[ToolSpec, ...]
    options: SamplingOptions
    ping_interval: float = PING_INTERVAL_S
    repetition_guard: bool = True
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    _parser: ToolCallParser = field(init=False)
    _stops: StopMatcher | None = field(init=False)
    _received: int = 0
    _finished: bool = False
    _guard: RepetitionGuard = field(init=False)

    def __post_init__(self) -> None:
        guided = self.options.guidance is not None
        # Every call is validated: the grammar enforces the schema (or, after a refused grammar, only
        # the JSON shape), and a call that breaks its schema is logged, never dropped silently.
        self._parser = ToolCallParser(self.tools, frozenset(t.name for t in self.tools)) if guided \
            else ToolCallParser(())
        self._stops = StopMatcher(self.options.stop_sequences) if guided else None
        self._guard = RepetitionGuard(self.repetition_guard)

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens read from the prefix cache (the engine knows once the generation ends; when the
        proxy ended it early, the reuse expected at the start)."""
        if self._finished:
            return self.generation.completion.cached_tokens
        return self.generation.expected_cached_tokens

    @property
    def output_tokens(self) -> int:
        """The engine's count; when the proxy ended the generation itself (a stop sequence in text, an
        overlong call), the deltas received, one per decode step."""
        completion = self.generation.completion
        return completion.output_tokens if self._finished else self._received

    async def events(self) -> AsyncIterator[Event | _Ping]:
        """Content events in order, PING while waiting; stop_reason is final once this ends."""
        async for delta in self._deltas():
            if isinstance(delta, _Ping):
                yield delta
                continue
            self._received += 1
            repeating = self._guard.feed(delta)
            for event in self._parser.feed(delta):
                for out in self._apply_stops(event):
                    yield out
                if self.stop_sequence is not None:
                    break
            if self.stop_sequence is not None or self._parser.overflowed or repeating:
                if self._parser.overflowed:
                    log.warning("a tool call passed %d characters: cut, stop reason max_tokens",
                                self._parser.max_call_chars)
                elif repeating and self.stop_sequence is None:
                    log.warning("the reply repeats itself (a %d-character unit): cut, stop reason max_tokens",
                                self._guard.period)
                await self.generation.aclose()
                for event in self._finish("max_tokens" if self.stop_sequence is None else "stop_sequence"):
                    yield event
                return
        self._finished = True
        for event in self._finish(self.generation.completion.stop_reason):
            yield event

    async def _deltas(self) -> AsyncIterator[str | _Ping]:
        iterator = aiter(self.generation)
        pending: asyncio.Future[str] | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=self.ping_interval)
                if not done:
                    yield PING
                    continue
                task, pending = pending, None
                try:
                    text = task.result()
                except StopAsyncIteration:
                    return
                yield text
        finally:
            if pending is not None:
                pending.cancel()

    def _apply_stops(self, event: Event) -> list[Event]:
        """Text goes through the stop matcher; anything else first releases the text it held back."""
        if self._stops is None:
            return [event]
        if self.stop_sequence is not None:
            return []  # the stop matched in text: nothing after it is part of the reply
        if not isinstance(event, TextDelta):
            held = self._stops.flush()
            return [TextDelta(held), event] if held else [event]
        text, stop = self._stops.feed(event.text)
        if stop is not None:
            self.stop_sequence = stop
        return [TextDelta(text)] if text else []

    def _finish(self, engine_stop: str) -> list[Event]:
        events, reason = self._parser.finish(engine_stop)
        out = [kept for event in events for kept in self._apply_stops(event)]
        if self._stops is not None and self.stop_sequence is None and (tail := self._stops.flush()):
            out.append(TextDelta(tail))
        for event in out:
            if isinstance(event, CallEnd) and event.errors:
                log.warning("a tool call's input breaks its schema: %s", "; ".join(event.errors))
        if self.stop_sequence is not None:
            self.stop_reason = "stop_sequence"
        else:
            self.stop_reason = reason
            if reason == "stop_sequence":
                self.stop_sequence = self.generation.completion.stop_sequence
        return out
