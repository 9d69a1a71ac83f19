"""A running generation read as `chat` events: text and tool calls, then a stop reason and the usage.

The engine yields text; `GenerationStream` feeds it to one `tooluse.ToolCallParser` (a plain
pass-through, `PlainText`, when the request has no tools to call) and yields its events as `chat` events, plus
`chat.Ping` whenever the engine has been silent for `ping_interval` seconds (a long prefill: clients
with a first-byte watchdog would give up).  Each API's encoder (anthropic.sse, openai.serve_response)
writes these events; none of them re-parses the model's text.

Two things are decided here rather than in the engine, because only the parser knows whether a
character is text or part of a call:
- stop sequences of a guided request apply to text only, never inside a call's JSON (the engine gets
  none for such a request: see `engine_options`); an unguided request's are matched in the engine;
- a call longer than `MAX_CALL_CHARS` (a small model looping inside a string) ends the generation, and
  the reply's stop reason is `max_tokens`;
- so does a reply that has started repeating itself (engine/repetition.py), text or call alike: greedy
  decoding does not leave such a loop, and every further token would be wasted;
- a request that asked for logprobs gets each token's score on the `chat.Text` that completes the
  token's text, cut where the reply's text was cut (serving.logprobs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Final

from .. import chat
from ..engine.base import Completion, Generation, SamplingOptions
from ..engine.repetition import RepetitionGuard
from ..engine.stops import StopMatcher
from ..errors import EngineError
from ..tooluse import ArgsDelta, CallEnd, CallStart, TextDelta, ToolCallParser
from ..tooluse import Event as ParserEvent
from .logprobs import Aligner

log = logging.getLogger(__name__)


class _Ping:
    """The engine has produced nothing for a while."""


_PING: Final = _Ping()
PING_INTERVAL_S = 5.0


class PlainText:
    """The parser of a reply with no tools to call: its text exactly as generated."""

    overflowed = False
    max_call_chars = 0

    def feed(self, delta: str) -> list[ParserEvent]:
        return [TextDelta(delta)] if delta else []

    def finish(self, engine_stop: str) -> tuple[list[ParserEvent], chat.StopReason]:
        reason: chat.StopReason = "max_tokens" if engine_stop == "max_tokens" else (
            "stop_sequence" if engine_stop == "stop_sequence" else "end_turn")
        return [], reason


def engine_options(options: SamplingOptions) -> SamplingOptions:
    """What the engine gets: a guided request's stop sequences are matched here, on text only."""
    return replace(options, stop_sequences=()) if options.guidance is not None else options


@dataclass
class GenerationStream:
    generation: Generation
    tools: tuple[chat.ToolSpec, ...]
    options: SamplingOptions
    ping_interval: float = PING_INTERVAL_S
    repetition_guard: bool = True
    stop_reason: chat.StopReason = "end_turn"
    stop_sequence: str | None = None
    _parser: ToolCallParser | PlainText = field(init=False)
    _stops: StopMatcher | None = field(init=False)
    _received: int = 0
    _finished: bool = False
    _guard: RepetitionGuard = field(init=False)
    _raw: list[str] = field(default_factory=list)  # what the model wrote, kept only for debug logging
    _aligner: Aligner | None = field(init=False)

    def __post_init__(self) -> None:
        guided = self.options.guidance is not None
        # Every call is validated: the grammar enforces the schema (or, after a refused grammar, only
        # the JSON shape), and a call that breaks its schema is logged, never dropped silently.
        self._parser = ToolCallParser(self.tools, frozenset(t.name for t in self.tools)) if guided and self.tools \
            else PlainText()
        self._aligner = Aligner() if self.options.logprobs is not None else None
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

    def usage(self) -> chat.Usage:
        return chat.Usage(self.generation.input_tokens, self.cached_tokens, self.output_tokens)

    async def events(self, *, catch: bool = True) -> AsyncGenerator[chat.Event, None]:
        """Start, content events in order (Ping while waiting), then Stop.  An EngineError during the
        generation ends it with `Failure` (`catch`) or is raised (a non-streaming reply: the caller
        still answers with an HTTP error).  Closing this generator early cancels the generation."""
        expected = chat.Usage(self.generation.input_tokens, self.generation.expected_cached_tokens, 1)
        # A structured reply (guidance, no tools) is text from the start.
        yield chat.Start(expected, guided=self.options.guidance is not None and bool(self.tools))
        finished = False
        try:
            async for event in self._content():
                yield event
            finished = True
        except EngineError as exc:
            if not catch:
                raise
            yield chat.Failure(str(exc))
            return
        finally:
            if not finished:
                await self.generation.aclose()
        yield chat.Stop(self.stop_reason, self.stop_sequence, self.usage())

    async def _content(self) -> AsyncIterator[chat.Event]:
        async for delta in self._deltas():
            if isinstance(delta, _Ping):
                yield chat.Ping()
                continue
            self._received += 1
            if log.isEnabledFor(logging.DEBUG):
                self._raw.append(delta)
            repeating = self._guard.feed(delta)
            for event in self._parser.feed(delta):
                for out in self._apply_stops(event):
                    yield self._scored(neutral(out))
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
                    yield self._scored(neutral(event))
                if (rest := self._rest()) is not None:
                    yield rest
                return
        self._finished = True
        for event in self._finish(self.generation.completion.stop_reason):
            yield self._scored(neutral(event))
        if (rest := self._rest()) is not None:
            yield rest

    def _scored(self, event: chat.Event) -> chat.Event:
        """A text event with the scores of the tokens it completes (a request for logprobs)."""
        if self._aligner is None or not isinstance(event, chat.Text):
            return event
        return chat.Text(event.text, self._aligner.text(event.text, self.generation.logprobs))

    def _rest(self) -> chat.Text | None:
        """The scores not yet released once the text has ended, on an empty text event."""
        if self._aligner is None:
            return None
        rest = self._aligner.finish(self.generation.logprobs, cut=self.stop_reason == "stop_sequence")
        return chat.Text("", rest) if rest else None

    async def _deltas(self) -> AsyncIterator[str | _Ping]:
        iterator = aiter(self.generation)
        pending: asyncio.Future[str] | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=self.ping_interval)
                if not done:
                    yield _PING
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

    def _apply_stops(self, event: ParserEvent) -> list[ParserEvent]:
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

    def _finish(self, engine_stop: str) -> list[ParserEvent]:
        if self._raw:
            log.debug("the model wrote (%s): %r", engine_stop, "".join(self._raw)[:4000])
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


