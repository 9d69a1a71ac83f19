"""The guided workflow: how the loop makes a small model act, keep the names that exist, and check its work.

A 1.5B model left free answers in prose, invents files and repeats itself (measured on coding exercises:
16 of 16 stubs left unchanged).  A guided run takes those choices away from it:

- **act or finish**: every turn must call exactly one tool (tool_choice `any`); `Finish` is one of the
  tools, and the only way to end the run, so there is no turn of prose to drift into;
- **the files come first**: the files the task names are shown in the first message, whole, the way
  Aider shows them, so the model edits what is there instead of guessing (and the workspace's other
  files are listed by name);
- **names kept**: a Write that drops a top-level function or class the file had is reported back, since
  the tests import those names;
- **verify**: after a turn that changed a file the loop runs the workspace's tests (agents/verify.py)
  and sends the failure back; a passing check ends the run.  Finish while the tests fail is answered
  with the failure (twice at most; then the run ends as `tests_failing`), and when no file was changed
  yet, the next call is forced to be a Write; so is the call after a failing check (twice per run).

`free` is the loop as it was: the model decides, and a turn without tool calls ends the run.  The
default (`auto`) is the catalog entry's choice on the local model (agents/plan.py `guided`) and free on
the Anthropic API and upstream servers, whose models act well on their own.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..tooluse.codeblocks import LANGUAGES, fence_for
from .tools.walk import walk_files

FINISH = "Finish"
FINISH_TOOL: dict[str, Any] = {
    "name": FINISH,
    "description": "End the task. Call it when the work is done (say what you changed and whether the tests "
                   "pass), or to give the answer when the task is a question.",
    "input_schema": {
        "type": "object",
        "properties": {"summary": {"type": "string", "description": "What you did, or the answer"}},
        "required": ["summary"],
        "additionalProperties": False,
    },
}
ONE_CALL: dict[str, Any] = {"type": "any", "disable_parallel_tool_use": True}
SHOWN_FILES = 4  # files of the task shown in the first message at most
SHOWN_FILE_CHARS = 12_000
LISTED_FILES = 40
MAX_LISTED_SCAN = 500
EDIT_TOOLS = frozenset({"Write", "Edit"})
MAX_FINISH_REFUSALS = 2

GUIDED_NOTE = (
    "\n\nAct only through tool calls, one per reply. The files the task names are shown below it. Write "
    "replaces a whole file: keep the existing names. Finish ends the task, with a short summary or the "
    "answer. After each change I run the tests, if any, and show you the result."
)

FREE_NOTE = (
    "\n\nYou work inside a workspace folder and act through the tools you are given: read files with "
    "Read, create them with Write, change them with Edit, and run commands with Bash (when offered). "
    "Use relative paths. Make the change with a tool instead of only showing code. When the task is "
    "done, answer with one or two sentences saying what you did."
)


def prompt_for(prompt: str, *, with_tools: bool) -> str:
    """The agent's prompt for this run: a `## With tools` section is kept only when the run has tools, a
    `## Without tools` section only when it has none (each runs to the next `## ` heading or the end)."""
    drop = "## Without tools" if with_tools else "## With tools"
    keep = "## With tools" if with_tools else "## Without tools"
    lines: list[str] = []
    skipping = False
    for line in prompt.splitlines():
        if line.startswith("## "):
            skipping = line.strip() == drop
            if line.strip() == keep:
                continue  # the heading itself is for the file's reader
        if not skipping:
            lines.append(line)
    return "\n".join(lines).strip()


class Workflow(StrEnum):
    AUTO = "auto"
    GUIDED = "guided"
    FREE = "free"


SEARCH_TOOLS = frozenset({"Glob", "Grep", "LS"})


@dataclass(frozen=True)
class Opening:
    """The first user turn of a guided run: the task, then the workspace's files."""

    text: str
    shown: tuple[str, ...]  # the files shown whole
    listed_all: bool  # every file is named in it: searching for files tells the model nothing new
    empty: bool = False  # the workspace holds no file: the task can only be to create some
    to_create: tuple[str, ...] = ()  # files the task names that the folder does not hold
    asks_change: bool = False  # the task reads as a request to change files, not a question


