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
    return Opening("\n\n".join(parts), tuple(shown), len(files) <= LISTED_FILES, not files)


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
