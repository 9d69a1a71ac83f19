"""The agent loop: the model asks for tools, the loop runs them and sends back their results.

    turn 1: system + task + tools          -> text and tool_use blocks (stop_reason "tool_use")
            run each tool_use, in order    -> one user turn of tool_result blocks (is_error on failure)
    turn 2: the history so far             -> ... until "end_turn", max_turns, or the run's timeout

The timeout covers the whole run (every call and every tool); when it fires, or on Ctrl-C, the running
tool is cancelled and Bash kills the command's whole process tree before the error leaves.  A tool name
the model invents, or an input that is not JSON, goes back to the model as an error result it can act
on: the run never crashes on what a model sends.  An agent with no tools makes exactly one call, as
before the loop existed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from ..errors import AgentError, ConfigError
from .client import AgentResult, AgentRun, Text, Timings, ToolUse, Usage, send, session
from .tools import Tool, ToolResult, tool_definitions
from .tools.base import shorten

MAX_TURNS_REACHED = "max_turns"  # the LoopResult's stop reason when the loop, not the model, stopped

# Appended to the agent's own prompt when it has tools: small models otherwise answer with code blocks
# and change nothing.
TOOLS_NOTE = (
    "\n\nYou work inside a workspace folder and act through the tools you are given: read files with "
    "Read, create them with Write, change them with Edit, and run commands with Bash (when offered). "
    "Use relative paths. Make the change with a tool instead of only showing code. When the task is "
    "done, answer with one or two sentences saying what you did."
)


@dataclass(frozen=True)
class ToolCall:
    """One tool call as it ran: what the model asked and what came back."""

    id: str
    name: str
    input: dict[str, Any]
    action: str  # the call in a few words: "Write hello.py", "Bash(pytest -q)"
    summary: str
    is_error: bool
    duration_s: float
    content: str  # what the model was sent


@dataclass(frozen=True)
class LoopResult:
    text: str  # the last turn's text: the answer
    stop_reason: str | None  # the model's last, or MAX_TURNS_REACHED
    turns: int
    tool_calls: tuple[ToolCall, ...]
    usage: Usage  # summed over the turns
    model: str
    timings: Timings  # first text of the run, total
    request_id: str | None  # the last call's

    @property
    def stopped_at_max_turns(self) -> bool:
        return self.stop_reason == MAX_TURNS_REACHED


class LoopHooks:
    """How the loop shows itself; the CLI's implementation prints, these defaults are silent."""

    def text(self, delta: str) -> None: ...

    def tool_running(self, line: str) -> AbstractContextManager[None]:
        """Held while a tool runs (the CLI shows a spinner with `line`)."""
        return _nothing()

    def tool_done(self, call: ToolCall, result: ToolResult) -> None: ...


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def tool_choice_param(raw: str | None, tools: Mapping[str, Tool]) -> dict[str, Any] | None:
    """--tool-choice: `auto`, `any`, or a tool's name (which must be one of this run's tools).  A forced
    choice asks for one call: small models otherwise repeat the forced call until max_tokens."""
    if raw is None:
        return None
    if raw == "auto":
        return {"type": "auto"}
    if raw == "any":
        return {"type": "any", "disable_parallel_tool_use": True}
    if raw not in tools:
        known = ", ".join(tools) or "(none)"
        raise ConfigError(f"--tool-choice {raw!r} is not one of this run's tools: {known}; or use auto, any")
    return {"type": "tool", "name": raw, "disable_parallel_tool_use": True}


async def run_loop(
    request: AgentRun,
    tools: Mapping[str, Tool],
    hooks: LoopHooks,
    *,
    max_turns: int = 20,
    tool_choice: Mapping[str, Any] | None = None,
) -> LoopResult:
    """Run the agent until it stops asking for tools.  `tool_choice` applies to the first turn only (a
    forced tool on every turn would never end).  Raises AgentError on an API failure or the timeout."""
    if tools:
        request = replace(request, system=request.system + TOOLS_NOTE, tools=tuple(tool_definitions(tools)))
    try:
        async with asyncio.timeout(request.timeout), session() as http:
            return await _Run(http, request, tools, hooks).go(max_turns, tool_choice)
    except TimeoutError:
        raise AgentError(f"the agent run timed out after {request.timeout:g} s") from None


class _Run:
    def __init__(self, http: aiohttp.ClientSession, request: AgentRun, tools: Mapping[str, Tool],
                 hooks: LoopHooks) -> None:
        self.http, self.request, self.tools, self.hooks = http, request, tools, hooks
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": request.task}]
        self.calls: list[ToolCall] = []
        self.usage = Usage()
        self.started = time.monotonic()
        self.first_token_s: float | None = None

    async def go(self, max_turns: int, tool_choice: Mapping[str, Any] | None) -> LoopResult:
        for turn in range(1, max_turns + 1):
            result = await self._call_model(tool_choice if turn == 1 else None)
            uses = result.tool_uses
            if not uses:
                return self._result(result, result.stop_reason, turn)
            if turn == max_turns:
                return self._result(result, MAX_TURNS_REACHED, turn)
            results = [await self._run_tool(use) for use in uses]
            self.messages.append({"role": "user", "content": results})
        raise AssertionError("unreachable: the last turn returns")

    async def _call_model(self, tool_choice: Mapping[str, Any] | None) -> AgentResult:
        request = replace(self.request, messages=tuple(self.messages), tool_choice=tool_choice)
        result = await send(self.http, request, on_text=self._text)
        self.usage += result.usage
        if result.stop_reason == "max_tokens":
            # A reply cut short may end in a half-written call: it is dropped; the complete calls before
            # it are run (small local models often add calls until max_tokens).
            kept = tuple(b for b in result.content if not (isinstance(b, ToolUse) and b.input_error))
            result = replace(result, content=kept)
        # Empty text blocks (the proxy opens every reply with one) are refused in a request's history.
        content = [b.to_wire() for b in result.content if not (isinstance(b, Text) and not b.text)]
        self.messages.append({"role": "assistant", "content": content})
        return result

    def _text(self, delta: str) -> None:
        if self.first_token_s is None and delta:
            self.first_token_s = time.monotonic() - self.started
        self.hooks.text(delta)

    async def _run_tool(self, use: ToolUse) -> dict[str, Any]:
        started = time.monotonic()
        tool = self.tools.get(use.name)
        action = tool.describe(use.input) if tool is not None else use.name
        result = await self._execute(use, tool, action)
        call = ToolCall(use.id, use.name, use.input, action, result.summary or action, result.is_error,
                        time.monotonic() - started, result.content)
        self.calls.append(call)
        self.hooks.tool_done(call, result)
        return {"type": "tool_result", "tool_use_id": use.id,
                "content": result.content or "(no output)", "is_error": result.is_error}

    async def _execute(self, use: ToolUse, tool: Tool | None, action: str) -> ToolResult:
        if tool is None:
            known = ", ".join(self.tools) or "(none)"
            message = f"there is no tool named {use.name!r}; the tools are: {known}"
            return ToolResult(message, is_error=True, summary=shorten(f"{use.name}: error: unknown tool"))
        if use.input_error is not None:
            return ToolResult(f"{use.name}: {use.input_error}", is_error=True,
                              summary=shorten(f"{use.name}: error: the input is not a JSON object"))
        with self.hooks.tool_running(action):
            return await tool.run(use.input)

    def _result(self, last: AgentResult, stop_reason: str | None, turns: int) -> LoopResult:
        timings = Timings(self.first_token_s, time.monotonic() - self.started)
        return LoopResult(last.text, stop_reason, turns, tuple(self.calls), self.usage, last.model,
                          timings, last.request_id)

