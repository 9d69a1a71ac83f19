"""The agent task suite as data: load the task folders under bench/agent_tasks, set up a workspace, check it,
and name why a run failed.  No model here: scripts/agent_tasks.py runs the agent, tests/test_agent_tasks.py
proves every task valid (its checker fails on files/ as given) and solvable (it passes with solution/ laid over).

A task folder holds task.json, files/ (the workspace the agent starts with) and, for tasks that change
files, solution/ (the files a correct solution leaves).  task.json:

    {"kind": "exercise", "stub": "ledger.py", "check": [{"type": "pytest", "tests": ["ledger_test.py"]}]}
    {"kind": "bugfix", "prompt": "...", "check": [...], "timeout_s": 240, "reference_answer": "..."}

An "exercise" has no prompt: it is files/instructions.md followed by EXERCISE_SUFFIX (the wording of Aider's
code-editing benchmark).  "check" is one check or a list, all of which must pass:

    {"type": "pytest", "tests": ["x_test.py"], "timeout_s": 60}    the ORIGINAL test files are restored first
    {"type": "command", "argv": ["python", "main.py"], "stdout": "12"}     exact, after strip
    {"type": "command", "argv": [...], "stdout_contains": ["hello world"]}  case-insensitive
    {"type": "file", "path": "config.json", "json": {...}} or "contains"/"absent": [words]
    {"type": "answer", "words": ["17"], "absent": ["18"]}       whole words in the final answer, any case

"python" as argv[0] is this interpreter.  Every command is run in its own process group and killed,
tree and all, at its timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TASKS_DIR = Path(__file__).resolve().parent / "agent_tasks"
EXERCISE_SUFFIX = ("Use the above instructions to modify the supplied files: {stub}. Don't change the names of "
                   "existing functions or classes, as they may be referenced from other code like unit tests, etc. "
                   "Only use standard libraries, don't suggest installing any packages.")
CHECK_TIMEOUT_S = 60.0
DEFAULT_CAP_S = 180.0
# Files that change how pytest collects or runs: one the agent adds is removed before the tests run, so a
# conftest.py that skips everything cannot pass a task.
PYTEST_CONFIG = ("conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml")
IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
CHECK_TYPES = {"pytest", "command", "file", "answer"}

# Why a run failed; None means it passed.
NO_EDIT, TESTS_FAILING, TIMEOUT, REPETITION, ERROR, WRONG_ANSWER = (
    "no_edit", "tests_failing", "timeout", "repetition", "error", "wrong_answer")
# agentic-flow's exit codes for a run that ended normally: 0, 7 (stopped at --max-turns) and 8 (finished with the
# workspace's tests failing); the task's own checks decide those.
FINISHED_EXIT_CODES = (0, 7, 8)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    prompt: str
    checks: tuple[dict[str, Any], ...]
    folder: Path
    timeout_s: float | None = None
    reference_answer: str | None = None

    @property
    def files(self) -> Path:
        return self.folder / "files"

    @property
    def solution(self) -> Path | None:
        path = self.folder / "solution"
        return path if path.is_dir() else None

    @property
    def answers_only(self) -> bool:
        """The task is a question: only the final answer is checked, so an unchanged workspace is no failure."""
        return all(check["type"] == "answer" for check in self.checks)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str  # the first failing check, in a line


def load_task(folder: Path) -> Task:
    spec = json.loads((folder / "task.json").read_text())
    checks = spec["check"] if isinstance(spec["check"], list) else [spec["check"]]
    for check in checks:
        if check.get("type") not in CHECK_TYPES:
            raise ValueError(f"{folder.name}: unknown check type {check.get('type')!r}")
    if spec["kind"] == "exercise":
        instructions = (folder / "files" / "instructions.md").read_text().strip()
        prompt = f"{instructions}\n\n{EXERCISE_SUFFIX.format(stub=spec['stub'])}"
    else:
        prompt = spec["prompt"]
    timeout = spec.get("timeout_s")
    return Task(folder.name, spec["kind"], prompt, tuple(checks), folder,
                float(timeout) if timeout is not None else None, spec.get("reference_answer"))


def load_tasks(root: Path = TASKS_DIR) -> list[Task]:
    return [load_task(folder) for folder in sorted(root.iterdir()) if (folder / "task.json").is_file()]


def select(tasks: list[Task], names: str) -> list[Task]:
    """Tasks named by `names` (comma-separated task names or kinds); all when empty."""
    if not names:
        return tasks
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    unknown = wanted - {t.name for t in tasks} - {t.kind for t in tasks}
    if unknown:
        raise ValueError(f"no task or kind named {', '.join(sorted(unknown))}")
    return [t for t in tasks if t.name in wanted or t.kind in wanted]


def copy_tree(source: Path, dest: Path) -> None:
    # .keep only lets git hold an empty files/ folder; the agent does not see it.
    shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".keep"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, caches left out (running the tests writes __pycache__)."""
    files: dict[str, bytes] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not IGNORED_DIRS.intersection(rel.parts):
            files[rel.as_posix()] = path.read_bytes()
    return files


