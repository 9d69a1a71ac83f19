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
project's `coder.md` overrides the shipped one.  A malformed file is reported (path + reason) and skipped;
it never hides the other agents.  This module reads no environment variables: callers pass the folders.
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


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


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
            catalog.problems.append(Problem(path, f"duplicate agent name {spec.name!r} (also in {other})"))
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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}") from None
    meta, body = split_front_matter(text)
    return _build_spec(meta, body, path, label)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    if match is None:
        raise ConfigError("no front matter: the file must start with a '---' line, YAML fields, then '---'")
    try:
        meta = yaml.safe_load(match["meta"])
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in front matter: {_yaml_reason(exc)}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ConfigError(f"front matter must be YAML fields (key: value), not a {type(meta).__name__}")
    return meta, match["body"].strip()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        # +2: the mark counts from 0 inside the front matter, which starts on the file's second line.
        return f"{exc.problem} (line {exc.problem_mark.line + 2})"
    return str(exc).splitlines()[0]


def _build_spec(meta: dict[str, Any], body: str, path: Path, label: str) -> AgentSpec:
    name = _required_text(meta, "name")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"name {name!r} must be one word of letters, digits, '-', '_' or '.'")
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
    )


def _required_text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    if value is None:
        raise ConfigError(f"missing required field '{key}'")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"'{key}' must be a non-empty string, got {value!r}")
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
    raise ConfigError(f"'tools' must be a list of names, got {value!r}")


def _temperature(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"'temperature' must be a number from 0 to 1, got {value!r}")
    return float(value)


def _max_tokens(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"'max_tokens' must be a positive whole number, got {value!r}")
    return value
