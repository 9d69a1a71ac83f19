"""The workspace boundary and the permission modes, on real files, links, pipes and a pty."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from agentic_flow.agents.tools import TOOL_NAMES, PermissionMode, Permissions, Tool, Workspace, build_tools
from agentic_flow.errors import ConfigError


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "inside.txt").write_text("inside\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("SECRET\n")
    return folder


def _tools(ws: Path, mode: PermissionMode = "bypassPermissions", **kwargs: object) -> dict[str, Tool]:
    return build_tools(list(TOOL_NAMES), Workspace(ws), Permissions(mode=mode, **kwargs))  # type: ignore[arg-type]


# --- the workspace boundary -----------------------------------------------------------------------


@pytest.mark.parametrize("spelled", ["../outside/secret.txt", "sub/../../outside/secret.txt", "ABS"])
async def test_paths_outside_are_refused(ws: Path, outside: Path, spelled: str) -> None:
    path = str(outside / "secret.txt") if spelled == "ABS" else spelled
    tools = _tools(ws)
    for name, tool_input in [
        ("Read", {"file_path": path}),
        ("Write", {"file_path": path, "content": "x"}),
        ("Edit", {"file_path": path, "old_string": "SECRET", "new_string": "x"}),
        ("Grep", {"pattern": "SECRET", "path": path}),
        ("LS", {"path": path}),
        ("Glob", {"pattern": "*", "path": path}),
    ]:
        result = await tools[name].run(tool_input)
        assert result.is_error, name
        assert "is outside the workspace" in result.content, (name, result.content)
    assert (outside / "secret.txt").read_text() == "SECRET\n"


async def test_absolute_paths_inside_are_accepted(ws: Path) -> None:
    result = await _tools(ws)["Read"].run({"file_path": str(ws / "inside.txt")})
    assert not result.is_error and result.summary == "Read inside.txt (1 lines)"


async def test_a_link_planted_inside_pointing_out_is_refused(ws: Path, outside: Path) -> None:
    (ws / "door").symlink_to(outside)
    (ws / "secret-link.txt").symlink_to(outside / "secret.txt")
    tools = _tools(ws)
    for tool_input in ({"file_path": "door/secret.txt"}, {"file_path": "secret-link.txt"}):
        result = await tools["Read"].run(tool_input)
        assert result.is_error and "resolves through a symbolic link" in result.content
    write = await tools["Write"].run({"file_path": "door/new.txt", "content": "x"})
    assert write.is_error and not (outside / "new.txt").exists()
    # Searches neither descend the linked folder nor read the linked file.
    grep = await tools["Grep"].run({"pattern": "SECRET"})
    assert grep.content == "No matches found"
    glob = await tools["Glob"].run({"pattern": "**/*.txt"})
    assert glob.content == "inside.txt"


async def test_writing_through_a_final_link_that_points_out_is_refused(ws: Path, outside: Path) -> None:
    (ws / "existing.txt").symlink_to(outside / "secret.txt")
    (ws / "dangling.txt").symlink_to(outside / "not-yet.txt")
    tools = _tools(ws)
    for name in ("existing.txt", "dangling.txt"):
        write = await tools["Write"].run({"file_path": name, "content": "pwned"})
        assert write.is_error and "outside the workspace" in write.content
    edit = await tools["Edit"].run({"file_path": "existing.txt", "old_string": "SECRET", "new_string": "x"})
    assert edit.is_error
    assert (outside / "secret.txt").read_text() == "SECRET\n"
    assert not (outside / "not-yet.txt").exists()
    assert (ws / "existing.txt").is_symlink() and (ws / "dangling.txt").is_symlink()


async def test_a_link_pointing_inside_writes_its_target(ws: Path) -> None:
    (ws / "alias.txt").symlink_to(ws / "inside.txt")
    result = await _tools(ws)["Write"].run({"file_path": "alias.txt", "content": "changed\n"})
    assert not result.is_error, result.content
    assert (ws / "inside.txt").read_text() == "changed\n"
    assert (ws / "alias.txt").is_symlink()  # the link is kept, not replaced by a file


async def test_a_symlinked_workspace_is_resolved_once(tmp_path: Path, ws: Path, outside: Path) -> None:
    link = tmp_path / "link-to-ws"
    link.symlink_to(ws)
    workspace = Workspace(link)
    assert workspace.root == ws  # the boundary is the folder the link pointed to
    tools = build_tools(["Read"], workspace, Permissions())
    through_link = await tools["Read"].run({"file_path": str(link / "inside.txt")})
    assert not through_link.is_error
    escape = await tools["Read"].run({"file_path": "../outside/secret.txt"})
    assert escape.is_error
    # Re-pointing the link does not move the boundary.
    link.unlink()
    link.symlink_to(outside)
    moved = await tools["Read"].run({"file_path": str(link / "secret.txt")})
    assert moved.is_error and "outside the workspace" in moved.content


# --- permissions ----------------------------------------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[tuple[int, TextIO]]:
    """A pty: the master end to type into, the slave end as the prompt's input stream."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r")
    yield master, stream
    stream.close()
    os.close(master)