def run_command(argv: list[str], cwd: Path, timeout_s: float,
                env: dict[str, str] | None = None) -> tuple[int | None, str, str]:
    """(exit code or None on timeout, stdout, stderr); the whole process group is killed at the timeout.
    Without `env`, the checks' environment: no plugin autoloading, so a pytest plugin installed beside the
    product cannot change a verdict."""
    if argv and argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    if env is None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        out, err = proc.communicate()
        return None, out, err
    except BaseException:  # Ctrl-C or the runner's SIGTERM: the task's process tree goes with it
        kill_tree(proc)
        proc.communicate()
        raise
    return proc.returncode, out, err


def kill_tree(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended between the timeout and the kill
        os.killpg(proc.pid, signal.SIGKILL)


def _words_present(text: str, word: str) -> bool:
    # Whole words, so "7" is not found in "17" and "a.py" not in "data.py".
    return re.search(rf"(?<![\w.]){re.escape(word.lower())}(?![\w])", text.lower()) is not None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _check_pytest(task: Task, ws: Path, check: dict[str, Any]) -> CheckResult:
    original = snapshot(task.files)
    for name in PYTEST_CONFIG:  # an agent-made conftest.py could skip every test
        for path in ws.rglob(name):
            if path.relative_to(ws).as_posix() not in original:
                path.unlink()
    for test in check["tests"]:
        source = task.files / test
        if source.is_file():  # restore the tests as given, whatever the agent did to them
            (ws / test).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, ws / test)
    argv = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *check["tests"]]
    code, out, err = run_command(argv, ws, float(check.get("timeout_s", CHECK_TIMEOUT_S)))
    if code is None:
        return CheckResult(False, "tests timed out")
    return CheckResult(code == 0, "" if code == 0 else f"pytest exit {code}: {_last_line(out or err)}")


def _check_command(ws: Path, check: dict[str, Any]) -> CheckResult:
    code, out, err = run_command(list(check["argv"]), ws, float(check.get("timeout_s", CHECK_TIMEOUT_S)))
    shown = " ".join(check["argv"])
    if code is None:
        return CheckResult(False, f"`{shown}` timed out")
    if "exit_code" in check and code != check["exit_code"]:
        return CheckResult(False, f"`{shown}` exit {code}: {_last_line(err)}")
    if "stdout" in check and out.strip() != check["stdout"]:
        return CheckResult(False, f"`{shown}` printed {out.strip()[:80]!r}, expected {check['stdout']!r}")
    missing = [w for w in check.get("stdout_contains", ()) if w.lower() not in out.lower()]
    if missing:
        return CheckResult(False, f"`{shown}` output lacks {missing}")
    return CheckResult(True, "")


def _check_file(ws: Path, check: dict[str, Any]) -> CheckResult:
    path = ws / check["path"]
    if not path.is_file():
        return CheckResult(False, f"{check['path']} missing")
    text = path.read_text(errors="replace")
    if "json" in check:
        try:
            ok = json.loads(text) == check["json"]
        except ValueError:
            ok = False
        if not ok:
            return CheckResult(False, f"{check['path']} is not the expected JSON")
    missing = [w for w in check.get("contains", ()) if w.lower() not in text.lower()]
    present = [w for w in check.get("absent", ()) if w.lower() in text.lower()]
    if missing or present:
        return CheckResult(False, f"{check['path']}: lacks {missing}, still has {present}")
    return CheckResult(True, "")


def _check_answer(answer: str, check: dict[str, Any]) -> CheckResult:
    missing = [w for w in check.get("words", ()) if not _words_present(answer, w)]
    present = [w for w in check.get("absent", ()) if _words_present(answer, w)]
    if missing or present:
        return CheckResult(False, f"answer lacks {missing}, has {present}")
    return CheckResult(True, "")


def check_task(task: Task, ws: Path, answer: str) -> CheckResult:
    """Every check in order; the first failure decides."""
    for check in task.checks:
        kind = check["type"]
        if kind == "pytest":
            result = _check_pytest(task, ws, check)
        elif kind == "command":
            result = _check_command(ws, check)
        elif kind == "file":
            result = _check_file(ws, check)
        else:
            result = _check_answer(answer, check)
        if not result.passed:
            return result
    return CheckResult(True, "")


@dataclass(frozen=True)
class AgentRun:
    """What the agentic-flow subprocess left: exit code (None: killed at the cap), its --json, stderr."""
    exit_code: int | None
    body: dict[str, Any]
    stderr: str

    @property
    def last_stderr_line(self) -> str:
        return _last_line(self.stderr)


def mentions_repetition(run: AgentRun) -> bool:
    fields = (str(run.body.get("stop_reason") or ""), str(run.body.get("outcome") or ""), run.last_stderr_line)
    return any("repeti" in f.lower() for f in fields)


def classify(task: Task, run: AgentRun, changed: bool, check: CheckResult) -> str | None:
    """Why the run failed (one of the names above), or None when it passed."""
    timed_out = run.exit_code is None or "timed out" in run.last_stderr_line.lower() \
        or str(run.body.get("outcome") or "") == "timeout"
    if timed_out and not check.passed:
        return TIMEOUT
    if check.passed and run.exit_code in FINISHED_EXIT_CODES:
        return None
    if mentions_repetition(run):
        return REPETITION
    if run.exit_code not in FINISHED_EXIT_CODES:
        return TIMEOUT if timed_out else ERROR
    if not changed and not task.answers_only:
        return NO_EDIT
    return WRONG_ANSWER if task.answers_only else TESTS_FAILING
