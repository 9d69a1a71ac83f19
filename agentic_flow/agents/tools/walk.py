"""Walking a folder for Glob and Grep, in pure Python: glob patterns, skipped folders, links kept inside.

Linked folders are not descended (a link loop cannot hang a walk), and a linked file is yielded only
when its target lies inside the workspace, so a search never reads outside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .result import ToolError

# Version-control data and caches: never what a model searches for, and often most of the files.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)
_MAGIC = re.compile(r"[*?\[{]")


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over '/'-separated relative paths: `*` and `?` stay within a folder, `**/` spans
    any number of folders (none included), `[abc]` is a class and `{a,b}` alternatives."""
    return re.compile(_translate(pattern), re.DOTALL)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            piece, i = _translate_one(pattern, i)
            out.append(piece)
    return "".join(out)


def _translate_one(pattern: str, i: int) -> tuple[str, int]:
    char = pattern[i]
    if char == "*":
        return "[^/]*", i + 1
    if char == "?":
        return "[^/]", i + 1
    end = pattern.find("]" if char == "[" else "}", i + 1)
    if char == "[" and end > i + 1:
        body = pattern[i + 1 : end].replace("\\", "\\\\")
        return "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
    if char == "{" and end > i:
        alternatives = pattern[i + 1 : end].split(",")
        return "(?:" + "|".join(_translate(alternative) for alternative in alternatives) + ")", end + 1
    return re.escape(char), i + 1


def split_glob(pattern: str) -> tuple[str, str]:
    """("src/pkg", "**/*.py") from "src/pkg/**/*.py": the literal folders to start from, and the rest."""
    if os.path.isabs(pattern):
        raise ToolError("pattern must be relative (like '**/*.py'); give the folder to search in `path`")
    parts = pattern.replace("\\", "/").split("/")
    if ".." in parts:
        raise ToolError("pattern must not contain '..'; give the folder to search in `path`")
    literal: list[str] = []
    while len(parts) > 1 and not _MAGIC.search(parts[0]):
        literal.append(parts.pop(0))
    return "/".join(part for part in literal if part not in ("", ".")), "/".join(parts)


def walk_files(base: Path, root: Path, max_depth: int | None = None) -> Iterator[tuple[Path, str]]:
    """(path, path relative to base with '/') of every file under base, sorted, skipping SKIPPED_DIRS."""
    for folder, dirs, files in os.walk(base, followlinks=False):
        depth = 0 if folder == str(base) else os.path.relpath(folder, base).count(os.sep) + 1
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED_DIRS)
        if max_depth is not None and depth + 1 >= max_depth:
            dirs[:] = []
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_symlink() and not _inside(path, root):
                continue
            yield path, path.relative_to(base).as_posix()


def _inside(path: Path, root: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real.is_file() and (real == root or real.is_relative_to(root))


def is_binary_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return b"\0" in handle.read(8192)
    except OSError:
        return True  # unreadable: skip it like a binary file
