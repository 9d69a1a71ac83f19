"""Agent files: parsing, validation, search order and overriding, and the `agents` commands."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from agentic_flow.agents.loader import (
    LABEL_BUILTIN,
    LABEL_ENV,
    LABEL_FLAG,
    LABEL_PROJECT,
    builtin_dir,
    default_search_dirs,
    discover,
    load_agent,
)
from agentic_flow.cli import agents_cmd
from agentic_flow.errors import ConfigError

BUILTINS = {"coder", "researcher", "reviewer", "tester", "planner"}

VALID = """\
---
name: sql-helper
description: Writes SQL
tools: [Read, Grep]
model: claude-haiku-4-5
temperature: 0.3
max_tokens: 512
---
You write SQL.

Only SQL.
"""


def write(folder: Path, filename: str, text: str, newline: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def agent_text(name: str, description: str = "An agent", body: str = "You help.") -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n{body}\n"


# ---------------------------------------------------------------- one file

def test_front_matter_fields_and_body_become_the_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "sql.md", VALID)

    spec = load_agent(path, "mine")

    assert spec.name == "sql-helper"
    assert spec.description == "Writes SQL"
    assert spec.tools == ("Read", "Grep")
    assert (spec.model, spec.temperature, spec.max_tokens) == ("claude-haiku-4-5", 0.3, 512)
    assert spec.prompt == "You write SQL.\n\nOnly SQL."
    assert (spec.source, spec.folder) == (path, "mine")


def test_crlf_and_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "sql.md", "\ufeff" + VALID, newline="\r\n")

    spec = load_agent(path, "mine")

    assert spec.name == "sql-helper"
    assert spec.prompt == "You write SQL.\n\nOnly SQL."


def test_claude_code_style_tools_string_and_optional_fields(tmp_path: Path) -> None:
    text = "---\nname: helper\ndescription: Helps\ntools: Read, Grep, Glob\ncolor: blue\n---\nHelp.\n"

    spec = load_agent(write(tmp_path, "helper.md", text), "project")

    assert spec.tools == ("Read", "Grep", "Glob")
    assert (spec.model, spec.temperature, spec.max_tokens) == (None, None, None)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("You are an agent without front matter.\n", "no front matter"),
        ("---\nname: x\ndescription: [unclosed\n---\nBody\n", "invalid YAML in front matter"),
        ("---\n- name\n- description\n---\nBody\n", "must be YAML fields"),
        ("---\ndescription: No name\n---\nBody\n", "missing required field 'name'"),
        ("---\nname: x\n---\nBody\n", "missing required field 'description'"),
        ("---\nname: 42\ndescription: d\n---\nBody\n", "'name' must be a non-empty string"),
        ("---\nname: two words\ndescription: d\n---\nBody\n", "must be one word"),
        ("---\nname: x\ndescription: d\ntools: 3\n---\nBody\n", "'tools' must be a list"),
        ("---\nname: x\ndescription: d\ntemperature: hot\n---\nBody\n", "'temperature' must be a number"),
        ("---\nname: x\ndescription: d\ntemperature: 1.5\n---\nBody\n", "from 0 to 1"),
        ("---\nname: x\ndescription: d\nmax_tokens: 0\n---\nBody\n", "'max_tokens' must be a positive"),
        ("---\nname: x\ndescription: d\nmax_tokens: true\n---\nBody\n", "'max_tokens' must be a positive"),
        ("---\nname: x\ndescription: d\n---\n\n   \n", "system prompt"),
    ],
)
def test_malformed_file_is_reported_with_path_and_reason_and_skipped(
    tmp_path: Path, text: str, reason: str
) -> None:
    folder = tmp_path / "agents"
    bad = write(folder, "bad.md", text)
    write(folder, "good.md", agent_text("good"))

    catalog = discover([("mine", folder)])

    assert catalog.names() == ["good"]
    assert len(catalog.problems) == 1
    assert catalog.problems[0].path == bad
    assert reason in catalog.problems[0].message
    assert str(bad) in str(catalog.problems[0])


def test_yaml_error_names_the_file_line(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "bad.md", "---\nname: x\ndescription: d\ntools: [a, b\n---\nBody\n")

    (problem,) = discover([folder]).problems

    assert "line" in problem.message


def test_undecodable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "latin1.md").write_bytes(b"---\nname: caf\xe9\ndescription: d\n---\nBody\n")

    (problem,) = discover([folder]).problems

    assert "not UTF-8" in problem.message


def test_duplicate_name_in_one_folder_keeps_the_first_and_reports_the_second(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "a.md", agent_text("same", "first"))
    write(folder, "b.md", agent_text("same", "second"))

    catalog = discover([folder])

    assert catalog.get("same").description == "first"
    assert "duplicate agent name 'same'" in catalog.problems[0].message


def test_readme_is_not_an_agent(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "README.md", "# My agents\n")

    catalog = discover([folder])

    assert (catalog.agents, catalog.problems) == ({}, [])


# ---------------------------------------------------------------- search order

def test_search_order_is_flag_env_project_builtin(tmp_path: Path) -> None:
    flag, env = tmp_path / "flag", tmp_path / "env"
    flag.mkdir()
    env.mkdir()

    dirs = default_search_dirs(flag, env, tmp_path)

    assert dirs == [
        (LABEL_FLAG, flag), (LABEL_ENV, env), (LABEL_PROJECT, tmp_path / ".claude" / "agents"),
        (LABEL_BUILTIN, builtin_dir()),
    ]


def test_a_folder_named_twice_is_searched_once(tmp_path: Path) -> None:
    project = tmp_path / ".claude" / "agents"
    write(project, "triage.md", agent_text("triage"))

    dirs = default_search_dirs(project, None, tmp_path)
    catalog = discover(dirs)

    assert [label for label, _ in dirs] == [LABEL_FLAG, LABEL_BUILTIN]
    assert catalog.get("triage").folder == LABEL_FLAG
    assert catalog.shadowed == []


@pytest.mark.parametrize("use_flag", [True, False])
def test_an_explicit_folder_that_does_not_exist_is_a_config_error(tmp_path: Path, use_flag: bool) -> None:
    missing = tmp_path / "agnets"
    flag, env = (missing, None) if use_flag else (None, missing)

    with pytest.raises(ConfigError, match=r"agnets .*does not exist"):
        default_search_dirs(flag, env, tmp_path)


def test_project_agent_overrides_builtin_and_first_folder_wins(tmp_path: Path) -> None:
    project = tmp_path / ".claude" / "agents"
    write(project, "coder.md", agent_text("coder", "Our house coder"))
    flag = tmp_path / "flag"
    write(flag, "reviewer.md", agent_text("reviewer", "Flag reviewer"))
    env = tmp_path / "env"
    write(env, "reviewer.md", agent_text("reviewer", "Env reviewer"))
    write(env, "tester.md", agent_text("tester", "Env tester"))

    catalog = discover(default_search_dirs(flag, env, tmp_path))

    assert catalog.get("coder").description == "Our house coder"
    assert catalog.get("coder").folder == LABEL_PROJECT
    assert catalog.get("reviewer").description == "Flag reviewer"
    assert catalog.get("tester").folder == LABEL_ENV
    assert catalog.get("planner").folder == LABEL_BUILTIN
    shadowed = {(s.name, s.folder) for s in catalog.shadowed}
    assert shadowed == {("coder", LABEL_BUILTIN), ("reviewer", LABEL_ENV), ("reviewer", LABEL_BUILTIN),
                        ("tester", LABEL_BUILTIN)}


def test_unknown_agent_suggests_close_names() -> None:
    catalog = discover([builtin_dir()])

    with pytest.raises(ConfigError, match=r"unknown agent 'codr'; did you mean: coder\?"):
        catalog.get("codr")
    with pytest.raises(ConfigError, match=r"unknown agent 'zzz'; available: coder, planner"):
        catalog.get("zzz")


# ---------------------------------------------------------------- the shipped agents

def test_builtin_agents_load_cleanly_with_sensible_defaults() -> None:
    catalog = discover([(LABEL_BUILTIN, builtin_dir())])

    assert catalog.problems == []
    assert set(catalog.names()) >= BUILTINS
    for spec in catalog.agents.values():
        assert 1024 <= (spec.max_tokens or 0) <= 2048, spec.name
        assert 0.2 <= (spec.temperature or 0) <= 0.7, spec.name
        assert 15 <= len(spec.prompt.splitlines()) <= 60, spec.name  # substantive, not a page
        assert spec.tools, spec.name
        assert spec.model is None, f"{spec.name}: the provider or optimizer picks the model"


# ---------------------------------------------------------------- commands

@pytest.fixture
def cli() -> typer.Typer:
    return agents_cmd.app


def test_list_shows_agents_grouped_by_folder_and_warns_about_bad_files(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    project = tmp_path / ".claude" / "agents"
    write(project, "coder.md", agent_text("coder", "Our house coder"))
    write(project, "broken.md", "no front matter here\n")

    result = CliRunner().invoke(cli, ["list"])

    assert result.exit_code == 0, result.output
    assert "[project]" in result.stdout and "[builtin]" in result.stdout  # the name column never wraps
    assert result.stdout.index("[project]") < result.stdout.index("[builtin]")
    for name in BUILTINS:
        assert name in result.stdout
    assert "warning: skipped agent file" in result.stderr and "broken.md: no front matter" in result.stderr


def test_the_table_marks_overridden_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".claude" / "agents", "coder.md", agent_text("coder", "Our house coder"))
    console = Console(file=io.StringIO(), width=200)  # wide enough that no cell wraps

    agents_cmd.print_agents(None, console=console)

    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    ours = next(line for line in lines if "Our house coder" in line)
    shipped = next(line for line in lines if "overridden by project" in line)
    assert ".claude/agents/coder.md" in ours
    assert "builtin/coder.md" in shipped and "coder" in shipped


def test_list_reads_agents_dir_from_the_environment(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "team", "triage.md", agent_text("triage", "Sorts bug reports"))
    monkeypatch.setenv("AGENTS_DIR", str(tmp_path / "team"))
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli, ["list"])

    assert result.exit_code == 0, result.output
    assert "triage" in result.stdout and f"[{LABEL_ENV}]" in result.stdout


def test_list_with_a_missing_agents_dir_fails_with_one_line(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["list", "--agents-dir", str(tmp_path / "nope")])

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: agents folder")


def test_show_prints_a_valid_agent_file(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli, ["show", "reviewer"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("---\nname: reviewer\n")
    copy = write(tmp_path / "copy", "reviewer.md", result.stdout)
    assert load_agent(copy, "copy").prompt == discover([builtin_dir()]).get("reviewer").prompt
    assert "builtin" in result.stderr


def test_show_unknown_agent_exits_2_with_a_suggestion(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["show", "planer"])

    assert result.exit_code == 2
    assert result.stderr == "error: unknown agent 'planer'; did you mean: planner?\n"


# ---------------------------------------------------------------- hostile files (issue 8, item 7)

def _alias_bomb(levels: int) -> str:
    """The billion-laughs shape: each level lists the previous one 9 times (444 bytes at 9 levels)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
    lines.append(f"tools: *l{levels - 1}")
    return "---\nname: bomb\ndescription: d\n" + "\n".join(lines) + "\n---\nBody\n"


