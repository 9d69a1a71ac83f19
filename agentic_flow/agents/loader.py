"""Agent files: Markdown with YAML front matter, found in an ordered list of folders.

An agent file looks like this (the same shape as Claude Code's `.claude/agents/*.md`)::

    ---
    name: coder
    description: Writes and fixes code
    tools: [Read, Edit, Bash]
    temperature: 0.2
    max_tokens: 2048
    ---
    You are a careful software engineer...

The body is the system prompt.  Folders are searched in order and the first agent of a name wins, so a
project's `coder.md` overrides the shipped one.  A malformed file is reported (path + reason, one line)
and skipped; it never hides the other agents.  This module reads no environment variables: callers pass
the folders.

Agent files come from whatever folder the user runs in, so they are untrusted input: the file and its
front matter have a size limit, YAML aliases are refused (an alias bomb of a few hundred bytes expands to
gigabytes), nesting and number length are bounded, and no message formats a value of unbounded size.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<meta>.*?)^---[ \t]*(?:\n|\Z)(?P<body>.*)\Z", re.S | re.M)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SKIPPED_FILES = {"readme.md"}  # a folder's README is documentation, not an agent
MAX_FILE_BYTES = 1024 * 1024  # Claude Code's agents are a few kB; this leaves room for long prompts
MAX_FRONT_MATTER_CHARS = 64 * 1024
MAX_YAML_DEPTH = 32  # the fields are flat; PyYAML's composer recurses per level (RecursionError at ~1000)
MAX_NUMBER_DIGITS = 30  # int() of a 5,000-digit string raises ValueError (Python's 4,300-digit limit)
MAX_TOKENS_LIMIT = 1_000_000
SHOWN_CHARS = 60  # how much of a bad value a message quotes

LABEL_FLAG = "--agents-dir"
LABEL_ENV = "AGENTS_DIR"
LABEL_PROJECT = "project"
LABEL_BUILTIN = "builtin"


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    prompt: str
    source: Path
    folder: str  # the label of the folder it came from: "builtin", "project", ...
    tools: tuple[str, ...] = ()
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    workflow: str | None = None  # "guided", "free" or "auto" (agents/workflow.py); None: auto


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        # One line per problem, whatever the file name or message holds.
        return f"{self.path}: {self.message}".replace("\r", "\\r").replace("\n", "\\n")


@dataclass
class AgentCatalog:
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    shadowed: list[AgentSpec] = field(default_factory=list)  # overridden by an earlier folder

    def names(self) -> list[str]:
        return sorted(self.agents)

    def get(self, name: str) -> AgentSpec:
        spec = self.agents.get(name)
        if spec is not None:
            return spec
        raise ConfigError(unknown_agent_message(name, self.names()))

    def overrider_of(self, spec: AgentSpec) -> AgentSpec | None:
        """The agent that hides `spec`, when `spec` is shadowed."""
        winner = self.agents.get(spec.name)
        return winner if winner is not None and winner.source != spec.source else None


def unknown_agent_message(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        return f"unknown agent {name!r}; did you mean: {', '.join(close)}?"
    known = ", ".join(names) if names else "none found"
    return f"unknown agent {name!r}; available: {known} (see `agentic-flow agents list`)"


# ---------------------------------------------------------------- search order

def builtin_dir() -> Path:
    # The package is installed as plain files (setuptools package-data), so the Traversable is a real folder.
    return Path(str(resources.files("agentic_flow.agents") / "builtin"))


def default_search_dirs(flag_dir: Path | None, env_dir: Path | None, cwd: Path) -> list[tuple[str, Path]]:
    """The folders to search, first match wins: --agents-dir, AGENTS_DIR, ./.claude/agents, builtin.

    A folder the user named explicitly must exist (a typo should not silently fall back to the builtins).
    """
    dirs: list[tuple[str, Path]] = []
    for label, folder in ((LABEL_FLAG, flag_dir), (LABEL_ENV, env_dir)):
        if folder is None:
            continue
        folder = folder.expanduser()
        if not folder.is_dir():
            raise ConfigError(f"agents folder {folder} ({label}) does not exist or is not a folder")
        dirs.append((label, folder))
    dirs.append((LABEL_PROJECT, cwd / ".claude" / "agents"))
    dirs.append((LABEL_BUILTIN, builtin_dir()))
    return _without_repeats(dirs)


def _without_repeats(dirs: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Keep the first mention of a folder (`--agents-dir .claude/agents` must not list agents twice)."""
    seen: set[Path] = set()
    unique = []
    for label, folder in dirs:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((label, folder))
    return unique


