"""The agent loop: the model asks for tools, the loop runs them and sends back their results.

    turn 1: system + task + tools          -> text and tool_use blocks (stop_reason "tool_use")
            run each tool_use, in order    -> one user turn of tool_result blocks (is_error on failure)
    turn 2: the history so far             -> ... until the run ends

How a run ends depends on its workflow (agents/workflow.py).  `free`: a turn without tool calls ends it
(its text is the answer).  `guided`: every turn calls one tool, `Finish` ends it, and after each change
the loop runs the workspace's tests itself (agents/verify.py), ending the run when they pass.

The timeout covers the whole run (every call and every tool); when it fires, or on Ctrl-C, the running
tool is cancelled and Bash kills the command's whole process tree before the error leaves.  A tool name
the model invents, or an input that is not JSON, goes back to the model as an error result it can act
on: the run never crashes on what a model sends.  An agent with no tools makes exactly one call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from ..errors import AgentError, ConfigError, TransientAgentError
from .client import AgentResult, AgentRun, Text, Timings, ToolUse, Usage, backoff_delay, send, session
from .tools import Tool, ToolContext, ToolResult, tool_definitions
from .tools.base import ToolError, shorten
from .tools.files import write_atomic
from .verify import CheckCommand, Verification, feedback, find_check, run_check
from .workflow import (
    EDIT_TOOLS,
    FINISH,
    FINISH_TOOL,
    FREE_NOTE,
    GUIDED_NOTE,
    MAX_FINISH_REFUSALS,
    ONE_CALL,
    Opening,
    fix_imports,
    guided_tools,
    lost_names,
    missing_note,
    opening,
    prompt_for,
    repeat_note,
    still_missing,
)

MAX_TURNS_REACHED = "max_turns"  # the LoopResult's stop reason when the loop, not the model, stopped
TOOLS_NOTE = FREE_NOTE  # what a free run appends to the agent's prompt

# How a run ended, for scripts (--json "outcome") and the exit code.
VERIFIED = "verified"  # the workspace's check passed after the agent's last change
TESTS_FAILING = "tests_failing"  # the check still fails
FINISHED = "finished"  # the agent ended the task and there was nothing to check
OUT_OF_TURNS = "max_turns"
TIMED_OUT = "timeout"
MAX_FORCED_FIXES = 2  # after a failing check the next call is a Write, this many times in a run
MAX_IDLE_TURNS = 3  # turns in a row without a complete call end a guided run (as --max-turns would)
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


def tool_choice_param(raw: str | None, tools: Mapping[str, Tool]) -> dict[str, Any] | None:
    """--tool-choice: `auto`, `any`, or a tool's name (which must be one of this run's tools).  A forced
    choice asks for one call: small models otherwise repeat the forced call until max_tokens."""
    if raw is None:
        return None
    if raw == "auto":
        return {"type": "auto"}
    if raw == "any":
        return dict(ONE_CALL)
    if raw not in tools:
        known = ", ".join(tools) or "(none)"
        raise ConfigError(f"--tool-choice {raw!r} is not one of this run's tools: {known}; or use auto, any")
    return {"type": "tool", "name": raw, "disable_parallel_tool_use": True}


@dataclass(frozen=True)
class Guide:
    """A guided run's extras: the workspace it shows and checks, and the check command (None: none)."""

    context: ToolContext  # the tools' workspace, permissions and command environment
    check: CheckCommand | None
    check_timeout_s: float = 60.0

    @property
    def root(self) -> Path:
        return self.context.workspace.root


async def run_loop(
    request: AgentRun,
    tools: Mapping[str, Tool],
    hooks: LoopHooks,
    *,
    max_turns: int = 20,
    tool_choice: Mapping[str, Any] | None = None,
    guide: Guide | None = None,
) -> LoopResult:
    """Run the agent until it is done.  `guide` makes the run guided (agents/workflow.py).  `tool_choice`
    applies to the first turn only (a forced tool on every turn would never end a free run).  Raises
    AgentError on an API failure or the timeout."""
    system = prompt_for(request.system, with_tools=bool(tools))
    first = opening(request.task, guide.root) if guide is not None and tools else None
    if first is not None:
        tools = {name: tools[name] for name in guided_tools(tuple(tools), first)}
        definitions = (*tool_definitions(tools), FINISH_TOOL)
        request = replace(request, system=system + GUIDED_NOTE, tools=definitions)
    elif tools:
        request = replace(request, system=system + FREE_NOTE, tools=tuple(tool_definitions(tools)))
    else:
        request = replace(request, system=system)
    run: _Run | None = None
    guided_run: _Guided | None = None
    try:
        async with asyncio.timeout(request.timeout), session() as http:
            run = _Run(http, request, tools, hooks)
            if guide is not None and first is not None:
                guided_run = _Guided(run, guide, first)
                return await guided_run.go(max_turns)
            return await run.go(max_turns, tool_choice)
    except TimeoutError:
        message = f"the agent run timed out after {request.timeout:g} s"
        if run is None:
            raise AgentError(message) from None
        partial = guided_run.partial(TIMED_OUT) if guided_run else run.result(None, None, 0, TIMED_OUT)
        raise RunTimedOut(message, partial) from None


