"""Generated text deltas turned into text and tool-call events, incrementally.

The parser reads what the grammar allows (text, then `<tool_call>` or ```json calls) and also survives
output that was not constrained (a refused grammar, or a model left free): JSON that does not parse as a
call of a known tool is given back as text, never as a broken tool_use.  Call markup never leaks into
text: a possible opener split across deltas is held back until it is decided.  Argument JSON is streamed
as it comes (for `input_json_delta`) once the name is known; `CallEnd` carries the parsed input.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..chat import StopReason, new_id
from .codeblocks import field_value, read_blocks
from .markup import OPENERS, TAG_CLOSE
from .types import ToolCall, ToolSpec
from .validate import validate

log = logging.getLogger(__name__)
MAX_CALL_CHARS = 32_000  # one call's JSON; past it the call is cut and the turn ends with max_tokens
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*')


def new_tool_id() -> str:
    return new_id("toolu_")


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class CallStart:
    id: str
    name: str


@dataclass(frozen=True)
class ArgsDelta:
    partial_json: str


@dataclass(frozen=True)
class CallEnd:
    """`call` is None when the call was cut short (max_tokens): its block is closed, its input unknown.
    `errors` lists what the input breaks of a schema the grammar could enforce only in part."""

    call: ToolCall | None
    errors: tuple[str, ...] = ()


Event = TextDelta | CallStart | ArgsDelta | CallEnd


@dataclass
class _Call:
    closer: str
    body: str = ""
    start: CallStart | None = None
    args_from: int = -1  # where the arguments value begins in body, once the head is read
    args_sent: int = 0  # how much of it has been streamed
    depth: int = 0
    in_string: bool = False
    escaped: bool = False
    scanned: int = 0
    body_end: int = -1  # set when the outer object has closed


@dataclass
class ToolCallParser:
    tools: tuple[ToolSpec, ...]
    loose: frozenset[str] = frozenset()  # names whose input must be validated after parsing
    max_call_chars: int = MAX_CALL_CHARS
    calls: list[ToolCall] = field(default_factory=list)
    overflowed: bool = False  # the caller should stop generating: finish() reports max_tokens
    _held: str = ""
    _call: _Call | None = None

    def __post_init__(self) -> None:
        self._specs: Mapping[str, ToolSpec] = {t.name: t for t in self.tools}

    def feed(self, delta: str) -> list[Event]:
        if self.overflowed:
            return []
        events: list[Event] = []
        rest = delta
        while rest:
            rest = self._feed_call(rest, events) if self._call else self._feed_text(rest, events)
        return events

    def finish(self, engine_stop: str) -> tuple[list[Event], StopReason]:
        """Flush what is held back; `engine_stop` is the engine's reason (end_turn / max_tokens /
        stop_sequence).  Returns the last events and the turn's stop reason."""
        events: list[Event] = []
        call, self._call = self._call, None
        spec = self._coded(call) if call is not None and call.body_end >= 0 else None
        got = read_blocks(call.body[call.body_end:], len(spec.code_fields)) if call and spec else None
        if call is not None and spec is not None and got is None:
            # A code call whose blocks never came whole cannot be run, and its block was never opened.
            log.warning("a %s call's code blocks were cut short: dropped", spec.name)
            return events, "max_tokens" if engine_stop == "max_tokens" else _engine_reason(engine_stop)
        if call is not None and spec is not None and got is not None:
            fields = {f: field_value(f, text) for f, text in zip(spec.code_fields, got[0], strict=True)}
            self._complete(call, events, fields=fields)  # only the closing tag is missing
        elif call is not None and call.body_end >= 0:
            self._complete(call, events)  # the JSON is whole; only the closing markup is missing
        elif call is not None:
            cut = engine_stop == "max_tokens"
            if call.start is not None:
                events.append(CallEnd(None))  # its block was opened: close it, with no input
                return events, "max_tokens" if cut else _engine_reason(engine_stop)
            if cut:
                return events, "max_tokens"  # half a call is neither text nor a tool_use
            self._held += _opener(call) + call.body  # unconstrained JSON that never closed: text
        if self._held and (self._held.strip() or not self.calls):
            events.append(TextDelta(self._held))
        self._held = ""
        if self.overflowed:
            return events, "max_tokens"
        return events, "tool_use" if self.calls else _engine_reason(engine_stop)

    # -- text -------------------------------------------------------------------------------------
    def _feed_text(self, delta: str, events: list[Event]) -> str:
        text = self._held + delta
        hits = [(i, k) for k in OPENERS if (i := text.find(k)) >= 0]
        if hits:
            i, opener = min(hits)
            self._emit_text(text[:i].rstrip(), events)
            self._held = ""
            self._call = _Call(OPENERS[opener])
            return text[i + len(opener):]
        keep = _partial_opener(text)
        body = text[: len(text) - keep]
        stripped = body.rstrip()  # trailing whitespace waits: it is dropped if a call follows
        self._emit_text(stripped, events)
        self._held = text[len(stripped):]
        return ""

    def _emit_text(self, text: str, events: list[Event]) -> None:
        if text and not (self.calls and not text.strip()):
            events.append(TextDelta(text))

    # -- calls ------------------------------------------------------------------------------------
    def _feed_call(self, delta: str, events: list[Event]) -> str:
        call = self._call
        assert call is not None
        if call.body_end < 0:
            used = self._scan(call, delta)
            self._stream(call, events)
            if len(call.body) > self.max_call_chars:
                self.overflowed, self._call = True, None
                if call.start is not None:
                    events.append(CallEnd(None))
                return ""
            delta = delta[used:]
            if call.body_end < 0:
                return ""
        tail = call.body[call.body_end:] + delta
        call.body = call.body[: call.body_end]
        spec = self._coded(call)
        if spec is not None:
            return self._feed_blocks(call, spec, tail, events)
        stripped = tail.lstrip()
        if stripped.startswith(call.closer):
            self._call = None
            used = len(tail) - len(stripped) + len(call.closer)
            self._complete(call, events, tail[:used])
            return tail[used:]
        if call.closer.startswith(stripped):
            call.body += tail  # the closer may still be arriving
            return ""
        self._call = None  # unconstrained output with no closer: take the call, read on as text
        self._complete(call, events)
        return tail

    def _coded(self, call: _Call) -> ToolSpec | None:
        """The spec when this call is written with code blocks (its JSON lacks the code fields)."""
        if call.closer != TAG_CLOSE:
            return None
        parsed = _parse_call(call.body[: call.body_end])
        spec = self._specs.get(parsed[0]) if parsed else None
        if spec is None or not spec.code_fields or parsed is None:
            return None
        return spec if any(f not in parsed[1] for f in spec.code_fields) else None

    def _feed_blocks(self, call: _Call, spec: ToolSpec, tail: str, events: list[Event]) -> str:
        """After a code call's JSON: its fenced blocks, then the closing tag."""
        got = read_blocks(tail, len(spec.code_fields))
        if got is not None:
            bodies, used = got
            rest = tail[used:]
            stripped = rest.lstrip()
            if stripped.startswith(call.closer):
                self._call = None
                fields = {f: field_value(f, text) for f, text in zip(spec.code_fields, bodies, strict=True)}
                self._complete(call, events, fields=fields)
                return stripped[len(call.closer):]
            if not call.closer.startswith(stripped):  # unconstrained: no closer came; take the call
                self._call = None
                fields = {f: field_value(f, text) for f, text in zip(spec.code_fields, bodies, strict=True)}
                self._complete(call, events, fields=fields)
                return rest
        if call.body_end + len(tail) > self.max_call_chars:
            self.overflowed, self._call = True, None
            if call.start is not None:
                events.append(CallEnd(None))
            return ""
        call.body += tail  # the blocks (or the closer) are still arriving
        return ""

    def _scan(self, call: _Call, delta: str) -> int:
        """Append delta to the body up to the end of the outer JSON object; returns how much was used."""
        for n, ch in enumerate(delta):
            call.body += ch
            if call.escaped:
                call.escaped = False
            elif call.in_string:
                call.escaped = ch == "\\"
                call.in_string = ch != '"'
            elif ch == '"':
                call.in_string = True
            elif ch in "{[":
                call.depth += 1
            elif ch in "}]":
                call.depth -= 1
                if call.depth == 0:
                    call.body_end = len(call.body)
                    return n + 1
        return len(delta)

    def _stream(self, call: _Call, events: list[Event]) -> None:
        if call.start is None:
            head = _HEAD.match(call.body)
            name = json.loads(head.group(1)) if head else None
            if head is None or not isinstance(name, str) or name not in self._specs:
                return  # not yet (or not in the streamable order): decided when the JSON is whole
            if self._specs[name].code_fields:
                # Opened only once it is complete: its code comes last, and a block cut short must not
                # leave the client an opened tool_use with no input.
                return
            call.start = CallStart(new_tool_id(), name)
            call.args_from = call.args_sent = head.end()
            events.append(call.start)
        end = len(call.body) if call.body_end < 0 else call.body_end - 1  # never the outer closing brace
        chunk = call.body[call.args_sent:end]
        chunk = chunk.rstrip()  # whitespace may precede the outer brace: it is not part of the input
        if chunk:
            events.append(ArgsDelta(chunk))
            call.args_sent += len(chunk)

    def _complete(self, call: _Call, events: list[Event], closing: str = "",
                  fields: Mapping[str, str] | None = None) -> None:
        self._stream(call, events)
        parsed = _parse_call(call.body[: call.body_end])
        if parsed is not None and fields:
            parsed = (parsed[0], {**parsed[1], **fields})
        if parsed is None or parsed[0] not in self._specs:
            if call.start is not None:
                events.append(CallEnd(None, ("the call's JSON is not {name, arguments}",)))
            else:
                self._emit_text(_opener(call) + call.body[: call.body_end] + closing, events)
            return
        name, arguments = parsed
        if call.start is None:
            call.start = CallStart(new_tool_id(), name)
            events += [call.start, ArgsDelta(json.dumps(arguments, ensure_ascii=False))]

        errors = validate(arguments, self._specs[name].input_schema) if name in self.loose else []
        tool_call = ToolCall(call.start.id, name, arguments)
        self.calls.append(tool_call)
        events.append(CallEnd(tool_call, tuple(errors)))


def _opener(call: _Call) -> str:
    return next(k for k, v in OPENERS.items() if v == call.closer)


def _parse_call(body: str) -> tuple[str, dict[str, object]] | None:
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters"))
    return (value["name"], arguments) if isinstance(arguments, dict) else None


def _partial_opener(text: str) -> int:
    """Length of the longest suffix of text that begins an opener."""
    best = 0
    for opener in OPENERS:
        for n in range(min(len(opener) - 1, len(text)), best, -1):
            if text.endswith(opener[:n]):
                best = n
                break
    return best


def _engine_reason(reason: str) -> StopReason:
    if reason == "max_tokens":
        return "max_tokens"
    if reason == "stop_sequence":
        return "stop_sequence"
    return "end_turn"
