"""Glob, Grep and LS: finding things in the workspace, in pure Python (no `find`, `grep` or `rg`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from .base import Tool, ToolError, ToolResult, shorten
from .walk import SKIPPED_DIRS, glob_regex, is_binary_file, split_glob, walk_files

GLOB_MAX_RESULTS = 100
GREP_DEFAULT_LIMIT = 250
GREP_MAX_CHARS = 30_000
GREP_MAX_LINE_CHARS = 500
GREP_MAX_FILE_BYTES = 20_000_000
LS_MAX_ENTRIES = 1000
SKIPPED_NOTE = "Skips " + ", ".join(sorted(SKIPPED_DIRS)) + "."
# ripgrep's --type names a model may use, as file globs.
FILE_TYPES = {
    "py": "*.{py,pyi}",
    "python": "*.{py,pyi}",
    "js": "*.{js,jsx,mjs,cjs}",
    "ts": "*.{ts,tsx}",
    "typescript": "*.{ts,tsx}",
    "rust": "*.rs",
    "c": "*.{c,h}",
    "cpp": "*.{cpp,cc,cxx,hpp,hh,h}",
    "markdown": "*.{md,markdown}",
    "md": "*.{md,markdown}",
    "ruby": "*.rb",
    "sh": "*.{sh,bash}",
}


class Glob(Tool):
    name = "Glob"
    target_field = "pattern"
    blocking = True
    description = (
        f"Finds files by name pattern, like '**/*.py' or 'src/**/test_*.{{js,ts}}'. `*` matches within one "
        "folder, `**/` any number of folders. Returns paths relative to the workspace, newest first, at "
        f"most {GLOB_MAX_RESULTS}. {SKIPPED_NOTE}"
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "The glob pattern to match files against"},
            "path": {"type": "string", "description": "The folder to search in (default: the workspace)"},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def preflight(self, args: dict[str, Any]) -> None:
        self.workspace.resolve(args.get("path", "."), "path")
        split_glob(args["pattern"])

    def execute(self, args: dict[str, Any]) -> ToolResult:
        prefix, rest = split_glob(args["pattern"])
        base = self.workspace.resolve(
            os.path.join(args.get("path", "."), prefix) if prefix else args.get("path", "."), "path"
        )
        if not base.is_dir():
            return ToolResult("No files found", summary=shorten(f"Glob {args['pattern']} (0 files)"))
        regex = glob_regex(rest)
        depth = None if "**" in rest else rest.count("/") + 1
        found = [
            path
            for path, relative in walk_files(base, self.workspace.root, depth)
            if regex.fullmatch(relative)
        ]
        found.sort(key=lambda path: (-_mtime(path), str(path)))
        shown = [self.workspace.relative(path) for path in found[:GLOB_MAX_RESULTS]]
        text = "\n".join(shown) if shown else "No files found"
        if len(found) > GLOB_MAX_RESULTS:
            text += f"\n(showing {GLOB_MAX_RESULTS} of {len(found)} files; use a narrower pattern or path)"
        return ToolResult(text, summary=shorten(f"Glob {args['pattern']} ({len(found)} files)"))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Grep(Tool):
    name = "Grep"
    target_field = "pattern"
    blocking = True
    description = (
        "Searches file contents with a regular expression (Python `re` syntax, close to ripgrep's). "
        "output_mode: 'files_with_matches' (default: the paths), 'content' (matching lines as "
        "path:line:text; -A/-B/-C add context lines) or 'count'. Filter files with glob ('*.py', "
        f"'**/*.{{ts,tsx}}') or type ('py', 'js', ...). Results stop at head_limit (default "
        f"{GREP_DEFAULT_LIMIT}). Binary files are skipped. {SKIPPED_NOTE}"
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "The regular expression to search for"},
            "path": {
                "type": "string",
                "description": "The file or folder to search (default: the workspace)",
            },
            "glob": {"type": "string", "description": "Only files matching this glob, e.g. '*.py'"},
            "type": {"type": "string", "description": "Only files of this type, e.g. 'py', 'js', 'rust'"},
            "output_mode": {
                "type": "string",
                "enum": ["content", "files_with_matches", "count"],
                "default": "files_with_matches",
            },
            "-i": {"type": "boolean", "default": False, "description": "Case-insensitive search"},
            "-n": {
                "type": "boolean",
                "default": True,
                "description": "Show line numbers (content mode; always on)",
            },
            "-A": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Lines of context after a match",
            },
            "-B": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Lines of context before a match",
            },
            "-C": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Lines of context around a match",
            },
            "multiline": {
                "type": "boolean",
                "default": False,
                "description": "Let . and patterns span lines",
            },
            "head_limit": {"type": "integer", "minimum": 1, "description": "At most this many results"},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def preflight(self, args: dict[str, Any]) -> None:
        self.workspace.resolve(args.get("path", "."), "path")

    def execute(self, args: dict[str, Any]) -> ToolResult:
        regex = _compile(args)
        limit = args.get("head_limit", GREP_DEFAULT_LIMIT)
        mode = args["output_mode"]
        results: list[str] = []
        files = 0
        for path, _ in self._files(args):
            lines = _search_file(path, regex, args, mode)
            if not lines:
                continue
            files += 1
            shown = self.workspace.relative(path)
            if mode == "content":
                results.extend(line if line == "--" else shown + line for line in lines)
            else:
                results.append(f"{shown}:{len(lines)}" if mode == "count" else shown)
            if len(results) > limit:
                break
        text, capped = _cap(results, limit)
        found = f"{len(results[:limit])}{'+' if capped else ''}"
        unit = f"lines in {files} files" if mode == "content" else "files"
        summary = shorten(f"Grep {args['pattern']} ({found} {unit})")
        return ToolResult(text or "No matches found", summary=summary)

    def _files(self, args: dict[str, Any]) -> Iterator[tuple[Path, str]]:
        base = self.workspace.resolve(args.get("path", "."), "path")
        if base.is_file():
            yield base, base.name
            return
        if not base.is_dir():
            raise ToolError(f"{args.get('path')} does not exist")
        patterns = [FILE_TYPES.get(args["type"], f"*.{args['type']}")] if "type" in args else []
        patterns += [args["glob"]] if "glob" in args else []
        for path, relative in walk_files(base, self.workspace.root):
            if all(_glob_matches(pattern, relative) for pattern in patterns):
                yield path, relative


def _glob_matches(pattern: str, relative: str) -> bool:
    # Like ripgrep: a glob without '/' matches the file name at any depth, one with '/' the relative path.
    subject = relative if "/" in pattern else relative.rsplit("/", 1)[-1]
    return bool(glob_regex(pattern).fullmatch(subject))


def _compile(args: dict[str, Any]) -> re.Pattern[str]:
    flags = (re.IGNORECASE if args["-i"] else 0) | (re.DOTALL | re.MULTILINE if args["multiline"] else 0)
    try:
        return re.compile(args["pattern"], flags)
    except re.error as error:
        raise ToolError(f"invalid regular expression {args['pattern']!r}: {error}") from None


def _search_file(path: Path, regex: re.Pattern[str], args: dict[str, Any], mode: str) -> list[str]:
    """The file's hits: one entry per matching line (":12:text", context lines "-13-text"), or [] for none."""
    try:
        if path.stat().st_size > GREP_MAX_FILE_BYTES or is_binary_file(path):
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    if args["multiline"]:
        hits = sorted({text.count("\n", 0, match.start()) for match in regex.finditer(text)})
    else:
        hits = [number for number, line in enumerate(lines) if regex.search(line)]
    if mode != "content":
        return [""] * len(hits)
    before, after = max(args["-B"], args["-C"]), max(args["-A"], args["-C"])
    return _with_context(lines, hits, before, after)


