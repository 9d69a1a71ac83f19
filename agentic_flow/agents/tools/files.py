"""Read, Write and Edit: Claude Code's file tools, with its input shapes.

Read numbers lines like `cat -n` and caps what it returns; Write replaces a file atomically (a temporary
file in the same folder, then rename), keeping the old file's mode; Edit replaces an exact string that
must occur once (or everywhere, with `replace_all`) and returns a unified diff for display.
"""

from __future__ import annotations

import difflib
import os
import secrets
import stat
from pathlib import Path
from typing import Any, ClassVar

from ...tooluse.codeblocks import fence_for
from .base import Tool, ToolError, ToolResult, shorten

READ_DEFAULT_LINES = 2000
READ_MAX_LINE_CHARS = 2000  # a longer line (minified code, data) is cut, with a note
READ_MAX_CHARS = 100_000  # what one Read returns at most; the model pages with offset
EDIT_MAX_BYTES = 10_000_000
BINARY_PROBE_BYTES = 8192


def is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(BINARY_PROBE_BYTES)


def existing_file(path: Path, shown: str) -> None:
    if not path.exists():
        raise ToolError(f"{shown} does not exist")
    if path.is_dir():
        raise ToolError(f"{shown} is a folder, not a file; use LS to list it")
    if is_binary(path):
        raise ToolError(f"{shown} is a binary file; these tools read and change text files only")