HOSTILE = {
    "deep.md": ("---\nname: deep\ndescription: d\ntools: " + "[" * 5000 + "]" * 5000 + "\n---\nBody\n",
                "nested deeper than"),
    "digits.md": ("---\nname: digits\ndescription: d\nmax_tokens: " + "9" * 5000 + "\n---\nBody\n",
                  "a number longer than"),
    "bomb.md": (_alias_bomb(6), "aliases"),
    "huge.md": ("---\nname: huge\ndescription: d\n---\n" + "x" * (2 * 1024 * 1024) + "\n", "too large"),
    "long.md": ("---\nname: long\ndescription: " + "[" + "1," * 20000 + "1]\n---\nBody\n", "a list of 20001"),
}


@pytest.mark.parametrize("filename", sorted(HOSTILE))
def test_a_hostile_file_is_one_short_line_and_the_others_still_load(tmp_path: Path, filename: str) -> None:
    text, reason = HOSTILE[filename]
    folder = tmp_path / "agents"
    write(folder, filename, text)
    write(folder, "good.md", agent_text("good"))

    catalog = discover([("mine", folder)])

    assert catalog.names() == ["good"]
    (problem,) = catalog.problems
    assert reason in problem.message
    assert len(str(problem)) < len(str(problem.path)) + 200  # never the expanded or huge value
    assert "\n" not in str(problem)