def neutral(event: ParserEvent) -> chat.Event:
    """The parser's event as the chat event every encoder reads."""
    match event:
        case TextDelta():
            return chat.Text(event.text)
        case CallStart():
            return chat.ToolCallStart(event.id, event.name)
        case ArgsDelta():
            return chat.ToolInputDelta(event.partial_json)
        case CallEnd():
            return chat.ToolCallDone(event.call)


class Peeked:
    """A generation whose first delta has been read already (see `peeked`)."""

    def __init__(self, generation: Generation, iterator: AsyncIterator[str], first: list[str]) -> None:
        self._generation = generation
        self._iterator = iterator
        self._first = first
        self.input_tokens = generation.input_tokens
        self.expected_cached_tokens = generation.expected_cached_tokens
        self.logprobs = generation.logprobs  # the same list, filled as the generation goes

    @property
    def completion(self) -> Completion:
        return self._generation.completion

    @completion.setter
    def completion(self, value: Completion) -> None:
        self._generation.completion = value

    async def __aiter__(self) -> AsyncIterator[str]:
        for text in self._first:
            yield text
        async for text in self._iterator:
            yield text

    async def aclose(self) -> None:
        await self._generation.aclose()


async def peeked(generation: Generation) -> Peeked:
    """Read the first delta now: the inference process creates a request's grammar when its batch
    starts, after the start was acknowledged, so a grammar the runtime refuses (GrammarRefused) is
    raised here, before any response is sent, rather than in the middle of a stream."""
    iterator = aiter(generation)
    try:
        first = [await anext(iterator)]
    except StopAsyncIteration:
        first = []
    return Peeked(generation, iterator, first)


def text_only(generation: Generation, ping_interval: float = PING_INTERVAL_S) -> AsyncGenerator[chat.Event, None]:
    """The events of a generation read as text only (no tools to call)."""
    return GenerationStream(generation, (), SamplingOptions(max_tokens=1), ping_interval).events()


async def collect(events: AsyncIterator[chat.Event]) -> chat.Answer:
    """A whole reply for a non-streaming response: text and tool calls in the order generated.  A call
    cut short (max_tokens) is left out: its input is unknown."""
    content: list[str | chat.ToolCall] = []
    text: list[str] = []
    scores: list[chat.TokenLogprob] = []
    async for event in events:
        match event:
            case chat.Text():
                text.append(event.text)
                scores.extend(event.logprobs)
            case chat.ToolCallStart():
                if text:
                    content.append("".join(text))
                    text = []
            case chat.ToolCallDone(call=call) if call is not None:
                content.append(call)
            case chat.Stop():
                if text:
                    content.append("".join(text))
                return chat.Answer(tuple(content), event, tuple(scores))
            case chat.Failure():
                raise EngineError(event.message)
    raise EngineError("the generation ended without a stop")
