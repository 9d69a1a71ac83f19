"""Bash: runs a command in the workspace, and makes sure nothing it started outlives the call.

The command runs as `bash -c` in its own session (so Ctrl-C on the terminal reaches us, not it, and we
decide), with stdin closed, a minimal environment (no API keys) and a timeout.  Output is captured with
a cap that keeps its head and tail.  When the command ends, times out or is cancelled, everything it
started is killed: its process group, its descendants, and any process carrying this call's marker
variable in its environment, which catches daemons that fork twice and `setsid` out of the group.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil

from .base import Tool, ToolResult, shorten

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
OUTPUT_MAX_BYTES = 30_000
KILL_DEADLINE_S = 2.0
EXIT_POLL_S = 0.02
# What a command inherits: enough to find programs and speak UTF-8, nothing that carries a secret.
KEPT_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "USER", "LOGNAME", "TZ")
SECRET_NAME = re.compile(r"^(ANTHROPIC_|AGENTIC_FLOW_)|API_KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
# Each call puts a random value here; a process that still carries it after the call is one of its own.
RUN_MARKER = "AGENT_BASH_CALL"


def command_env(source: Mapping[str, str]) -> dict[str, str]:
    """The environment commands start with, taken from `source` (the agent process's environment)."""
    env = {name: source[name] for name in KEPT_VARIABLES if name in source and not SECRET_NAME.search(name)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("TERM", "dumb")
    env.update(PAGER="cat", GIT_PAGER="cat")  # a pager would wait for a key nobody presses
    return env


class CappedOutput:
    """Keeps the first and last half of the cap; counts what falls between."""

    def __init__(self, limit: int = OUTPUT_MAX_BYTES) -> None:
        self.head_limit, self.tail_limit = limit // 2, limit - limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > self.tail_limit:
            del self.tail[: len(self.tail) - self.tail_limit]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if cut <= 0:
            return head + tail
        return f"{head}\n[... {cut:,} bytes of output cut; {self.total:,} in all ...]\n{tail}"


@dataclass(frozen=True)
class CommandRun:
    """How one command ended: `exit_code` is None when it timed out (and was killed)."""

    exit_code: int | None
    timed_out: bool
    output: CappedOutput
    leftovers: int  # processes it left running, killed

    @property
    def text(self) -> str:
        return self.output.text().rstrip("\n")


class Bash(Tool):
    name = "Bash"
    kind = "execute"
    target_field = "command"
    description = (
        "Runs a bash command in the workspace folder and returns its output (stdout and stderr together) "
        f"and exit code. Default timeout {DEFAULT_TIMEOUT_MS // 1000} s, at most {MAX_TIMEOUT_MS // 1000} s "
        f"(timeout is in milliseconds). Output over {OUTPUT_MAX_BYTES:,} bytes is cut in the middle. stdin "
        "is closed: commands cannot be interactive. Background processes are stopped when the command "
        "ends. Prefer Read, Grep, Glob and Edit for reading and changing files."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to run"},
            "timeout": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_TIMEOUT_MS,
                "description": f"Timeout in milliseconds (default {DEFAULT_TIMEOUT_MS})",
            },
            "description": {"type": "string", "description": "What the command does, in 5-10 words"},
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def describe(self, tool_input: Mapping[str, Any]) -> str:
        command = tool_input.get("command") if isinstance(tool_input, Mapping) else None
        return shorten(f"Bash({command})" if isinstance(command, str) else "Bash")

    def preflight(self, args: dict[str, Any]) -> None:
        pass  # a command's paths cannot be checked; its cwd is the workspace

    async def execute_async(self, args: dict[str, Any]) -> ToolResult:
        timeout_s = args.get("timeout", DEFAULT_TIMEOUT_MS) / 1000
        run = await self.execute_command(args["command"], timeout_s)
        return self._result(args["command"], run.exit_code, run.output, run.timed_out, timeout_s, run.leftovers)

    async def execute_command(self, command: str, timeout_s: float) -> CommandRun:
        """Run `command` (no permission check: callers have decided) and kill what it leaves behind."""
        marker = secrets.token_hex(8)
        process = await _start(command, self.workspace.root, {**self.context.env, RUN_MARKER: marker})
        output = CappedOutput()
        assert process.stdout is not None
        reader = asyncio.create_task(_pump(process.stdout, output))
        try:
            timed_out = not await _exited(process, timeout_s)
        except BaseException:  # cancelled (Ctrl-C): kill everything, then let the cancellation go on
            kill_tree(process.pid, marker)
            reader.cancel()
            raise
        leftovers = kill_tree(process.pid, marker)
        await _finish(process, reader)
        return CommandRun(None if timed_out else process.returncode, timed_out, output, leftovers)

    @staticmethod
    def _result(
        command: str,
        code: int | None,
        output: CappedOutput,
        timed_out: bool,
        timeout_s: float,
        leftovers: int,
    ) -> ToolResult:
        text = output.text().rstrip("\n")
        lines = len(text.splitlines())
        notes: list[str] = []
        if timed_out:
            notes.append(
                f"timed out after {timeout_s:g} s; the command and everything it started were killed"
            )
        elif code is not None and code < 0:
            notes.append(f"killed by signal {-code}")
        elif code:
            notes.append(f"exit code {code}")
        if leftovers and not timed_out:
            notes.append(
                f"stopped {leftovers} process{'es' if leftovers > 1 else ''} it left running in the "
                "background (nothing a command starts outlives it)"
            )
        content = (text or "(no output)") + "".join(f"\n[{note}]" for note in notes)
        status = "timed out" if timed_out else f"exit {code}"
        return ToolResult(
            content,
            is_error=timed_out or code != 0,
            summary=shorten(f"Bash({command}): {status}, {lines} lines"),
        )


async def _pump(stream: asyncio.StreamReader, output: CappedOutput) -> None:
    while chunk := await stream.read(65536):
        output.feed(chunk)


async def _start(command: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Starts `bash -c command`.  A cancellation that arrives meanwhile waits for the start to finish,
    then kills what it started: bash runs (and may fork) before the start returns, and in Python 3.11
    cancelling asyncio's pipe setup can hang it for good."""
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group and session: the unit we kill
        )
    )
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        process = await starting
        kill_tree(process.pid, env[RUN_MARKER])
        raise
    except BaseException:  # KeyboardInterrupt outside asyncio's handler: find what started by its marker
        kill_tree(None, env[RUN_MARKER])
        raise


async def _exited(process: asyncio.subprocess.Process, timeout_s: float) -> bool:
    """Whether bash exited within the timeout.  Polled: in Python 3.11 `process.wait()` also waits for the
    output pipe to close, which a background job (`sleep 1000 &`) holds open after bash has exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while process.returncode is None:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(EXIT_POLL_S)
    return True


async def _finish(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Reads the output to its end and reaps bash; every writer of the pipe is dead by now."""
    try:
        await asyncio.wait_for(reader, KILL_DEADLINE_S)
    except TimeoutError:
        # A writer we could not find (it cleared its environment and left the session) holds the pipe
        # open; give up on the rest of its output rather than wait for it.
        return
    await process.wait()


def kill_tree(leader: int | None, marker: str) -> int:
    """SIGKILLs every process the call started, in rounds until none is left; returns how many it killed."""
    members = _members(leader, marker)  # before the group kill, to count what it kills
    killed: set[int] = set()
    if leader is not None:
        with suppress(ProcessLookupError):  # the group is empty: bash and its jobs are gone
            os.killpg(leader, signal.SIGKILL)  # the kernel kills the whole group at once, forks included
    for _ in range(10):
        if not members:
            break
        killed.update(member.pid for member in members)
        for member in members:
            with suppress(psutil.Error):  # it died meanwhile (the group kill got it first)
                member.kill()
        _wait_dead(members)
        members = _members(leader, marker)
    if leader is not None:
        killed.discard(leader)
    return len(killed)


def _members(leader: int | None, marker: str) -> list[psutil.Process]:
    """Live processes that belong to the call: in its group or session, below bash, or carrying its marker."""
    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    for process in psutil.process_iter():
        try:
            if process.pid == me or process.status() == psutil.STATUS_ZOMBIE:
                continue
            if (
                os.getpgid(process.pid) == leader
                or os.getsid(process.pid) == leader
                or process.environ().get(RUN_MARKER) == marker
            ):
                found[process.pid] = process
        except (psutil.Error, OSError):
            continue  # gone, or another user's process whose environment we may not read
    return list(found.values())


def _wait_dead(processes: list[psutil.Process]) -> None:
    deadline = time.monotonic() + KILL_DEADLINE_S
    while time.monotonic() < deadline:
        if not any(_alive(process) for process in processes):
            return
        time.sleep(0.01)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