class RunTimedOut(AgentError):
    """The run's --timeout fired; `partial` is what it had done (the CLI's --json still reports it)."""

    def __init__(self, message: str, partial: LoopResult) -> None:
        super().__init__(message)
        self.partial = partial


class _Run:
    def __init__(self, http: aiohttp.ClientSession, request: AgentRun, tools: Mapping[str, Tool],
                 hooks: LoopHooks) -> None:
        self.http, self.request, self.tools, self.hooks = http, request, tools, hooks
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": request.task}]
        self.calls: list[ToolRun] = []
        self.retries: list[TurnRetry] = []
        self.usage = Usage()
        self.started = time.monotonic()
        self.first_token_s: float | None = None

    async def go(self, max_turns: int, tool_choice: Mapping[str, Any] | None) -> LoopResult:
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


class _Guided:
    """A guided run (agents/workflow.py): one call a turn, Finish to end, the tests run by the loop."""

    def __init__(self, run: _Run, guide: Guide, first: Opening) -> None:
        self.run, self.guide = run, guide
        run.messages = [{"role": "user", "content": first.text}]
        self.seen: set[str] = set()  # the calls made since the last change
        self.check = guide.check
        self.empty = first.empty
        self.first = first
        self.missing_refused = False  # a Finish with files the task asked for still missing was answered
        self.verifications: list[Verification] = []
        self.changed: list[str] = []
        self.checked_since_change = False
        self.turn_changed = False
        self.finish_refusals = 0
        self.premature_refused = False  # a Finish before any tool call was answered
        self.idle_turns = 0  # turns in a row without a complete call
        self.forced_fixes = 0  # Writes forced after a failing check
        self.next_choice: dict[str, Any] | None = None  # the next turn's tool_choice, when the loop forces one
        self.turns = 0

    async def go(self, max_turns: int) -> LoopResult:
        last: AgentResult | None = None
        for turn in range(1, max_turns + 1):
            self.turns = turn
            choice, self.next_choice = self.next_choice or ONE_CALL, None
            last = await self.run.call_model(choice)
            uses = last.tool_uses
            if not uses:
                self.idle_turns += 1
                if self.idle_turns >= MAX_IDLE_TURNS:  # e.g. a max_tokens too small for any call
                    return self._end(last, turn, OUT_OF_TURNS, last.text, MAX_TURNS_REACHED)
                self._nudge(last)
                continue
            self.idle_turns = 0
            finish = next((u for u in uses if u.name == FINISH), None)
            self.turn_changed = False
            results = [await self._run(use) for use in uses if use.name != FINISH]
            if finish is not None:
                ended = await self._finish(finish, last, turn, results)
                if ended is not None:
                    return ended
                continue
            if self.turn_changed and self.check is None:
                self.check = find_check(self.guide.root, None)  # the agent may just have written tests
            if self.turn_changed and self.check is not None:
                verification = await self._verify()
                if verification.passed:
                    return self._end(last, turn, VERIFIED, self._verified_text(verification))
                results.append({"type": "text", "text": feedback(verification)})
                if not verification.refused and self.forced_fixes < MAX_FORCED_FIXES and "Write" in self.run.tools:
                    # Measured: after one Write with the failure in view, the 1.5B called Finish instead of
                    # fixing the code (4 of 4 failures of the first trials): the next call is a Write.
                    self.forced_fixes += 1
                    self.next_choice = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
            self.run.messages.append({"role": "user", "content": results})
        return self._end(last, max_turns, OUT_OF_TURNS, last.text if last else "", MAX_TURNS_REACHED)

    async def _run(self, use: ToolUse) -> dict[str, Any]:
        key = json.dumps([use.name, use.input], sort_keys=True)
        if key in self.seen and use.name not in EDIT_TOOLS:
            return self.run.refuse(use, repeat_note(use.name))
        self.seen.add(key)
        path = use.input.get("file_path") if use.name in EDIT_TOOLS else None
        before = self._read(path) if isinstance(path, str) else None
        result = await self.run.run_tool(use)
        after = self._read(path) if isinstance(path, str) else None
        if isinstance(path, str) and not result["is_error"] and after != before:
            self.checked_since_change, self.turn_changed = False, True
            self.seen = {key}
            shown = self._shown(path)
            if shown not in self.changed:
                self.changed.append(shown)
            fix = fix_imports(shown, after, self.guide.root)
            if fix.source is not None and self._write(path, fix.source):
                after = fix.source
                self.run.hooks.note(fix.note.strip().split(" at the top")[0] + f" to {shown}")
            note = lost_names(shown, before, after) + fix.note
            if note:
                result = tool_result(result["tool_use_id"], result["content"] + note)
        return result

    async def _finish(self, finish: ToolUse, last: AgentResult, turn: int,
                      results: list[dict[str, Any]]) -> LoopResult | None:
        summary = str(finish.input.get("summary", "")).strip() or last.text
        if not self.run.calls and not self.premature_refused:
            # Measured: asked to create two files and run the tests, the 1.5B called Finish at once and
            # said it had.  A Finish before any action is answered once; a second one is accepted (a
            # question the shown files answer needs no tool).
            self.premature_refused = True
            note = ("Not finished: you have not done anything yet. Do the task with the tools first (Write "
                    "creates or replaces a file, Read shows one, Bash runs a command), then call Finish.")
            if self.empty and "Write" in self.run.tools:
                # In an empty folder the task can only be to create files (measured: the 1.5B answered
                # the refusal with a second Finish that quoted it).
                self.next_choice = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
            results.append(tool_result(finish.id, note, is_error=True))
            self.run.messages.append({"role": "user", "content": results})
            return None
        missing = still_missing(self.first, self.guide.root)
        if missing and not self.missing_refused and "Write" in self.run.tools:
            # Measured (make run's task: create calc.py and test_calc.py, run the tests): the 1.5B wrote
            # calc.py and called Finish saying both existed and the tests passed.  Answered once.
            self.missing_refused = True
            self.next_choice = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
            results.append(tool_result(finish.id, missing_note(missing), is_error=True))
            self.run.messages.append({"role": "user", "content": results})
            return None
        if self.check is None:
            return self._end(last, turn, FINISHED, summary)
        verification = self.verifications[-1] if self.checked_since_change else await self._verify()
        if verification.passed:
            return self._end(last, turn, VERIFIED, summary)
        if verification.refused or self.finish_refusals >= MAX_FINISH_REFUSALS:
            return self._end(last, turn, TESTS_FAILING if not verification.refused else FINISHED, summary)
        self.finish_refusals += 1
        note = "Not finished: " + feedback(verification)
        if not self.changed and "Write" in self.run.tools:
            # Measured: the 1.5B read the tests, then called Finish twice without writing a line.  A
            # Finish over failing tests with nothing changed is answered by forcing the next call to be
            # a Write (whole-file writes are what a small model does best).
            note += "\nYou have not changed any file yet: write the complete new content of the file now."
            self.next_choice = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
        results.append(tool_result(finish.id, note, is_error=True))
        self.run.messages.append({"role": "user", "content": results})
        return None

    async def _verify(self) -> Verification:
        assert self.check is not None
        verification = await run_check(self.check, self.guide.context, self.guide.check_timeout_s)
        self.verifications.append(verification)
        self.checked_since_change = True
        self.run.hooks.verified(verification)
        return verification

    def _nudge(self, last: AgentResult) -> None:
        """A turn with no call (cut at max_tokens, or text where the grammar was refused): say so in the
        history, which also changes the prompt, so a greedy model does not write the same reply again."""
        why = "was cut off at the length limit" if last.stop_reason == "max_tokens" else "called no tool"
        note = {"type": "text", "text": f"Your last reply {why}. Reply with exactly one tool call: "
                                        f"a short one, or {FINISH} if the task is done."}
        if self.run.messages[-1]["role"] == "user":
            content = self.run.messages[-1]["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            self.run.messages[-1] = {"role": "user", "content": [*blocks, note]}
        else:
            self.run.messages.append({"role": "user", "content": [note]})

    def _end(self, last: AgentResult | None, turn: int, outcome: str, text: str,
             stop_reason: str | None = None) -> LoopResult:
        reason = stop_reason or (last.stop_reason if last else None)
        return self.run.result(last, reason, turn, outcome, text=text, verifications=tuple(self.verifications),
                               files_changed=tuple(self.changed))

    def _verified_text(self, verification: Verification) -> str:
        changed = ", ".join(self.changed) or "nothing"
        return f"Changed {changed}; the tests pass ({verification.summary})."

    def partial(self, outcome: str) -> LoopResult:
        return self.run.result(None, None, self.turns, outcome, verifications=tuple(self.verifications),
                               files_changed=tuple(self.changed))

    def _read(self, path: str) -> str | None:
        try:
            target = self.guide.root / path if not Path(path).is_absolute() else Path(path)
            return target.read_text(errors="replace") if target.is_file() else None
        except OSError:
            return None

    def _write(self, path: str, text: str) -> bool:
        try:
            write_atomic(self.guide.context.workspace.resolve(path), text)
        except (OSError, ToolError):
            return False
        return True

    def _shown(self, path: str) -> str:
        target = Path(path)
        if target.is_absolute() and target.is_relative_to(self.guide.root):
            return target.relative_to(self.guide.root).as_posix()
        return path