def _asking(ws: Path, stream: TextIO, out: io.StringIO, mode: PermissionMode = "default") -> dict[str, Tool]:
    return _tools(ws, mode, input=stream, output=out)


async def test_yes_on_a_terminal_allows_once(ws: Path, terminal: tuple[int, TextIO]) -> None:
    master, stream = terminal
    out = io.StringIO()
    tools = _asking(ws, stream, out)
    os.write(master, b"y\n")
    result = await tools["Write"].run({"file_path": "a.txt", "content": "a"})
    assert not result.is_error and (ws / "a.txt").read_text() == "a"
    assert out.getvalue() == "Allow Write a.txt? [y]es / [n]o / [a]lways allow Write for this run: "
    os.write(master, b"n\n")  # "y" was for that call only: the next one asks again
    again = await tools["Write"].run({"file_path": "b.txt", "content": "b"})
    assert again.is_error and "the user refused permission for Write b.txt" in again.content
    assert not (ws / "b.txt").exists()
    assert out.getvalue().count("Allow Write") == 2


async def test_always_on_a_terminal_remembers_the_tool(ws: Path, terminal: tuple[int, TextIO]) -> None:
    master, stream = terminal
    out = io.StringIO()
    tools = _asking(ws, stream, out)
    os.write(master, b"always\n")
    for name in ("a.txt", "b.txt"):
        result = await tools["Write"].run({"file_path": name, "content": name})
        assert not result.is_error
    assert out.getvalue().count("Allow Write") == 1
    os.write(master, b"no\n")  # "always" was for Write, not for the other tools
    edit = await tools["Edit"].run({"file_path": "a.txt", "old_string": "a.txt", "new_string": "x"})
    assert edit.is_error and "refused" in edit.content
    assert "Allow Edit a.txt?" in out.getvalue()


async def test_without_a_terminal_changes_are_refused_with_the_flag(ws: Path) -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(read_end, "r")
    out = io.StringIO()
    try:
        tools = _asking(ws, stream, out)
        write = await tools["Write"].run({"file_path": "a.txt", "content": "a"})
        assert write.content == (
            "Write needs permission: rerun with --permission-mode acceptEdits or --allow-tools Write"
        )
        assert write.is_error and not (ws / "a.txt").exists()
        bash = await tools["Bash"].run({"command": "touch made"})
        assert bash.content == (
            "Bash needs permission: rerun with --permission-mode bypassPermissions or --allow-tools Bash"
        )
        assert not (ws / "made").exists()
        read = await tools["Read"].run({"file_path": "inside.txt"})  # reads never ask
        assert not read.is_error
        assert out.getvalue() == ""  # nobody was asked
    finally:
        stream.close()
        os.close(write_end)


async def test_accept_edits_and_allow_tools(ws: Path) -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(read_end, "r")
    try:
        edits = _tools(ws, "acceptEdits", input=stream)
        assert not (await edits["Write"].run({"file_path": "a.txt", "content": "a"})).is_error
        assert "Bash needs permission" in (await edits["Bash"].run({"command": "true"})).content
        granted = _tools(ws, "default", input=stream, allow_tools=frozenset({"Bash"}))
        assert not (await granted["Bash"].run({"command": "true"})).is_error
        assert (
            "Write needs permission"
            in (await granted["Write"].run({"file_path": "b", "content": ""})).content
        )
    finally:
        stream.close()
        os.close(write_end)


async def test_plan_mode_allows_no_changes(ws: Path) -> None:
    tools = _tools(ws, "plan", allow_tools=frozenset({"Bash", "Write", "Edit"}))  # plan wins over grants
    for name, tool_input in [
        ("Write", {"file_path": "a.txt", "content": "a"}),
        ("Edit", {"file_path": "inside.txt", "old_string": "inside", "new_string": "x"}),
        ("Bash", {"command": "touch made"}),
    ]:
        result = await tools[name].run(tool_input)
        assert result.is_error and "not allowed in plan mode" in result.content, name
    assert sorted(os.listdir(ws)) == ["inside.txt"] and (ws / "inside.txt").read_text() == "inside\n"
    for name, tool_input in [
        ("Read", {"file_path": "inside.txt"}),
        ("Grep", {"pattern": "in"}),
        ("Glob", {"pattern": "*"}),
        ("LS", {}),
    ]:
        assert not (await tools[name].run(tool_input)).is_error, name


async def test_a_path_outside_is_refused_before_anyone_is_asked(
    ws: Path, terminal: tuple[int, TextIO]
) -> None:
    _, stream = terminal
    out = io.StringIO()
    result = await _asking(ws, stream, out)["Write"].run({"file_path": "../x", "content": "x"})
    assert result.is_error and "outside the workspace" in result.content
    assert out.getvalue() == ""


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="unknown permission mode 'yolo'; choose one of: default, acceptEdits"
    ):
        Permissions(mode="yolo")  # type: ignore[arg-type]
