"""Checking the agent's work: find the workspace's tests, run them after a change, read the result.

A guided run (agents/workflow.py) verifies on its own instead of trusting the model to: after every turn
that changed a file it runs the check command and sends the failures back, and it ends the run as soon
as the check passes.  The command is `--verify CMD` when given, else found from the workspace:

    *_test.py / test_*.py / tests/  ->  python3 -m pytest -q -x   (when pytest imports there)
                                         python3 -m unittest ...   (otherwise: exercises use unittest)

The command runs through the Bash tool (so its process tree is killed at the timeout, and the
environment carries no secrets) and asks for permission like any command, except when the user named
it with `--verify`: naming it is the consent.  Only the tail of the output goes back to the model: a
small model reads the first failure best, and `-x` makes it the last thing printed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .tools import Bash, ToolContext
from .tools.walk import walk_files

DEFAULT_TIMEOUT_S = 60.0
FEEDBACK_CHARS = 2_400  # the output's tail that the model sees
MAX_SCAN = 2_000  # files looked at when searching the workspace for tests
_PYTEST_TAIL = re.compile(r"=+ (.*? in [\d.]+s.*?) =+\s*$", re.MULTILINE)
_PYTEST_SHORT = re.compile(r"^(\d+ (?:passed|failed|error|errors).*? in [\d.]+s)\s*$", re.MULTILINE)
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.MULTILINE)
_UNITTEST_VERDICT = re.compile(r"^((?:OK|FAILED)\b.*)$", re.MULTILINE)


@dataclass(frozen=True)
class CheckCommand:
    command: str
    source: str  # "--verify" or "found: 2 test files"
    consented: bool  # the user named it: run without asking


@dataclass(frozen=True)
class Verification:
    """One run of the check command."""

    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    duration_s: float
    summary: str  # one line: "9 passed in 0.03s", "FAILED (failures=2)", "timed out after 60 s"
    output: str  # what the model is shown (the tail)
    refused: bool = False  # permission was refused: nothing ran

    def to_json(self) -> dict[str, object]:
        return {"command": self.command, "passed": self.passed, "exit_code": self.exit_code,
                "timed_out": self.timed_out, "duration_s": round(self.duration_s, 3), "summary": self.summary}


def test_files(root: Path) -> list[Path]:
    """The workspace's Python test files, nearest first (bounded: a huge tree is not walked whole)."""
    found: list[Path] = []
    for seen, (path, _) in enumerate(walk_files(root, root)):
        if seen >= MAX_SCAN:
            break
        name = path.name
        if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
            found.append(path)
    return sorted(found, key=lambda p: (len(p.relative_to(root).parts), str(p)))


def find_check(root: Path, explicit: str | None, python: str | None = None) -> CheckCommand | None:
    """The check command for this run, or None when there is nothing to run."""
    if explicit:
        return CheckCommand(explicit, "--verify", consented=True)
    tests = test_files(root)
    if not tests:
        return None
    python = python or _python()
    if python is None:
        return None
    what = f"found {len(tests)} test file{'s' if len(tests) != 1 else ''}"
    if _has_pytest(python, root):
        return CheckCommand(f"{python} -m pytest -q -x -p no:cacheprovider", what, consented=False)
    patterns = sorted({"*_test.py" if t.name.endswith("_test.py") else "test_*.py" for t in tests})
    command = " && ".join(f"{python} -m unittest discover -s . -p '{p}'" for p in patterns)
    return CheckCommand(command, what, consented=False)


def _python() -> str | None:
    return "python3" if shutil.which("python3") else ("python" if shutil.which("python") else None)


def _has_pytest(python: str, cwd: Path) -> bool:
    try:
        probe = subprocess.run([python, "-c", "import pytest"], cwd=cwd, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


async def run_check(check: CheckCommand, context: ToolContext, timeout_s: float = DEFAULT_TIMEOUT_S) -> Verification:
    """Run the check once through Bash (permission asked unless the user named the command)."""
    if not check.consented:
        decision = context.permissions.check("Bash", "execute", f"Bash({check.command}) to run the tests")
        if not decision.allowed:
            reason = f"{decision.reason}, or name the check with --verify CMD"
            return Verification(check.command, False, None, False, 0.0, "not run: " + reason, "", refused=True)
    # Bytecode from an empty folder of its own: a file rewritten within the second of an earlier run, at
    # the same size, would otherwise be imported from its stale .pyc (the check then tests the old code).
    root = context.workspace.root
    before = _entries(root)
    with tempfile.TemporaryDirectory(prefix="agentic-flow-pyc-") as pyc:
        env = {**context.env, "PYTHONPYCACHEPREFIX": pyc, "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        run = await Bash(replace(context, env=env)).execute_command(
            check.command, timeout_s)
    duration = time.monotonic() - started
    _drop_empty_new_folders(root, before)
    text = run.text
    if run.timed_out:
        return Verification(check.command, False, None, True, duration, f"timed out after {timeout_s:g} s",
                            tail(text))
    passed = run.exit_code == 0 and not _ran_nothing(text)
    return Verification(check.command, passed, run.exit_code, False, duration, summarize(text, run.exit_code),
                        tail(text))


def _entries(root: Path) -> set[str]:
    try:
        return {entry.name for entry in root.iterdir()}
    except OSError:
        return set()


def _drop_empty_new_folders(root: Path, before: set[str]) -> None:
    """The check is the loop's, not the agent's: an empty folder it left in the workspace (pytest-benchmark
    makes `.benchmarks` at every session, measured on this project's machines) is removed."""
    for name in _entries(root) - before:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):  # not empty (rmdir refuses), or gone already
                path.rmdir()


def _ran_nothing(output: str) -> bool:
    ran = _UNITTEST_RAN.findall(output)
    return bool(ran) and all(int(n) == 0 for n in ran) and "passed" not in output


def summarize(output: str, code: int | None) -> str:
    """The runner's own verdict line when it printed one, else the exit code."""
    for pattern in (_PYTEST_TAIL, _PYTEST_SHORT):
        found = pattern.findall(output)
        if found:
            return str(found[-1]).strip()
    ran, verdict = _UNITTEST_RAN.findall(output), _UNITTEST_VERDICT.findall(output)
    if ran and verdict:
        return f"ran {sum(int(n) for n in ran)} tests: {verdict[-1]}"
    last = [line for line in output.strip().splitlines() if line.strip()]
    return (last[-1][:120] if last else "no output") + ("" if code in (0, None) else f" (exit {code})")


def tail(output: str, limit: int = FEEDBACK_CHARS) -> str:
    text = output.strip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "[... earlier output cut ...]\n" + cut[cut.find("\n") + 1:]


def feedback(v: Verification) -> str:
    """What the model is told after a check (it goes into the next user turn)."""
    if v.refused:
        return f"(The tests were not run: {v.summary})"
    if v.passed:
        return f"I ran the tests (`{v.command}`): they pass ({v.summary})."
    if v.timed_out:
        return (f"I ran the tests (`{v.command}`): they did not finish within the time limit and were stopped. "
                "Look for an endless loop.\n" + v.output)
    return (f"I ran the tests (`{v.command}`): they FAIL ({v.summary}). Read the failure below, then fix "
            f"the code (not the tests) with Write or Edit.\n\n{v.output}")