def discover(dirs: Sequence[tuple[str, Path] | Path]) -> AgentCatalog:
    """Load every `*.md` in each folder (missing folders are skipped); earlier folders win by name."""
    catalog = AgentCatalog()
    for entry in dirs:
        label, folder = entry if isinstance(entry, tuple) else (str(entry), entry)
        if folder.is_dir():
            _load_folder(catalog, label, folder)
    return catalog


def _load_folder(catalog: AgentCatalog, label: str, folder: Path) -> None:
    seen_here: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() in SKIPPED_FILES or not path.is_file():
            continue
        try:
            spec = load_agent(path, label)
        except ConfigError as exc:
            catalog.problems.append(Problem(path, str(exc)))
            continue
        if spec.name in seen_here:
            other = seen_here[spec.name].name
            message = f"duplicate agent name {_shown(spec.name)} (also in {other})"
            catalog.problems.append(Problem(path, message))
            continue
        seen_here[spec.name] = path
        if spec.name in catalog.agents:
            catalog.shadowed.append(spec)
        else:
            catalog.agents[spec.name] = spec


# ---------------------------------------------------------------- one file

def load_agent(path: Path, label: str) -> AgentSpec:
    """Parse one agent file; raises ConfigError with the reason (without the path) when it is malformed."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"too large: an agent file may have at most {MAX_FILE_BYTES} bytes")
    meta, body = split_front_matter(text)
    return _build_spec(meta, body, path, label)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    if match is None:
        raise ConfigError("no front matter: the file must start with a '---' line, YAML fields, then '---'")
    if len(match["meta"]) > MAX_FRONT_MATTER_CHARS:
        raise ConfigError(f"front matter too large: at most {MAX_FRONT_MATTER_CHARS} characters")
    try:
        meta = yaml.load(match["meta"], Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in front matter: {_yaml_reason(exc)}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ConfigError(f"front matter must be YAML fields (key: value), not a {type(meta).__name__}")
    return meta, match["body"].strip()


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, with bounded nesting and integer length."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed", mark)
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number longer than {MAX_NUMBER_DIGITS} digits", node.start_mark)
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _shown(value: object) -> str:
    """A bad value for a message, never longer than about SHOWN_CHARS (it may be megabytes)."""
    if isinstance(value, str):
        text = repr(value[:SHOWN_CHARS])
        return text if len(value) <= SHOWN_CHARS else f"{text[:-1]}...{text[-1]} ({len(value)} characters)"
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'} of {len(value)} items"
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)[:SHOWN_CHARS]  # ints are bounded by the loader; floats are short
    return f"a {type(value).__name__}"


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        # +2: the mark counts from 0 inside the front matter, which starts on the file's second line.
        return f"{exc.problem} (line {exc.problem_mark.line + 2})"
    return str(exc).splitlines()[0]


def _build_spec(meta: dict[str, Any], body: str, path: Path, label: str) -> AgentSpec:
    name = _required_text(meta, "name")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"name {_shown(name)} must be one word of letters, digits, '-', '_' or '.'")
    if not body:
        raise ConfigError("the system prompt (the text after the front matter) is empty")
    return AgentSpec(
        name=name,
        description=_required_text(meta, "description"),
        prompt=body,
        source=path,
        folder=label,
        tools=_tools(meta.get("tools")),
        model=_optional_text(meta, "model"),
        temperature=_temperature(meta.get("temperature")),
        max_tokens=_max_tokens(meta.get("max_tokens")),
        workflow=_workflow(meta.get("workflow")),
    )


def _workflow(value: object) -> str | None:
    if value is None:
        return None
    if value not in ("auto", "guided", "free"):
        raise ConfigError(f"'workflow' must be auto, guided or free, got {_shown(value)}")
    return str(value)


def _required_text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    if value is None:
        raise ConfigError(f"missing required field '{key}'")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"'{key}' must be a non-empty string, got {_shown(value)}")
    return value.strip()


def _optional_text(meta: dict[str, Any], key: str) -> str | None:
    return None if meta.get(key) is None else _required_text(meta, key)


def _tools(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # Claude Code writes `tools: Read, Grep, Glob`
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise ConfigError(f"'tools' must be a list of names, got {_shown(value)}")


def _temperature(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"'temperature' must be a number from 0 to 1, got {_shown(value)}")
    return float(value)


def _max_tokens(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT:
        raise ConfigError(
            f"'max_tokens' must be a positive whole number up to {MAX_TOKENS_LIMIT}, got {_shown(value)}")
    return value