# A file name in a task: a word with one of the code fences' extensions (calc.py, src/app.ts, notes.md).
_EXTENSIONS = "|".join(re.escape(ext) for ext in sorted(LANGUAGES, key=len, reverse=True))
_FILE_NAME = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+(?:" + _EXTENSIONS + r"))(?![\w/-])")


def named_files(task: str) -> list[str]:
    """The file names a task mentions, in order, each once."""
    found: list[str] = []
    for match in _FILE_NAME.finditer(task):
        name = match.group(1)
        if name not in found:
            found.append(name)
    return found


def opening(task: str, root: Path) -> Opening:
    files = _files(root)
    named = [f for f in files if _named_in(f, task)][:SHOWN_FILES]
    parts = [task.strip()]
    if files:
        listing = "\n".join(f"- {f}" for f in files[:LISTED_FILES])
        more = f"\n- ... and {len(files) - LISTED_FILES} more" if len(files) > LISTED_FILES else ""
        parts.append(f"The folder holds these files:\n{listing}{more}")
    else:
        parts.append("The folder is empty.")
    shown: list[str] = []
    for name in named:
        text = _text(root / name)
        if text is None:
            continue
        shown.append(name)
        fence = fence_for(text)
        parts.append(f"{name}\n{fence}{LANGUAGES.get(Path(name).suffix.lower(), '')}\n{text.rstrip()}\n{fence}")
    present = set(files)
    to_create = tuple(f for f in named_files(task) if f not in present and not (root / f).exists())
    return Opening("\n\n".join(parts), tuple(shown), len(files) <= LISTED_FILES, not files, to_create,
                   asks_for_change(task))


# A sentence (not a question) with one of these asks for a change to the files ("Add an option --limit N
# ...", "Find the bug in stats.py and fix it", "In README.md, change the version"); a task without one (a
# question, "Explain what fib.py computes", "List the Python files") may end with no change.
CHANGE_VERBS = frozenset({"add", "change", "convert", "create", "delete", "edit", "extend", "fix", "implement",
                          "modify", "move", "refactor", "remove", "rename", "replace", "rewrite", "update",
                          "write"})


def asks_for_change(task: str) -> bool:
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", task):
        if sentence.rstrip().endswith("?"):
            continue
        if any(word.lower() in CHANGE_VERBS for word in re.findall(r"[A-Za-z]+", sentence)):
            return True
    return False


def still_missing(first: Opening, root: Path) -> list[str]:
    """The files the task named that were not there at the start and are still not there."""
    return [f for f in first.to_create if not (root / f).exists()]


def missing_note(missing: list[str]) -> str:
    names = ", ".join(missing)
    return (f"Not finished: the task names {names}, which the folder does not hold yet. Create "
            f"{'it' if len(missing) == 1 else 'them'} with Write now (then I run the tests, if any).")


def guided_tools(names: tuple[str, ...], first: Opening) -> tuple[str, ...]:
    """The tools a guided turn is offered: without the file-search tools when the opening lists every file
    (measured: the 1.5B called Glob on a two-file folder over and over instead of writing the code)."""
    return tuple(n for n in names if not (first.listed_all and n in SEARCH_TOOLS))


def repeat_note(name: str) -> str:
    return (f"You already made this exact {name} call and its result has not changed: it is above. Do not repeat "
            "it. Take the next step: change the file with Write or Edit, or call Finish.")


def _files(root: Path) -> list[str]:
    found: list[str] = []
    for _, relative in walk_files(root, root):
        if relative.rsplit("/", 1)[-1].startswith("."):
            continue
        found.append(relative)
        if len(found) >= MAX_LISTED_SCAN:
            break
    return sorted(found, key=lambda f: (f.count("/"), f))


def _named_in(path: str, task: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path in task or (name in task and len(name) > 3)


def _text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192] or len(data) > SHOWN_FILE_CHARS:
        return None
    return data.decode("utf-8", errors="replace")