def test_big_but_valid_numbers_are_bounded_in_range_and_in_the_message(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "big.md", "---\nname: big\ndescription: d\nmax_tokens: " + "9" * 30 + "\n---\nBody\n")

    (problem,) = discover([folder]).problems

    assert "up to 1000000" in problem.message and "9" * 30 in problem.message


def test_a_newline_in_a_file_name_cannot_split_the_warning(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "two\nlines.md", "no front matter\n")

    (problem,) = discover([folder]).problems

    assert "\n" not in str(problem) and "two\\nlines.md" in str(problem)


def test_anchors_without_aliases_and_nesting_within_the_bound_still_load(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    write(folder, "ok.md", "---\nname: ok\ndescription: &d fine\ntools: [[Read]]\n---\nBody\n")

    catalog = discover([folder])

    assert "ok" not in catalog.names()  # nested tools are wrong, but reported, not a crash
    assert "'tools' must be a list of names, got a list of 1 items" in catalog.problems[0].message
    write(folder, "ok.md", "---\nname: ok\ndescription: &d fine\ntools: [Read]\n---\nBody\n")
    assert discover([folder]).get("ok").description == "fine"


def test_agents_list_and_the_main_command_survive_a_folder_of_hostile_files(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentic_flow.cli.main import app as main_app

    monkeypatch.chdir(tmp_path)
    project = tmp_path / ".claude" / "agents"
    for filename, (text, _reason) in HOSTILE.items():
        write(project, filename, text)
    write(project, "good.md", agent_text("good", "Still works"))

    for app, args in ((cli, ["list"]), (main_app, ["--list"])):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "Still works" in result.stdout
        warnings = result.stderr.splitlines()
        assert len(warnings) == len(HOSTILE) and all(w.startswith("warning: skipped") for w in warnings)
        assert all(len(w) < 400 for w in warnings)
    # The lookup `agentic-flow --agent good` makes (task.find_agent) goes through the same discovery.
    assert discover(default_search_dirs(None, None, tmp_path)).get("good").description == "Still works"
