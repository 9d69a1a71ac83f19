"""Bash with real subprocesses: output, exit codes, the environment, the output cap, and that nothing a
command starts (background jobs, forks, setsid daemons) outlives the call on exit, timeout or cancel."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agentic_flow.agents.tools import Permissions, Tool, Workspace, build_tools, command_env


@pytest.fixture
def bash(ws: Path) -> Tool:
    return build_tools(["Bash"], Workspace(ws), Permissions(mode="bypassPermissions"))["Bash"]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting for its parent to reap
    except psutil.NoSuchProcess:
        return True


def _pids(text: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"pid:(\d+)", text)]


def _written_pids(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


async def test_output_exit_code_and_cwd(bash: Tool, ws: Path) -> None:
    ok = await bash.run({"command": "pwd; echo err >&2", "description": "where am I"})
    assert not ok.is_error
    assert ok.content == f"{ws}\nerr"
    assert ok.summary == "Bash(pwd; echo err >&2): exit 0, 2 lines"
    failed = await bash.run({"command": "echo no; exit 3"})
    assert failed.is_error and failed.content == "no\n[exit code 3]"
    silent = await bash.run({"command": "true"})
    assert silent.content == "(no output)"


async def test_the_environment_carries_no_secrets(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "AGENTIC_FLOW_API_KEY",
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "SOME_SECRET",
    ):
        monkeypatch.setenv(name, "s3cr3t")
    bash = build_tools(["Bash"], Workspace(ws), Permissions(mode="bypassPermissions"))[
        "Bash"
    ]  # reads the env
    result = await bash.run({"command": "env"})
    assert "s3cr3t" not in result.content
    names = {line.split("=", 1)[0] for line in result.content.splitlines() if "=" in line}
    assert {"PATH", "HOME", "LANG"} <= names
    assert not {name for name in names if "KEY" in name or "TOKEN" in name or name.startswith("ANTHROPIC")}
    assert command_env({"PATH": "/bin", "ANTHROPIC_API_KEY": "x", "EDITOR": "vi"})["PATH"] == "/bin"
    assert "EDITOR" not in command_env({"EDITOR": "vi"})


async def test_output_is_capped_keeping_head_and_tail(bash: Tool) -> None:
    result = await bash.run({"command": "seq 1 100000"})
    assert not result.is_error
    assert result.content.startswith("1\n2\n3\n")
    assert result.content.endswith("99999\n100000")
    assert len(result.content) < 31_000
    assert re.search(r"\[\.\.\. [\d,]+ bytes of output cut; 588,895 in all \.\.\.\]", result.content)


async def test_background_jobs_are_stopped_when_the_command_ends(bash: Tool) -> None:
    started = time.monotonic()
    result = await bash.run(
        {
            "command": "sleep 1000 & echo pid:$!; (sleep 1000 & echo pid:$!); "
            "setsid sleep 1000 & echo pid:$!; echo done"
        }
    )
    assert time.monotonic() - started < 10  # bash's exit ends the call, not its jobs' open pipe
    assert not result.is_error
    pids = _pids(result.content)
    assert len(pids) == 3
    assert all(_gone(pid) for pid in pids), [psutil.Process(p).status() for p in pids if not _gone(p)]
    assert "done" in result.content and "[stopped 3 processes it left running" in result.content


async def test_a_timeout_kills_the_whole_tree(bash: Tool) -> None:
    started = time.monotonic()
    result = await bash.run(
        {
            "command": "echo pid:$$; sleep 1000 & echo pid:$!; (sleep 1000 & echo pid:$!); "
            "(setsid bash -c 'sleep 1000 & echo pid:$!; sleep 1000' &); sleep 0.3; "
            "sleep 1000",
            "timeout": 1500,
        }
    )
    assert time.monotonic() - started < 10
    assert result.is_error
    assert "[timed out after 1.5 s; the command and everything it started were killed]" in result.content
    pids = _pids(result.content)
    assert len(pids) == 4  # bash itself, a job, a job of a subshell, a job of a setsid daemon
    assert all(_gone(pid) for pid in pids)


async def test_cancellation_kills_the_tree(bash: Tool, ws: Path) -> None:
    task = asyncio.create_task(
        bash.run({"command": "echo $$ > pids; sleep 1000 & echo $! >> pids; sleep 1000"})
    )
    deadline = time.monotonic() + 10
    while len(pids := _written_pids(ws / "pids")) < 2:  # poll until both processes have started
        assert time.monotonic() < deadline, "the command did not start"
        await asyncio.sleep(0.02)
    assert not any(_gone(pid) for pid in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(_gone(pid) for pid in pids)


@pytest.mark.parametrize("delay", [0, 0.001, 0.005, 0.02, 0.05])
async def test_cancellation_at_any_moment_leaves_nothing(bash: Tool, ws: Path, delay: float) -> None:
    """Cancelled while bash starts, forks or runs: nothing it started is left (found by its cwd)."""
    task = asyncio.create_task(bash.run({"command": "sleep 1000 & (sleep 1000 &); sleep 1000"}))
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _running_in(ws)


async def test_commands_cannot_read_stdin_and_timeout_is_checked(bash: Tool) -> None:
    result = await bash.run({"command": "read line; echo got:$?"})
    assert result.content == "got:1"  # stdin is closed: no hang waiting for input
    too_long = await bash.run({"command": "true", "timeout": 600_001})
    assert too_long.is_error and "field 'timeout' must be at most 600000" in too_long.content


CTRL_C_SCRIPT = """
import asyncio, sys
from agentic_flow.agents.tools import Permissions, Workspace, build_tools
bash = build_tools(["Bash"], Workspace(sys.argv[1]), Permissions(mode="bypassPermissions"))["Bash"]
asyncio.run(bash.run({"command": "echo $$ > pids; (sleep 1000 &); sleep 1000 & echo $! >> pids; sleep 1000"}))
"""


def test_ctrl_c_in_a_real_run_kills_the_tree(ws: Path) -> None:
    """SIGINT to a process in asyncio.run, as a terminal's Ctrl-C would send it."""
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(ws)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(pids := _written_pids(ws / "pids")) < 2:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
    finally:
        child.kill()
        child.wait()
    assert b"KeyboardInterrupt" in stderr
    assert all(_gone(pid) for pid in pids)
    assert not _running_in(ws)  # the subshell's job too, whose pid the command does not print


def _running_in(ws: Path) -> list[psutil.Process]:
    """Live processes whose current folder is the workspace: what a command there started."""
    return [
        p
        for p in psutil.process_iter(["status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and p.pid != os.getpid() and _started_by(p, ws)
    ]


def _started_by(process: psutil.Process, ws: Path) -> bool:
    try:
        return process.cwd() == os.path.realpath(ws)
    except psutil.Error:
        return False