def top_level_names(source: str) -> set[str] | None:
    """The functions and classes a Python module defines at its top level (None: it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def lost_names(path: str, before: str | None, after: str | None) -> str:
    """A note for the model when a change to a Python file drops names it had, or breaks its syntax."""
    if not path.endswith(".py") or after is None:
        return ""
    names_after = top_level_names(after)
    if names_after is None:
        return f"\nWarning: {path} is not valid Python now (it does not parse). Fix it."
    names_before = top_level_names(before) if before else set()
    lost = sorted((names_before or set()) - names_after)
    if not lost:
        return ""
    return (f"\nWarning: {path} no longer defines {', '.join(lost)}, which it defined before; other code and "
            "the tests use those names. Keep the existing names.")


_MODULE_NAMES = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__builtins__", "__spec__",
                                              "__loader__", "__package__", "__path__", "__annotations__"}


def unbound_names(source: str) -> list[str] | None:
    """Names a Python module reads but never binds (defines, assigns, imports, takes as an argument), in
    order of first use; None when it does not parse or star-imports (then nothing can be said)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    bound: set[str] = set()
    used: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                if node.id not in used:
                    used.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bound.update(node.names)
    return [name for name in used if name not in bound and name not in _MODULE_NAMES]


@dataclass(frozen=True)
class ImportFix:
    """What the loop does about the names a Python file it just wrote uses but never binds."""

    source: str | None  # the file with the missing imports added (None: nothing to add)
    note: str  # what the model is told
    added: tuple[str, ...] = ()  # the import lines added, for the user's line on stderr


def fix_imports(path: str, after: str | None, root: Path) -> ImportFix:
    """Names a Python file uses but never defines or imports: one that exactly one other module of the
    folder defines at its top level gets its import added (measured: the 1.5B wrote test_calc.py calling
    add() without `from calc import add`, and rewrote it unchanged twice when told so); the others are
    reported."""
    if not path.endswith(".py") or after is None:
        return ImportFix(None, "")
    names = unbound_names(after)
    if not names:
        return ImportFix(None, "")
    definers = _top_level_definers(root, exclude=path)
    imports: dict[str, list[str]] = {}
    unknown: list[str] = []
    for name in names:
        modules = definers.get(name, [])
        if len(modules) == 1:
            imports.setdefault(modules[0], []).append(name)
        else:
            unknown.append(name)
    notes: list[str] = []
    source = None
    lines: list[str] = []
    if imports:
        lines = [f"from {module} import {', '.join(found)}" for module, found in imports.items()]
        source = _insert_imports(after, lines)
        notes.append(f"\nI added {' and '.join(f'`{line}`' for line in lines)} at the top of {path}: it used "
                     f"{'those names' if sum(map(len, imports.values())) > 1 else 'that name'} without importing it.")
    if unknown:
        notes.append(f"\nWarning: {path} uses {', '.join(unknown[:5])}, which it neither defines nor imports: "
                     "running it raises NameError. Fix it.")
    return ImportFix(source, "".join(notes), tuple(lines))


def _insert_imports(source: str, lines: list[str]) -> str:
    """The source with `lines` after its leading docstring and imports (before any other statement)."""
    tree = ast.parse(source)
    at = 0
    for index, node in enumerate(tree.body):
        docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, str)
        if not (docstring or isinstance(node, ast.Import | ast.ImportFrom)):
            break
        at = node.end_lineno or at
    body = source.splitlines(keepends=True)
    if at and not body[at - 1].endswith("\n"):
        body[at - 1] += "\n"
    return "".join(body[:at]) + "".join(line + "\n" for line in lines) + "".join(body[at:])


def _top_level_definers(root: Path, exclude: str) -> dict[str, list[str]]:
    """Top-level function/class name -> the importable modules (the folder's own .py files) defining it."""
    found: dict[str, list[str]] = {}
    for relative in _files(root)[:LISTED_FILES]:
        if not relative.endswith(".py") or relative == exclude:
            continue
        text = _text(root / relative)
        names = top_level_names(text) if text is not None else None
        module = relative[:-3].replace("/", ".")
        for name in sorted(names or ()):
            found.setdefault(name, []).append(module)
    return found