def _with_context(lines: list[str], hits: list[int], before: int, after: int) -> list[str]:
    wanted: dict[int, str] = {}
    for hit in hits:
        for number in range(max(hit - before, 0), min(hit + after + 1, len(lines))):
            wanted.setdefault(number, "-")
        wanted[hit] = ":"
    out: list[str] = []
    previous = None
    for number in sorted(wanted):
        if previous is not None and number > previous + 1:
            out.append("--")
        line = lines[number][:GREP_MAX_LINE_CHARS]
        out.append(f"{wanted[number]}{number + 1}{wanted[number]}{line}")
        previous = number
    return out


def _cap(results: list[str], limit: int) -> tuple[str, bool]:
    shown, size = [], 0
    for line in results[:limit]:
        if size + len(line) > GREP_MAX_CHARS:
            break
        shown.append(line)
        size += len(line) + 1
    capped = len(shown) < len(results)
    text = "\n".join(shown)
    if capped:
        text += (
            f"\n(results capped at {len(shown)}; there are more: narrow the pattern, path or glob, "
            "or raise head_limit)"
        )
    return text, capped


class LS(Tool):
    name = "LS"
    target_field = "path"
    description = "Lists a folder in the workspace: folders end with '/'. path defaults to the workspace."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The folder to list (default: the workspace)"},
            "ignore": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Glob patterns of names to leave out",
            },
        },
        "additionalProperties": False,
    }

    def execute(self, args: dict[str, Any]) -> ToolResult:
        folder = self.workspace.resolve(args.get("path", "."), "path")
        shown = self.workspace.relative(folder)
        if not folder.is_dir():
            raise ToolError(f"{shown} is not a folder" if folder.exists() else f"{shown} does not exist")
        ignore = [glob_regex(pattern) for pattern in args.get("ignore", [])]
        entries = sorted(
            (entry for entry in os.scandir(folder) if not any(r.fullmatch(entry.name) for r in ignore)),
            key=lambda entry: (not entry.is_dir(), entry.name),
        )
        names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
        text = "\n".join(names[:LS_MAX_ENTRIES]) or "(empty folder)"
        if len(names) > LS_MAX_ENTRIES:
            text += f"\n(showing {LS_MAX_ENTRIES} of {len(names)} entries)"
        return ToolResult(text, summary=shorten(f"LS {shown} ({len(names)} entries)"))
