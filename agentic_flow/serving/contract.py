"""What a Messages request promises its client about the answer, checked against an answer that came
from elsewhere (an OpenAI-compatible upstream): pure functions over Anthropic wire dicts, no I/O.

A client that asked for `tool_choice: {"type": "any"}` acts on a tool call; an upstream that answered
text instead (llama.cpp's server did, for SmolLM2) must not be passed off as a success.  The promises:

- `tool_choice` any or tool: the answer holds a tool call (named as asked, for tool); none: it holds none;
- every tool call names a tool the request offered;
- every tool call's input validates against that tool's `input_schema`;
- `disable_parallel_tool_use`: at most one tool call.

An answer cut by `max_tokens` is exempt from the first and third: it says it is incomplete.

`check(request, message)` judges a whole message; `StreamCheck.of(request).feed(event)` judges a stream
event by event, reporting a problem as soon as it is known (a bad name at its block's start, before
the block is passed on; a bad input or a missing call at `message_delta`, once the stop reason says
whether the answer was cut), so that the client's stream ends with an error instead of a success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..tooluse.validate import validate

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Promise:
    """The parts of a request that an answer must honour."""

    choice: str  # auto, any, tool, none
    forced_name: str | None
    schemas: Mapping[str, Json | None]  # the offered tools by name (None: no schema to check)
    single: bool  # disable_parallel_tool_use

    @classmethod
    def of(cls, request: Json) -> Promise:
        tools = request.get("tools") or []
        schemas = {str(t.get("name")): t.get("input_schema") for t in tools if isinstance(t, Mapping)}
        choice = request.get("tool_choice") or {}
        kind = str(choice.get("type", "auto")) if isinstance(choice, Mapping) else "auto"
        name = choice.get("name") if isinstance(choice, Mapping) and kind == "tool" else None
        single = bool(isinstance(choice, Mapping) and choice.get("disable_parallel_tool_use"))
        return cls(kind, str(name) if name is not None else None, schemas, single)

    def name_problem(self, name: str) -> str | None:
        if self.choice == "none":
            return f"tool_choice none forbids tool calls, and the upstream called {name!r}"
        if name not in self.schemas:
            offered = ", ".join(sorted(self.schemas)) or "none"
            return f"the upstream called a tool that was not offered: {name!r} (offered: {offered})"
        if self.forced_name is not None and name != self.forced_name:
            return f"tool_choice asks for {self.forced_name!r}, and the upstream called {name!r}"
        return None

    def input_problem(self, name: str, value: object) -> str | None:
        schema = self.schemas.get(name)
        if not isinstance(value, dict):
            return f"the input of the upstream's {name!r} call is not a JSON object"
        errors = validate(value, schema) if isinstance(schema, Mapping) else []
        if errors:
            return f"the input of the upstream's {name!r} call breaks its schema: {'; '.join(errors[:3])}"
        return None

    def end_problem(self, calls: int, stop_reason: str | None) -> str | None:
        if stop_reason == "max_tokens":
            return None
        if self.choice in ("any", "tool") and calls == 0:
            wanted = f"a call of {self.forced_name!r}" if self.forced_name else "a tool call"
            return (f"tool_choice {self.choice} asks for {wanted}, and the upstream answered without one "
                    f"(stop_reason {stop_reason})")
        if self.single and calls > 1:
            return f"disable_parallel_tool_use allows one tool call, and the upstream made {calls}"
        return None


def check(request: Json, message: Json) -> str | None:
    """What breaks the request's promises in a whole Anthropic message, or None."""
    promise = Promise.of(request)
    calls = [b for b in message.get("content") or [] if isinstance(b, Mapping) and b.get("type") == "tool_use"]
    truncated = message.get("stop_reason") == "max_tokens"
    for call in calls:
        name = str(call.get("name"))
        problem = promise.name_problem(name) or (None if truncated else promise.input_problem(name, call.get("input")))
        if problem is not None:
            return problem
    return promise.end_problem(len(calls), message.get("stop_reason"))


@dataclass
class StreamCheck:
    """The same promises over a stream of Anthropic event dicts."""

    promise: Promise
    calls: int = 0
    _inputs: dict[int, tuple[str, list[str]]] = field(default_factory=dict)  # open tool blocks by index
    _ended: list[int] = field(default_factory=list)  # tool blocks whose input is complete

    @classmethod
    def of(cls, request: Json) -> StreamCheck:
        return cls(Promise.of(request))

    def feed(self, event: Json) -> str | None:
        """The problem this event reveals, or None; call it before passing the event on."""
        kind = event.get("type")
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.calls += 1
                name = str(block.get("name"))
                self._inputs[int(event.get("index", -1))] = (name, [])
                return self.promise.name_problem(name)
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "input_json_delta" and (open_ := self._inputs.get(int(event.get("index", -1)))):
                open_[1].append(str(delta.get("partial_json", "")))
        elif kind == "content_block_stop":
            index = int(event.get("index", -1))
            if index in self._inputs:
                self._ended.append(index)
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            return self._inputs_problem(stop) or self.promise.end_problem(self.calls, stop)
        return None

    def _inputs_problem(self, stop_reason: str | None) -> str | None:
        # Inputs are judged once the stop reason is known: a call cut by max_tokens is exempt.
        if stop_reason == "max_tokens":
            return None
        for index in self._ended:
            name, parts = self._inputs[index]
            raw = "".join(parts)
            try:
                value = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                return f"the input of the upstream's {name!r} call is not JSON: {raw[:200]!r}"
            if problem := self.promise.input_problem(name, value):
                return problem
        return None
