"""What every tool shares: its result type, its context, and `run()`, which never raises.

`run(tool_input)` validates the input against the tool's schema, checks the path and the permission,
then does the work.  Every failure (bad input, a path outside the workspace, a refused permission, a
missing file, an OSError) comes back as a ToolResult with `is_error=True` and a message the model can act
on.  Only cancellation (asyncio.CancelledError, KeyboardInterrupt) leaves `run()`, after the tool has
cleaned up after itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .result import ToolError, ToolResult
from .schema import validate

__all__ = ["Tool", "ToolContext", "ToolError", "ToolResult", "failure", "shorten"]

if TYPE_CHECKING:
    from .permissions import Permissions, ToolKind
    from .workspace import Workspace

log = logging.getLogger(__name__)

SUMMARY_WIDTH = 100


@dataclass(frozen=True)
class ToolContext:
    workspace: Workspace
    permissions: Permissions
    env: Mapping[str, str]  # the environment a command starts with (already filtered)
    numbered_reads: bool = True  # Read numbers its lines like `cat -n` (guided runs: a fenced block)


class Tool:
    name: ClassVar[str]
    description: ClassVar[str]
    input_schema: ClassVar[dict[str, Any]]
    kind: ClassVar[ToolKind] = "read"
    # Walks of a large tree run in a worker thread so the event loop (and Ctrl-C) stays responsive.
    blocking: ClassVar[bool] = False
    target_field: ClassVar[str] = "file_path"  # the field that names what the call acts on

    def __init__(self, context: ToolContext) -> None:
        self.context = context
        self.workspace = context.workspace

    def definition(self) -> dict[str, Any]:
        """The tool in the Messages API's `tools` request format."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    def describe(self, tool_input: Mapping[str, Any]) -> str:
        """One line naming the call, for the permission question and a spinner: "Write hello.py"."""
        target = tool_input.get(self.target_field) if isinstance(tool_input, Mapping) else None
        text = f"{self.name} {target}" if isinstance(target, str) and target else self.name
        return shorten(text)

    async def run(self, tool_input: object) -> ToolResult:
        action = self.describe(tool_input) if isinstance(tool_input, Mapping) else self.name
        try:
            args = validate(self.input_schema, tool_input)
            self.preflight(args)
            decision = self.context.permissions.check(self.name, self.kind, action)
            if not decision.allowed:
                return failure(action, decision.reason)
            if self.blocking:
                return await asyncio.to_thread(self.execute, args)
            return await self.execute_async(args)
        except ToolError as error:
            return failure(action, str(error))
        except OSError as error:
            return failure(action, os_error_message(error))
        except Exception as error:  # a bug in a tool must not end the agent's run; the model sees it
            log.exception("tool %s failed", self.name)
            return failure(action, f"internal error in {self.name}: {type(error).__name__}: {error}")

    def preflight(self, args: dict[str, Any]) -> None:
        """Checks that need no permission (paths), so nobody is asked about a call that cannot work."""
        field = self.target_field
        if field in self.input_schema["properties"] and isinstance(args.get(field), str):
            self.workspace.resolve(args[field], field)

    def execute(self, args: dict[str, Any]) -> ToolResult:
        raise NotImplementedError

    async def execute_async(self, args: dict[str, Any]) -> ToolResult:
        return self.execute(args)


def failure(action: str, message: str) -> ToolResult:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    return ToolResult(content=message, is_error=True, summary=shorten(f"{action}: error: {first_line}"))


def shorten(text: str, width: int = SUMMARY_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def os_error_message(error: OSError) -> str:
    # The strerror without Python's "[Errno 2]" prefix; the path is already in the action line.
    reason = error.strerror or str(error)
    where = f": {error.filename}" if error.filename else ""
    return f"{reason}{where}"