def read_text_exact(path: Path, shown: str) -> str:
    """A file's text exactly as stored (line endings kept), for changing it."""
    existing_file(path, shown)
    if path.stat().st_size > EDIT_MAX_BYTES:
        raise ToolError(f"{shown} is larger than {EDIT_MAX_BYTES:,} bytes; edit it with a command instead")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise ToolError(f"{shown} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it; a crash leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: never reuse (or follow) something already at the temporary name.  Mode 0o666 minus the umask,
    # like any new file, where mkstemp would give 0o600.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if old_mode is not None:
            os.chmod(temporary, old_mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def unified_diff(before: str, after: str, shown: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{shown}",
        tofile=f"b/{shown}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def diff_counts(diff: str) -> tuple[int, int]:
    lines = diff.splitlines()
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return added, removed


def count_lines(text: str) -> int:
    return len(text.splitlines())


class Read(Tool):
    name = "Read"
    description = (
        "Reads a text file in the workspace. Lines are numbered like `cat -n` (number, tab, text). By "
        f"default up to {READ_DEFAULT_LINES} lines from the start; for a long file pass offset (the first "
        "line to read, counting from 1) and limit (how many lines). Lines longer than "
        f"{READ_MAX_LINE_CHARS} characters are cut. file_path is relative to the workspace, or absolute "
        "inside it."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The file to read"},
            "offset": {
                "type": "integer",
                "minimum": 0,
                "description": "The line number to start from (1 = first)",
            },
            "limit": {"type": "integer", "minimum": 1, "description": "The number of lines to read"},
        },
        "required": ["file_path"],
        "additionalProperties": False,
    }

    def execute(self, args: dict[str, Any]) -> ToolResult:
        path = self.workspace.resolve(args["file_path"])
        shown = self.workspace.relative(path)
        existing_file(path, shown)
        first = max(args.get("offset", 1), 1)
        limit = args.get("limit", READ_DEFAULT_LINES)
        numbered, total, last = self._numbered_lines(path, first, limit)
        if total == 0:
            return ToolResult("(the file is empty)", summary=f"Read {shown} (empty)")
        if first > total:
            raise ToolError(f"{shown} has {total} lines; offset {first} is past the end")
        text = "\n".join(numbered)
        if not self.context.numbered_reads:
            # A small model that reads numbered lines copies the numbers into the file it writes: it
            # gets the text in a fenced block, the way it writes code itself.
            plain = "\n".join(line.split("\t", 1)[1] for line in numbered)
            fence = fence_for(plain)
            text = f"{shown}\n{fence}\n{plain}\n{fence}"
        if last < total:
            text += f"\n\n(lines {first}-{last} of {total}; read more with offset={last + 1})"
        return ToolResult(
            text,
            summary=shorten(
                f"Read {shown} ({last - first + 1} of {total} lines)"
                if last - first + 1 < total
                else f"Read {shown} ({total} lines)"
            ),
        )

    @staticmethod
    def _numbered_lines(path: Path, first: int, limit: int) -> tuple[list[str], int, int]:
        """The numbered lines from `first`, within the caps; the file's line count; the last line shown."""
        numbered: list[str] = []
        size, total, last = 0, 0, first - 1
        with path.open(encoding="utf-8", errors="replace", newline=None) as handle:
            for total, line in enumerate(handle, start=1):
                if total < first or len(numbered) >= limit or size >= READ_MAX_CHARS:
                    continue  # keep counting: the model is told how long the file is
                line = line.rstrip("\n")
                if len(line) > READ_MAX_LINE_CHARS:
                    line = line[:READ_MAX_LINE_CHARS] + f" ... (line cut: {len(line):,} characters)"
                numbered.append(f"{total:>6}\t{line}")
                size += len(numbered[-1]) + 1
                last = total
        return numbered, total, last


class Write(Tool):
    name = "Write"
    kind = "edit"
    description = (
        "Writes a file in the workspace, replacing it if it exists and creating missing folders. Pass the "
        "whole new content. To change part of an existing file, prefer Edit. file_path is relative to the "
        "workspace, or absolute inside it."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The file to write"},
            "content": {"type": "string", "description": "The content to write to the file"},
        },
        "required": ["file_path", "content"],
        "additionalProperties": False,
    }

    def execute(self, args: dict[str, Any]) -> ToolResult:
        path = self.workspace.resolve(args["file_path"])
        shown = self.workspace.relative(path)
        if path.is_dir():
            raise ToolError(f"{shown} is a folder; give a file name")
        before = read_text_exact(path, shown) if path.exists() else None
        content: str = args["content"]
        write_atomic(path, content)
        lines = count_lines(content)
        if before is None:
            return ToolResult(
                f"Created {shown} ({lines} lines)", summary=shorten(f"Write {shown} ({lines} lines, new)")
            )
        if before == content:
            return ToolResult(
                f"Wrote {shown}: it already held exactly this content, so nothing changed",
                summary=shorten(f"Write {shown} ({lines} lines, unchanged)"),
            )
        diff = unified_diff(before, content, shown)
        added, removed = diff_counts(diff)
        return ToolResult(
            f"Wrote {shown} ({lines} lines, replacing the old content)",
            summary=shorten(f"Write {shown} ({lines} lines, +{added} -{removed})"),
            diff=diff or None,
        )


class Edit(Tool):
    name = "Edit"
    kind = "edit"
    description = (
        "Replaces exact text in a file. old_string must match the file exactly (whitespace and indentation "
        "included) and occur exactly once: include enough surrounding lines to make it unique, or set "
        "replace_all to replace every occurrence. An empty old_string creates a new file with new_string. "
        "file_path is relative to the workspace, or absolute inside it."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The file to change"},
            "old_string": {"type": "string", "description": "The exact text to replace"},
            "new_string": {"type": "string", "description": "The text to put in its place"},
            "replace_all": {
                "type": "boolean",
                "default": False,
                "description": "Replace every occurrence of old_string (default false)",
            },
        },
        "required": ["file_path", "old_string", "new_string"],
        "additionalProperties": False,
    }

    def execute(self, args: dict[str, Any]) -> ToolResult:
        path = self.workspace.resolve(args["file_path"])
        shown = self.workspace.relative(path)
        old, new = args["old_string"], args["new_string"]
        if old == new:
            raise ToolError("old_string and new_string are the same; there is nothing to change")
        before = read_text_exact(path, shown) if path.exists() or old else ""
        if old == "" and before:
            raise ToolError(
                f"old_string is empty but {shown} is not; give the text to replace (or use Write)"
            )
        after, count = self._replace(before, old, new, args["replace_all"], shown)
        write_atomic(path, after)
        diff = unified_diff(before, after, shown)
        added, removed = diff_counts(diff)
        return ToolResult(
            f"Edited {shown}: replaced {count} occurrence{'s' if count != 1 else ''}.\n{snippet(after, new)}",
            summary=shorten(f"Edit {shown} (+{added} -{removed})"),
            diff=diff,
        )

    @staticmethod
    def _replace(text: str, old: str, new: str, replace_all: bool, shown: str) -> tuple[str, int]:
        if old == "":
            return new, 1
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\r\n" not in old:
            # A Windows file: the model writes "\n"; match its lines and keep the file's line endings.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if count == 0:
            raise ToolError(
                f"old_string was not found in {shown}; it must match the file exactly, whitespace "
                "and indentation included (Read the file to see its current text)"
            )
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string occurs {count} times in {shown}; include more surrounding lines to make "
                "it unique, or set replace_all to true to replace every occurrence"
            )
        return text.replace(old, new) if replace_all else text.replace(old, new, 1), count


def snippet(text: str, new: str, context: int = 3) -> str:
    """The changed region, numbered like Read, so the model sees the result without reading again."""
    lines = text.splitlines()
    start = text.find(new) if new else -1
    if start < 0 or not lines:
        return ""
    first = text.count("\n", 0, start)
    last = first + new.count("\n")
    low, high = max(first - context, 0), min(last + context + 1, len(lines))
    return "\n".join(f"{number + 1:>6}\t{lines[number]}" for number in range(low, high))
