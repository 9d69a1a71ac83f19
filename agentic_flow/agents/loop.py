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
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import AgentError, ConfigError
from .client import AgentRun, session
from .guided import MAX_FORCED_FIXES, MAX_IDLE_TURNS, Guide, GuidedRun
from .run import (
    FINISHED,
    MAX_TURNS_REACHED,
    OUT_OF_TURNS,
    TESTS_FAILING,
    TIMED_OUT,
    TURN_RETRIES,
    VERIFIED,
    LoopHooks,
    LoopResult,
    Run,
    ToolRun,
    TurnRetry,
    tool_result,
)
from .tools import Tool, tool_definitions
from .workflow import FINISH_TOOL, FREE_NOTE, GUIDED_NOTE, ONE_CALL, guided_tools, opening, prompt_for

__all__ = [
    "FINISHED", "MAX_FORCED_FIXES", "MAX_IDLE_TURNS", "MAX_TURNS_REACHED", "OUT_OF_TURNS", "TESTS_FAILING",
    "TIMED_OUT", "TOOLS_NOTE", "TURN_RETRIES", "VERIFIED", "Guide", "LoopHooks", "LoopResult", "RunTimedOut",
    "ToolRun", "TurnRetry", "run_loop", "tool_choice_param", "tool_result",
]

TOOLS_NOTE = FREE_NOTE  # what a free run appends to the agent's prompt


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
    run: Run | None = None
    guided_run: GuidedRun | None = None
    try:
        async with asyncio.timeout(request.timeout), session() as http:
            run = Run(http, request, tools, hooks)
            if guide is not None and first is not None:
                guided_run = GuidedRun(run, guide, first)
                return await guided_run.go(max_turns)
            return await run.free(max_turns, tool_choice)
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
