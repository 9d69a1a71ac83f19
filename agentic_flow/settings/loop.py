"""The agent loop's settings (`LoopSettings`): the workspace, the permissions and the turn limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .core import Origin, Resolved, environ, parse_int, pick

DEFAULT_MAX_TURNS = 20
WORKFLOWS = ("auto", "guided", "free")
AUTO_WORKFLOW: Resolved[str] = Resolved("auto", "default", Origin.DEFAULT)
NO_CHECK: Resolved[str | None] = Resolved(None, "default", Origin.DEFAULT)


@dataclass(frozen=True)
class LoopSettings:
    """How an agent with tools acts: where, with which permissions, for how many turns."""

    workspace: Resolved[Path]
    permission_mode: Resolved[str]
    allow_tools: Resolved[tuple[str, ...]]
    max_turns: Resolved[int]
    tools: tuple[str, ...] | None = None  # --tools: this run's tools (None: the agent's)
    tool_choice: str | None = None  # --tool-choice for the first turn: auto, any, or a tool's name
    # --workflow: guided (one call a turn, Finish, the loop runs the tests), free, or auto (guided on
    # the local model); agents/workflow.py
    workflow: Resolved[str] = AUTO_WORKFLOW
    verify: Resolved[str | None] = NO_CHECK  # --verify CMD: the check

    def explain(self) -> list[tuple[str, str, str]]:
        return [
            ("workspace", str(self.workspace.value), self.workspace.source),
            ("permission mode", self.permission_mode.value, self.permission_mode.source),
            ("allowed tools", ",".join(self.allow_tools.value) or "(none)", self.allow_tools.source),
            ("max turns", str(self.max_turns.value), self.max_turns.source),
            ("workflow", self.workflow.value, self.workflow.source),
            ("verify", self.verify.value or "(found from the workspace's tests)", self.verify.source),
        ]


def split_names(raw: str) -> tuple[str, ...]:
    """`Bash,Write` or `Bash Write` as names, in order, without blanks."""
    return tuple(name for name in raw.replace(",", " ").split() if name)


def loop_settings(
    *,
    workspace: str | None = None,
    permission_mode: str | None = None,
    allow_tools: str | None = None,
    tools: str | None = None,
    max_turns: int | None = None,
    tool_choice: str | None = None,
    workflow: str | None = None,
    verify: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoopSettings:
    """--workspace (default: the current folder), --permission-mode, --allow-tools and --max-turns, each
    after its AGENTIC_FLOW_* variable; --tools and --tool-choice are per run and have none."""
    from ..agents.tools.permissions import PERMISSION_MODES  # here: the tools package imports this module

    env = environ() if env is None else env
    folder = pick(workspace, "--workspace", env, "AGENTIC_FLOW_WORKSPACE", "")
    root = Path(folder.value).expanduser() if folder.value else (cwd or Path.cwd())
    mode = pick(permission_mode, "--permission-mode", env, "AGENTIC_FLOW_PERMISSION_MODE", "default")
    if mode.value not in PERMISSION_MODES:
        raise ConfigError(f"unknown permission mode {mode.value!r} ({mode.source}); "
                          f"choose one of: {', '.join(PERMISSION_MODES)}")
    allowed = pick(allow_tools, "--allow-tools", env, "AGENTIC_FLOW_ALLOW_TOOLS", "")
    turns = pick(max_turns, "--max-turns", env, "AGENTIC_FLOW_MAX_TURNS", DEFAULT_MAX_TURNS)
    turn_count = parse_int(turns.value, f"max turns ({turns.source})")
    if turn_count < 1:
        raise ConfigError(f"max turns ({turns.source}) must be at least 1, got {turn_count}")
    flow = pick(workflow, "--workflow", env, "AGENTIC_FLOW_WORKFLOW", "auto")
    if flow.value not in WORKFLOWS:
        raise ConfigError(f"unknown workflow {flow.value!r} ({flow.source}); choose one of: {', '.join(WORKFLOWS)}")
    check = pick(verify, "--verify", env, "AGENTIC_FLOW_VERIFY", "")
    check_command = str(check.value).strip() or None
    if check.value and not check_command:
        raise ConfigError(f"the check command ({check.source}) is empty")
    return LoopSettings(
        workspace=Resolved(root, folder.source if folder.value else "default (the current folder)",
                           folder.origin),
        permission_mode=mode,
        allow_tools=Resolved(split_names(str(allowed.value)), allowed.source, allowed.origin),
        max_turns=Resolved(turn_count, turns.source, turns.origin),
        tools=split_names(tools) if tools is not None else None,
        tool_choice=tool_choice.strip() if tool_choice and tool_choice.strip() else None,
        workflow=Resolved(str(flow.value), flow.source, flow.origin),
        verify=Resolved(check_command, check.source, check.origin),
    )
