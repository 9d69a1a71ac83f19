"""Who may change things: permission modes like Claude Code's.

| mode                | reads | Write, Edit | Bash  |
|---------------------|-------|-------------|-------|
| `default`           | yes   | ask         | ask   |
| `acceptEdits`       | yes   | yes         | ask   |
| `plan`              | yes   | no          | no    |
| `bypassPermissions` | yes   | yes         | yes   |

"ask" asks on a terminal (y / n / always: "always" grants that tool for the rest of the run) and refuses
without one, saying which flag grants it.  `allow_tools` grants tools up front, except in `plan`
mode, which allows no changes whatever else is granted (a plan run must be safe to start anywhere).

The question is read from an injectable stream and "is there a terminal" is `isatty()` on that stream,
so tests drive it through a pty.  It blocks the event loop on purpose: nothing else may run while the
user decides, and a blocked worker thread could not be interrupted by Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal, TextIO, get_args

from ...errors import ConfigError

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
PERMISSION_MODES: tuple[str, ...] = get_args(PermissionMode)
ToolKind = Literal["read", "edit", "execute"]

_YES = {"y", "yes"}
_NO = {"n", "no", ""}
_ALWAYS = {"a", "always"}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # why not: the text the model (and the user) sees


@dataclass
class Permissions:
    mode: PermissionMode = "default"
    allow_tools: frozenset[str] = frozenset()
    input: TextIO | None = None  # None: sys.stdin at the time of asking
    output: TextIO | None = None  # None: sys.stderr
    granted: set[str] = field(default_factory=set)  # "always" answers, for this run
    # Held while the question is on screen: the CLI pauses its tool spinner, which would draw over it.
    pause: Callable[[], AbstractContextManager[object]] = nullcontext

    def __post_init__(self) -> None:
        if self.mode not in PERMISSION_MODES:
            raise ConfigError(
                f"unknown permission mode {self.mode!r}; choose one of: {', '.join(PERMISSION_MODES)}"
            )
        self.allow_tools = frozenset(self.allow_tools)

    def check(self, tool: str, kind: ToolKind, action: str) -> Decision:
        """May `tool` do `action` (one line, e.g. "Write hello.py")?  Asks the user when the mode says so."""
        if kind == "read" or self.mode == "bypassPermissions":
            return Decision(True)
        if self.mode == "plan":
            return Decision(
                False,
                f"{tool} is not allowed in plan mode: --permission-mode plan allows no changes "
                "(read-only tools only)",
            )
        if tool in self.allow_tools or tool in self.granted:
            return Decision(True)
        if kind == "edit" and self.mode == "acceptEdits":
            return Decision(True)
        return self._ask(tool, kind, action)

    def _ask(self, tool: str, kind: ToolKind, action: str) -> Decision:
        stream = self.input if self.input is not None else sys.stdin
        if stream is None or stream.closed or not stream.isatty():
            return Decision(False, needs_permission_message(tool, kind))
        with self.pause():
            return self._question(tool, action, stream)

    def _question(self, tool: str, action: str, stream: TextIO) -> Decision:
        out = self.output if self.output is not None else sys.stderr
        for _ in range(3):
            out.write(f"Allow {action}? [y]es / [n]o / [a]lways allow {tool} for this run: ")
            out.flush()
            line = stream.readline()
            if not line:  # end of input: nobody is there to say yes
                break
            answer = line.strip().lower()
            if answer in _YES:
                return Decision(True)
            if answer in _ALWAYS:
                self.granted.add(tool)
                return Decision(True)
            if answer in _NO:
                break
        return Decision(
            False,
            f"the user refused permission for {action}; do not retry it, ask the user or choose another way",
        )


def needs_permission_message(tool: str, kind: ToolKind) -> str:
    mode = "acceptEdits" if kind == "edit" else "bypassPermissions"
    return f"{tool} needs permission: rerun with --permission-mode {mode} or --allow-tools {tool}"
