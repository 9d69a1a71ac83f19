"""The agent tools on real files in a temporary workspace: Read, Write, Edit, Glob, Grep, LS, the input
checks and the registry.  Safety (paths, permissions) is in test_tools_safety.py, Bash in
test_tools_bash.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentic_flow.agents.tools import (
    TOOL_NAMES,
    Permissions,
    Tool,
    Workspace,
    build_tools,
    tool_definitions,
)
from agentic_flow.errors import ConfigError


@pytest.fixture
def tools(ws: Path) -> dict[str, Tool]:
    return build_tools(list(TOOL_NAMES), Workspace(ws), Permissions(mode="bypassPermissions"))


# --- registry -------------------------------------------------------------------------------------


def test_registry_names_and_definitions(tools: dict[str, Tool]) -> None:
    assert TOOL_NAMES == ("Read", "Write", "Edit", "Glob", "Grep", "Bash", "LS")
    definitions = tool_definitions(tools)
    assert [d["name"] for d in definitions] == list(TOOL_NAMES)
    for definition in definitions:
        assert set(definition) == {"name", "description", "input_schema"}
        assert definition["input_schema"]["type"] == "object"
    edit = next(d for d in definitions if d["name"] == "Edit")["input_schema"]
    assert edit["required"] == ["file_path", "old_string", "new_string"]
    assert set(edit["properties"]) == {"file_path", "old_string", "new_string", "replace_all"}


def test_unknown_tool_lists_the_known_ones(ws: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown tool 'Delete'; the known tools are: Read, Write, Edit"):
        build_tools(["Read", "Delete"], Workspace(ws), Permissions())
    with pytest.raises(ConfigError, match="--allow-tools"):
        build_tools(["Read"], Workspace(ws), Permissions(allow_tools=frozenset({"bash"})))


def test_workspace_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        Workspace(tmp_path / "missing")


# --- input validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool_input", "message"),
    [
        ({}, "missing required field 'file_path'"),
        ({"file_path": 7}, "field 'file_path' must be a string"),
        ({"file_path": "a", "limit": "ten"}, "field 'limit' must be a whole number"),
        ({"file_path": "a", "limit": True}, "field 'limit' must be a whole number"),
        ({"file_path": "a", "limit": 0}, "field 'limit' must be at least 1"),
        ({"file_path": "a", "path": "b"}, "unknown field 'path'"),
        (["a"], "the input must be a JSON object"),
    ],
)
async def test_bad_input_is_an_error_naming_the_field(
    tools: dict[str, Tool], tool_input: object, message: str
) -> None:
    result = await tools["Read"].run(tool_input)
    assert result.is_error
    assert message in result.content
    assert result.summary.startswith("Read")


async def test_quoted_numbers_are_accepted(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "a.txt").write_text("one\ntwo\nthree\n")
    result = await tools["Read"].run({"file_path": "a.txt", "offset": "2", "limit": "1"})
    assert not result.is_error
    assert result.content.startswith("     2\ttwo\n")


# --- Read -----------------------------------------------------------------------------------------


async def test_read_numbers_lines_like_cat_n(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "src").mkdir()
    (ws / "src" / "x.py").write_text("import os\n\nprint(os.name)\n")
    result = await tools["Read"].run({"file_path": "src/x.py"})
    assert not result.is_error
    assert result.content == "     1\timport os\n     2\t\n     3\tprint(os.name)"
    assert result.summary == "Read src/x.py (3 lines)"


async def test_read_range_and_paging_note(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 101)))
    result = await tools["Read"].run({"file_path": str(ws / "long.txt"), "offset": 10, "limit": 3})
    assert result.content.splitlines()[:3] == ["    10\tline 10", "    11\tline 11", "    12\tline 12"]
    assert "(lines 10-12 of 100; read more with offset=13)" in result.content
    assert result.summary == "Read long.txt (3 of 100 lines)"
    past = await tools["Read"].run({"file_path": "long.txt", "offset": 500})
    assert past.is_error and "has 100 lines; offset 500 is past the end" in past.content


async def test_read_caps_long_lines_and_refuses_binary_and_folders(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "wide.txt").write_text("x" * 5000 + "\n")
    wide = await tools["Read"].run({"file_path": "wide.txt"})
    assert "(line cut: 5,000 characters)" in wide.content and len(wide.content) < 2100
    (ws / "blob.bin").write_bytes(b"\x00\x01\x02")
    binary = await tools["Read"].run({"file_path": "blob.bin"})
    assert binary.is_error and "binary file" in binary.content
    folder = await tools["Read"].run({"file_path": "."})
    assert folder.is_error and "is a folder" in folder.content
    missing = await tools["Read"].run({"file_path": "nope.txt"})
    assert missing.is_error and "nope.txt does not exist" in missing.content
    (ws / "empty.txt").write_text("")
    assert (await tools["Read"].run({"file_path": "empty.txt"})).content == "(the file is empty)"


# --- Write ----------------------------------------------------------------------------------------


async def test_write_creates_folders_and_replaces_atomically(tools: dict[str, Tool], ws: Path) -> None:
    created = await tools["Write"].run({"file_path": "pkg/sub/hello.py", "content": "print('hello')\n"})
    assert not created.is_error, created.content
    assert (ws / "pkg" / "sub" / "hello.py").read_text() == "print('hello')\n"
    assert created.summary == "Write pkg/sub/hello.py (1 lines, new)"
    target = ws / "pkg" / "sub" / "hello.py"
    target.chmod(0o755)
    replaced = await tools["Write"].run({"file_path": "pkg/sub/hello.py", "content": "print('bye')\n"})
    assert target.read_text() == "print('bye')\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # the old file's mode is kept
    assert replaced.diff is not None and "-print('hello')\n+print('bye')" in replaced.diff
    assert sorted(os.listdir(target.parent)) == ["hello.py"]  # no temporary file left behind


async def test_write_refuses_a_folder(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "d").mkdir()
    result = await tools["Write"].run({"file_path": "d", "content": "x"})
    assert result.is_error and "is a folder" in result.content


# --- Edit -----------------------------------------------------------------------------------------


async def test_edit_replaces_a_unique_string_and_returns_a_diff(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "m.py").write_text("def add(a, b):\n    return a - b\n")
    result = await tools["Edit"].run({"file_path": "m.py", "old_string": "a - b", "new_string": "a + b"})
    assert not result.is_error, result.content
    assert (ws / "m.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert result.diff == (
        "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    )
    assert result.summary == "Edit m.py (+1 -1)"
    assert "     2\t    return a + b" in result.content  # the model sees the changed lines


async def test_edit_unique_match_rule(tools: dict[str, Tool], ws: Path) -> None:
    path = ws / "m.py"
    path.write_text("x = 1\ny = 1\n")
    absent = await tools["Edit"].run({"file_path": "m.py", "old_string": "z = 1", "new_string": "z = 2"})
    assert absent.is_error and "old_string was not found in m.py" in absent.content
    twice = await tools["Edit"].run({"file_path": "m.py", "old_string": "= 1", "new_string": "= 2"})
    assert (
        twice.is_error
        and "old_string occurs 2 times in m.py" in twice.content
        and "replace_all" in twice.content
    )
    assert path.read_text() == "x = 1\ny = 1\n"  # a refused edit changes nothing
    every = await tools["Edit"].run(
        {"file_path": "m.py", "old_string": "= 1", "new_string": "= 2", "replace_all": True}
    )
    assert not every.is_error and "replaced 2 occurrences" in every.content
    assert path.read_text() == "x = 2\ny = 2\n"


async def test_edit_edge_cases(tools: dict[str, Tool], ws: Path) -> None:
    same = await tools["Edit"].run({"file_path": "n.py", "old_string": "a", "new_string": "a"})
    assert same.is_error and "the same" in same.content
    missing = await tools["Edit"].run({"file_path": "n.py", "old_string": "a", "new_string": "b"})
    assert missing.is_error and "n.py does not exist" in missing.content
    created = await tools["Edit"].run({"file_path": "n.py", "old_string": "", "new_string": "new\n"})
    assert not created.is_error and (ws / "n.py").read_text() == "new\n"
    nonempty = await tools["Edit"].run({"file_path": "n.py", "old_string": "", "new_string": "x"})
    assert nonempty.is_error and "old_string is empty" in nonempty.content
    (ws / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    crlf = await tools["Edit"].run({"file_path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"})
    assert not crlf.is_error and (ws / "win.txt").read_bytes() == b"1\r\n2\r\n"


# --- Glob and LS ----------------------------------------------------------------------------------


def _tree(ws: Path) -> None:
    for name in (
        "a.py",
        "src/b.py",
        "src/deep/c.py",
        "src/d.ts",
        "src/e.tsx",
        "README.md",
        ".git/x.py",
        "node_modules/m/index.js",
    ):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(f"# {name}\nneedle here\n")


async def test_glob_patterns(tools: dict[str, Tool], ws: Path) -> None:
    _tree(ws)

    async def glob(**args: str) -> list[str]:
        result = await tools["Glob"].run(args)
        assert not result.is_error, result.content
        return sorted(result.content.splitlines()) if result.content != "No files found" else []

    assert await glob(pattern="**/*.py") == ["a.py", "src/b.py", "src/deep/c.py"]  # .git skipped
    assert await glob(pattern="*.py") == ["a.py"]
    assert await glob(pattern="src/*.py") == ["src/b.py"]
    assert await glob(pattern="*.py", path="src/deep") == ["src/deep/c.py"]
    assert await glob(pattern="**/*.{ts,tsx}") == ["src/d.ts", "src/e.tsx"]
    assert await glob(pattern="nothing*") == []
    bad = await tools["Glob"].run({"pattern": "../*.py"})
    assert bad.is_error and "must not contain '..'" in bad.content


async def test_glob_newest_first_and_capped(tools: dict[str, Tool], ws: Path) -> None:
    for n in range(120):
        path = ws / f"f{n:03}.txt"
        path.write_text("x")
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    result = await tools["Glob"].run({"pattern": "*.txt"})
    lines = result.content.splitlines()
    assert lines[0] == "f119.txt" and len(lines) == 101
    assert lines[-1] == "(showing 100 of 120 files; use a narrower pattern or path)"
    assert result.summary == "Glob *.txt (120 files)"


async def test_ls(tools: dict[str, Tool], ws: Path) -> None:
    _tree(ws)
    result = await tools["LS"].run({})
    assert result.content.splitlines() == [".git/", "node_modules/", "src/", "README.md", "a.py"]
    sub = await tools["LS"].run({"path": "src", "ignore": ["*.ts*"]})
    assert sub.content.splitlines() == ["deep/", "b.py"]
    missing = await tools["LS"].run({"path": "nope"})
    assert missing.is_error and "does not exist" in missing.content


# --- Grep -----------------------------------------------------------------------------------------


async def test_grep_modes_and_filters(tools: dict[str, Tool], ws: Path) -> None:
    _tree(ws)
    (ws / "bin.dat").write_bytes(b"needle\x00\x01")
    files = await tools["Grep"].run({"pattern": "needle"})
    assert sorted(files.content.splitlines()) == [
        "README.md",
        "a.py",
        "src/b.py",
        "src/d.ts",
        "src/deep/c.py",
        "src/e.tsx",
    ]  # no .git, node_modules or binary file
    only_py = await tools["Grep"].run({"pattern": "NEEDLE", "-i": True, "glob": "*.py"})
    assert sorted(only_py.content.splitlines()) == ["a.py", "src/b.py", "src/deep/c.py"]
    by_type = await tools["Grep"].run({"pattern": "needle", "type": "ts", "path": "src"})
    assert sorted(by_type.content.splitlines()) == ["src/d.ts", "src/e.tsx"]
    by_path_glob = await tools["Grep"].run({"pattern": "needle", "glob": "src/deep/*.py"})
    assert by_path_glob.content == "src/deep/c.py"
    content = await tools["Grep"].run(
        {"pattern": r"need\w+", "path": "a.py", "output_mode": "content", "-B": 1}
    )
    assert content.content == "a.py-1-# a.py\na.py:2:needle here"
    count = await tools["Grep"].run({"pattern": "e", "path": "src/b.py", "output_mode": "count"})
    assert count.content == "src/b.py:1"
    assert (await tools["Grep"].run({"pattern": "absent"})).content == "No matches found"
    bad = await tools["Grep"].run({"pattern": "(unclosed"})
    assert bad.is_error and "invalid regular expression" in bad.content


async def test_grep_caps_results(tools: dict[str, Tool], ws: Path) -> None:
    (ws / "many.txt").write_text("hit\n" * 1000)
    default = await tools["Grep"].run({"pattern": "hit", "output_mode": "content"})
    lines = default.content.splitlines()
    assert len(lines) == 251 and lines[0] == "many.txt:1:hit"
    assert lines[-1].startswith("(results capped at 250; there are more")
    limited = await tools["Grep"].run({"pattern": "hit", "output_mode": "content", "head_limit": 5})
    assert len(limited.content.splitlines()) == 6
    (ws / "wide.txt").write_text(("y" * 400 + "\n") * 200)
    wide = await tools["Grep"].run(
        {"pattern": "y", "output_mode": "content", "path": "wide.txt", "head_limit": 200}
    )
    assert len(wide.content) < 31_000 and "results capped" in wide.content  # the character cap
