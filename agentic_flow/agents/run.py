"""One agent run's turns: call the model, run the tools it asks for, keep the history, the usage and
the record of every call.  `Run.free` is the free workflow (a turn without tool calls ends the run);
agents/guided.py drives the same `Run` turn by turn for a guided one.  The loop's entry point, with the
timeout around both, is agents/loop.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from ..errors import TransientAgentError
from .client import AgentResult, AgentRun, Text, Timings, ToolUse, Usage, backoff_delay, send
from .tools import Tool, ToolResult
from .tools.base import shorten
from .verify import Verification

MAX_TURNS_REACHED = "max_turns"  # the LoopResult's stop reason when the loop, not the model, stopped

# How a run ended, for scripts (--json "outcome") and the exit code.
VERIFIED = "verified"  # the workspace's check passed after the agent's last change
TESTS_FAILING = "tests_failing"  # the check still fails
FINISHED = "finished"  # the agent ended the task and there was nothing to check
OUT_OF_TURNS = "max_turns"
TIMED_OUT = "timeout"
TURN_RETRIES = 3  # a turn that failed transiently is run again this often (bounded backoff, up to 8 s each)


@dataclass(frozen=True)
class ToolRun:
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
class TurnRetry:
    """A turn run again after a failure the client could not retry away (overloaded, a restart)."""

    turn: int  # the history's length when it failed
    error_type: str
    status: int | None
    shown: bool  # part of the failed turn's text had been shown
    delay_s: float

    def to_json(self) -> dict[str, object]:
        return {"turn": self.turn, "error_type": self.error_type, "status": self.status, "shown": self.shown,
                "delay_s": self.delay_s}


@dataclass(frozen=True)
class LoopResult:
    text: str  # the answer: the last turn's text, or Finish's summary
    stop_reason: str | None  # the model's last, or MAX_TURNS_REACHED
    turns: int
    tool_calls: tuple[ToolRun, ...]
    usage: Usage  # summed over the turns
    model: str
    timings: Timings  # first text of the run, total
    request_id: str | None  # the last call's
    outcome: str = FINISHED
    verifications: tuple[Verification, ...] = ()
    files_changed: tuple[str, ...] = ()
    retries: tuple[TurnRetry, ...] = ()

    @property
    def stopped_at_max_turns(self) -> bool:
        return self.stop_reason == MAX_TURNS_REACHED


class LoopHooks:
    """How the loop shows itself; the CLI's implementation prints, these defaults are silent."""

    def text(self, delta: str) -> None: ...

    def tool_running(self, line: str) -> AbstractContextManager[None]:
        """Held while a tool runs (the CLI shows a spinner with `line`)."""
        return _nothing()

    def tool_done(self, call: ToolRun, result: ToolResult) -> None: ...

    def verified(self, verification: Verification) -> None: ...

    def note(self, line: str) -> None:
        """The loop changed something itself (a guided run's added import)."""

    def retrying(self, error: TransientAgentError, delay_s: float) -> None: ...


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class Run:
    def __init__(self, http: aiohttp.ClientSession, request: AgentRun, tools: Mapping[str, Tool],
                 hooks: LoopHooks) -> None:
        self.http, self.request, self.tools, self.hooks = http, request, tools, hooks
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": request.task}]
        self.calls: list[ToolRun] = []
        self.retries: list[TurnRetry] = []
        self.usage = Usage()
        self.started = time.monotonic()
        self.first_token_s: float | None = None

    async def free(self, max_turns: int, tool_choice: Mapping[str, Any] | None) -> LoopResult:
        for turn in range(1, max_turns + 1):
            result = await self.call_model(tool_choice if turn == 1 else None)
            uses = result.tool_uses
            if not uses:
                return self.result(result, result.stop_reason, turn)
            if turn == max_turns:
                return self.result(result, MAX_TURNS_REACHED, turn, OUT_OF_TURNS)
            results = [await self.run_tool(use) for use in uses]
            self.messages.append({"role": "user", "content": results})
        raise AssertionError("unreachable: the last turn returns")

    async def call_model(self, tool_choice: Mapping[str, Any] | None) -> AgentResult:
        request = replace(self.request, messages=tuple(self.messages), tool_choice=tool_choice)
        for attempt in range(TURN_RETRIES + 1):
            try:
                result = await send(self.http, request, on_text=self._text)
                break
            except TransientAgentError as error:
                # The client retried the call as far as it could (a dying inference process restarts
                # in seconds to tens of seconds): the turn is run again, its partial text dropped.
                if attempt == TURN_RETRIES:
                    raise
                delay = backoff_delay(attempt + 2, error.retry_after)
                self.retries.append(TurnRetry(len(self.messages), error.error_type, error.status, error.shown,
                                              round(delay, 2)))
                self.hooks.retrying(error, delay)
                await asyncio.sleep(delay)
        else:
            raise AssertionError("unreachable: the last attempt returns or raises")
        return self._kept(result)

    def _kept(self, result: AgentResult) -> AgentResult:
        self.usage += result.usage
        if result.stop_reason == "max_tokens":
            # A reply cut short may end in a half-written call: it is dropped; the complete calls before
            # it are run (small local models often add calls until max_tokens).
            kept = tuple(b for b in result.content if not (isinstance(b, ToolUse) and b.input_error))
            result = replace(result, content=kept)
        # Empty text blocks (the proxy opens every reply with one) are refused in a request's history.
        content = [b.to_wire() for b in result.content if not (isinstance(b, Text) and not b.text)]
        if content:
            self.messages.append({"role": "assistant", "content": content})
        return result

    def _text(self, delta: str) -> None:
        if self.first_token_s is None and delta:
            self.first_token_s = time.monotonic() - self.started
        self.hooks.text(delta)

    async def run_tool(self, use: ToolUse, note: str = "") -> dict[str, Any]:
        started = time.monotonic()
        tool = self.tools.get(use.name)
        action = tool.describe(use.input) if tool is not None else use.name
        result = await self._execute(use, tool, action)
        if note and not result.is_error:
            result = replace(result, content=result.content + note)
        call = ToolRun(use.id, use.name, use.input, action, result.summary or action, result.is_error,
                       time.monotonic() - started, result.content)
        self.calls.append(call)
        self.hooks.tool_done(call, result)
        return tool_result(use.id, result.content or "(no output)", result.is_error)

    def refuse(self, use: ToolUse, message: str) -> dict[str, Any]:
        """Answer a call without running it (the loop's own rule refused it)."""
        tool = self.tools.get(use.name)
        action = tool.describe(use.input) if tool is not None else use.name
        result = ToolResult(message, is_error=True, summary=shorten(f"{action}: not run: a repeated call"))
        call = ToolRun(use.id, use.name, use.input, action, result.summary, True, 0.0, message)
        self.calls.append(call)
        self.hooks.tool_done(call, result)
        return tool_result(use.id, message, is_error=True)

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

    def result(self, last: AgentResult | None, stop_reason: str | None, turns: int, outcome: str = FINISHED,
               *, text: str | None = None, verifications: tuple[Verification, ...] = (),
               files_changed: tuple[str, ...] = ()) -> LoopResult:
        timings = Timings(self.first_token_s, time.monotonic() - self.started)
        answer = text if text is not None else (last.text if last else "")
        return LoopResult(answer, stop_reason, turns, tuple(self.calls), self.usage,
                          last.model if last else self.request.model, timings,
                          last.request_id if last else None, outcome, verifications, files_changed,
                          tuple(self.retries))


def tool_result(tool_use_id: str, content: str, is_error: bool = False) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error}


