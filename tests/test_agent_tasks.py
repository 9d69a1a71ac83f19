"""The agent task suite without a model: every task folder loads, every task is valid (its checker fails on the
workspace as given) and solvable (it passes with solution/ laid over, or on the reference answer), the checkers
cannot be fooled (tampered tests are restored, a hanging check is killed tree and all), and the runner names
each failure from sample --json outputs."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.agent_suite import (
    ERROR,
    EXERCISE_SUFFIX,
    NO_EDIT,
    REPETITION,
    TESTS_FAILING,
    TIMEOUT,
    WRONG_ANSWER,
    AgentRun,
    CheckResult,
    Task,
    check_task,
    classify,
    copy_tree,
    load_tasks,
    select,
)

TASKS = load_tasks()
BY_NAME = {t.name: t for t in TASKS}
# Exercism's Python track is held back for an honest evaluation: none of its well-known exercises may appear.
EXERCISM = {"leap", "bob", "two-fer", "raindrops", "isogram", "pangram", "anagram", "hamming", "acronym",
            "word-count", "roman-numerals", "run-length-encoding", "rotational-cipher", "matching-brackets",
            "bank-account", "spiral-matrix", "transpose", "wordy", "hello-world", "reverse-string", "grains",
            "difference-of-squares", "armstrong-numbers", "collatz-conjecture", "series", "sieve", "luhn",
            "atbash-cipher", "binary-search", "book-store", "clock", "phone-number", "word-search", "zipper"}


def _load_runner():  # scripts/ is not a package: load the runner by path
    spec = importlib.util.spec_from_file_location("agent_tasks_runner", Path(__file__).parents[1] / "scripts" /
                                                  "agent_tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


def test_the_suite_has_the_kinds_the_issue_asks_for() -> None:
    kinds = [t.kind for t in TASKS]
    assert len(TASKS) >= 32
    assert kinds.count("exercise") >= 20
    assert kinds.count("bugfix") >= 4 and kinds.count("rename") >= 2 and kinds.count("cli-flag") >= 2
    assert kinds.count("question") >= 2 and kinds.count("quick") == 12
    assert not EXERCISM & set(BY_NAME)


@pytest.mark.parametrize("task", [t for t in TASKS if t.kind == "exercise"], ids=lambda t: t.name)
def test_exercise_has_the_aider_layout(task: Task) -> None:
    files = sorted(p.name for p in task.files.iterdir())
    tests = task.checks[0]["tests"]
    stub = tests[0].removesuffix("_test.py") + ".py"
    assert files == sorted(["instructions.md", stub, tests[0]])
    assert task.prompt.endswith(EXERCISE_SUFFIX.format(stub=stub))
    assert task.prompt.startswith((task.files / "instructions.md").read_text().strip())
    assert "pass" in (task.files / stub).read_text()
    assert [p.name for p in task.solution.iterdir()] == [stub]  # type: ignore[union-attr]
    count = (task.files / tests[0]).read_text().count("    def test_")
    assert 5 <= count <= 15


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_task_fails_as_given_and_passes_when_solved(task: Task, tmp_path: Path) -> None:
    given, solved = tmp_path / "given", tmp_path / "solved"
    copy_tree(task.files, given)
    copy_tree(task.files, solved)
    if task.solution is not None:
        copy_tree(task.solution, solved)
    else:
        assert task.answers_only and task.reference_answer, "a task without solution/ must be a question"
    # Both checks at once: each is mostly a subprocess's start-up, and the two cores are otherwise half idle.
    with ThreadPoolExecutor(2) as pool:
        before = pool.submit(check_task, task, given, "")
        after = pool.submit(check_task, task, solved, task.reference_answer or "")
    assert not before.result().passed
    assert after.result().passed, after.result().detail


def _solved_copy(name: str, root: Path, *, solved: bool) -> tuple[Task, Path]:
    task = BY_NAME[name]
    copy_tree(task.files, root)
    if solved and task.solution is not None:
        copy_tree(task.solution, root)
    return task, root


def test_pytest_check_restores_tampered_tests_and_drops_an_added_conftest(tmp_path: Path) -> None:
    task, ws = _solved_copy("fix-median", tmp_path / "cheat", solved=False)
    (ws / "test_stats.py").write_text("def test_nothing():\n    assert True\n")
    (ws / "conftest.py").write_text("import pytest\n\n\ndef pytest_collection_modifyitems(items):\n"
                                    "    for item in items:\n        item.add_marker(pytest.mark.skip)\n")
    result = check_task(task, ws, "")
    assert not result.passed and "failed" in result.detail
    assert "assert median" in (ws / "test_stats.py").read_text()  # the original is back
    assert not (ws / "conftest.py").exists()

    task, ws = _solved_copy("fix-median", tmp_path / "honest", solved=True)
    (ws / "test_stats.py").write_text("def test_broken():\n    assert False\n")  # damaged, not cheating
    assert check_task(task, ws, "").passed


def test_a_hanging_check_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    hang = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); open(sys.argv[1], 'w').write(str(child.pid)); time.sleep(60)")
    task = Task("hang", "quick", "", ({"type": "command", "argv": ["python", "-c", hang, str(pid_file)],
                                       "stdout": "", "timeout_s": 6},), tmp_path)
    started = time.monotonic()
    result = check_task(task, tmp_path, "")
    assert not result.passed and "timed out" in result.detail
    assert time.monotonic() - started < 30
    status = Path(f"/proc/{pid_file.read_text()}/status")

    def stopped() -> bool:  # gone, or a zombie waiting for a reaper this container may not have
        try:
            return "zombie" in status.read_text()
        except OSError:
            return True

    # SIGKILL is delivered at once but the process can still read as running for a moment.
    deadline = time.monotonic() + 5
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stopped()


def test_answers_match_whole_words_in_any_case() -> None:
    task = BY_NAME["count-lines"]
    assert check_task(task, Path("."), "It has 17 lines.").passed
    assert not check_task(task, Path("."), "It has 170 lines.").passed
    listing = BY_NAME["list-python-files"]
    assert check_task(listing, Path("."), "A.py, B.py and sub/c.py").passed
    assert not check_task(listing, Path("."), "a.py, b.py, sub/c.py and notes.txt").passed


def test_tasks_are_selected_by_name_or_kind() -> None:
    chosen = select(TASKS, "rename,hello-py")
    assert {t.name for t in chosen} == {"rename-class", "rename-function", "hello-py"}
    with pytest.raises(ValueError, match="no-such-task"):
        select(TASKS, "no-such-task")


PASSED, FAILED = CheckResult(True, ""), CheckResult(False, "pytest exit 1: 3 failed")


@pytest.mark.parametrize(("name", "run", "changed", "check", "expected"), [
    ("snake-case", AgentRun(0, {"stop_reason": "end_turn"}, ""), True, PASSED, None),
    ("snake-case", AgentRun(7, {"stop_reason": "max_turns"}, "stopped after 6 turns"), True, PASSED, None),
    ("snake-case", AgentRun(0, {"stop_reason": "end_turn", "text": "How it works"}, ""), False, FAILED, NO_EDIT),
    ("snake-case", AgentRun(0, {"stop_reason": "end_turn"}, ""), True, FAILED, TESTS_FAILING),
    ("snake-case", AgentRun(7, {"stop_reason": "max_turns"}, ""), True, FAILED, TESTS_FAILING),
    ("snake-case", AgentRun(8, {"outcome": "tests_failing"}, "the agent finished but the tests still fail"), True,
     FAILED, TESTS_FAILING),
    ("snake-case", AgentRun(8, {"outcome": "tests_failing"}, ""), False, FAILED, NO_EDIT),
    ("snake-case", AgentRun(None, {}, ""), True, FAILED, TIMEOUT),
    ("snake-case", AgentRun(1, {}, "error: the agent run timed out after 180 s\n"), False, FAILED, TIMEOUT),
    ("snake-case", AgentRun(0, {"outcome": "timeout"}, ""), True, FAILED, TIMEOUT),
    ("snake-case", AgentRun(0, {"stop_reason": "repetition"}, ""), False, FAILED, REPETITION),
    ("snake-case", AgentRun(0, {"outcome": "stopped: repetition"}, ""), True, FAILED, REPETITION),
    ("snake-case", AgentRun(3, {}, "Traceback ...\nerror: model not installed\n"), False, FAILED, ERROR),
    ("count-lines", AgentRun(0, {"text": "18"}, ""), False, CheckResult(False, "answer"), WRONG_ANSWER),
    ("count-lines", AgentRun(0, {"text": "17"}, ""), False, PASSED, None),
])
def test_failures_are_classified(name: str, run: AgentRun, changed: bool, check: CheckResult,
                                 expected: str | None) -> None:
    assert classify(BY_NAME[name], run, changed, check) == expected


def test_the_runner_reads_the_json_and_its_verifications() -> None:
    body = {"text": "done", "turns": 3, "tool_calls": [], "verifications": [
        {"command": "python -m pytest -q", "passed": False, "exit_code": 1, "timed_out": False, "duration_s": 0.4,
         "summary": "1 failed"},
        {"command": "python -m pytest -q", "passed": True, "exit_code": 0, "timed_out": False, "duration_s": 0.4,
         "summary": "3 passed"}]}
    stdout = "some log line\n" + json.dumps(body) + "\n"
    assert runner.parse_body(stdout) == body
    assert runner.parse_body("not json") == {}
    assert runner.describe_verifications(body) == "2 runs, last passed"
    assert runner.describe_verifications({"text": "no field"}) == ""


def test_the_summary_gives_the_rate_per_kind_and_the_spread_across_runs() -> None:
    def outcome(run: int, task: str, kind: str, passed: bool) -> object:
        return runner.Outcome("m", run, task, kind, passed, None if passed else NO_EDIT, 10.0 * run, 2, ["Read"],
                              "", "")
    outcomes = [outcome(1, "a", "exercise", True), outcome(1, "b", "quick", False),
                outcome(2, "a", "exercise", True), outcome(2, "b", "quick", True),
                outcome(3, "a", "exercise", False), outcome(3, "b", "quick", False)]
    lines = runner.summarize("m", outcomes)
    assert "exercise     1 tasks  passed per run 1,1,0  min 0% / median 100% / max 100%" in lines
    assert "total        2 tasks  passed per run 1,2,0  min 0% / median 50% / max 100%" in lines
    assert "median 20.0 s per task, median 1 tool calls" in lines
    assert "failures: no_edit 3" in lines


def test_extra_flags_after_the_separator_reach_agentic_flow(tmp_path: Path) -> None:
    args, extra = runner.parse_args(["--tasks", "hello-py", "--cap", "20", "--", "--tool-choice", "any"])
    argv = runner.agent_argv(BY_NAME["hello-py"], "smollm2-135m", tmp_path, 20.0, args, extra)
    assert argv[-2:] == ["--tool-choice", "any"]
    assert argv[argv.index("--permission-mode") + 1] == "bypassPermissions"
    assert argv[argv.index("--temperature") + 1] == "0" and "--json" in argv
    assert "--max-turns" not in argv  # the agent's own default unless asked


def test_the_runner_stopped_mid_task_leaves_nothing_running(real_model_dir: Path) -> None:
    """SIGTERM to `scripts/agent_tasks.py` while a task runs: the task's agent and the suite's proxy (with
    its inference process) all end."""
    import signal
    import subprocess

    import psutil

    script = Path(__file__).parents[1] / "scripts" / "agent_tasks.py"
    proc = subprocess.Popen([sys.executable, str(script), "--model", str(real_model_dir), "--tasks", "hello-py",
                             "--cap", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen: dict[int, psutil.Process] = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
            if any("--agent" in _cmdline(p) for p in seen.values()):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the task's agent never started (exit {proc.poll()})")
        agents = [p for p in seen.values() if "--agent" in _cmdline(p)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
        # The task's agent was killed (and reaped) before the runner exited, not left to finish on its own.
        assert not [p for p in agents if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        _, alive = psutil.wait_procs(list(seen.values()), timeout=30)
        assert not alive, [_cmdline(p) for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()


def _cmdline(process: object) -> str:
    try:
        return " ".join(process.cmdline())  # type: ignore[attr-defined]
    except Exception:  # it ended meanwhile
        return ""
