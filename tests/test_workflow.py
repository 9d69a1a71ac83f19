"""The guided workflow (agents/workflow.py, agents/verify.py) against the scripted Messages API server:
act or finish, the task's files shown first, names kept, verify-and-retry, the nudge after a turn with
no call, and the CLI's --json / exit code for "done and tests pass" versus "done, tests fail"."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentic_flow.agents.client import AgentRun
from agentic_flow.agents.loop import (
    FINISHED,
    MAX_TURNS_REACHED,
    TESTS_FAILING,
    VERIFIED,
    Guide,
    LoopHooks,
    LoopResult,
    run_loop,
)
from agentic_flow.agents.tools import Permissions, Workspace, build_tools
from agentic_flow.agents.verify import CheckCommand, Verification, find_check, summarize
from agentic_flow.agents.workflow import (
    FINISH,
    GUIDED_NOTE,
    ImportFix,
    asks_for_change,
    fix_imports,
    lost_names,
    named_files,
    opening,
    unbound_names,
)
from agentic_flow.cli.main import app
from agentic_flow.errors import AgentError

from .scripted_api import Failure, ScriptedApi, partial, tool, turn

PY = sys.executable
STUB = "def double(n):\n    pass\n"
TEST = ("import unittest\nfrom calc import double\n\n\nclass T(unittest.TestCase):\n"
        "    def test_double(self):\n        self.assertEqual(double(2), 4)\n")
GOOD = "def double(n):\n    return 2 * n\n"
BAD = "def double(n):\n    return n + 1\n"
runner = CliRunner()


def exercise(root: Path) -> Path:
    (root / "calc.py").write_text(STUB)
    (root / "calc_test.py").write_text(TEST)
    (root / "notes.txt").write_text("nothing\n")
    return root


def check_for(root: Path) -> CheckCommand:
    return CheckCommand(f"{PY} -m unittest discover -s . -p '*_test.py'", "test", consented=True)


class Recorder(LoopHooks):
    def __init__(self) -> None:
        self.checks: list[Verification] = []

    def verified(self, verification: Verification) -> None:
        self.checks.append(verification)


def guided(api: ScriptedApi, root: Path, check: CheckCommand | None, *, max_turns: int = 8,
           hooks: LoopHooks | None = None, task: str = "Make double in calc.py work.") -> LoopResult:
    tools = build_tools(["Read", "Write", "Edit"], Workspace(root), Permissions(mode="acceptEdits"))
    request = AgentRun(base_url=api.url, api_key="k", model="m", system="You code.", task=task,
                       timeout=60, max_retries=0)
    guide = Guide(next(iter(tools.values())).context, check)
    return asyncio.run(run_loop(request, tools, hooks or LoopHooks(), max_turns=max_turns, guide=guide))


def run_cli(script: Any, root: Path, *extra: str) -> Any:
    """`agentic-flow --agent coder` against the scripted API: guided, the exercise's unittest check."""
    with ScriptedApi(*script) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "k"}
        args = ["--agent", "coder", "--task", "Fix calc.py", "--provider", "anthropic", "--workspace", str(root),
                "--permission-mode", "acceptEdits", "--workflow", "guided", "--json",
                "--verify", f"{PY} -m unittest discover -s . -p '*_test.py'", *extra]
        return runner.invoke(app, args, env=env)


def test_every_turn_must_call_one_tool_and_finish_is_offered(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    with ScriptedApi(turn(tool(FINISH, summary="done already")), turn(tool(FINISH, summary="nothing to do"))) as api:
        result = guided(api, root, None)
    premature = api.requests[1]["messages"][-1]["content"][0]
    assert premature["is_error"] and "you have not done anything yet" in premature["content"]
    first = api.requests[0]
    assert first["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [t["name"] for t in first["tools"]] == ["Read", "Write", "Edit", FINISH]
    assert first["system"] == "You code." + GUIDED_NOTE
    assert (result.outcome, result.text, result.turns) == (FINISHED, "nothing to do", 2)


def test_the_task_s_files_are_shown_and_the_others_listed(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    first = opening("Fix calc.py, please.", root)
    assert first.shown == ("calc.py",)
    assert f"calc.py\n```python\n{STUB.rstrip()}\n```" in first.text
    assert "- calc_test.py" in first.text and "- notes.txt" in first.text
    assert "return" not in first.text.split("calc.py\n```python")[0]  # the test file is listed, not shown


def test_a_passing_check_after_a_change_ends_the_run(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    hooks = Recorder()
    with ScriptedApi(turn(tool("Write", file_path="calc.py", content=GOOD))) as api:
        result = guided(api, root, check_for(root), hooks=hooks)
    assert len(api.requests) == 1  # no turn spent on a summary
    assert result.outcome == VERIFIED and result.files_changed == ("calc.py",)
    assert [v.passed for v in result.verifications] == [True] and hooks.checks == list(result.verifications)
    assert "the tests pass" in result.text and "calc.py" in result.text


def test_a_failing_check_is_sent_back_and_the_fix_is_verified(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Write", file_path="calc.py", content=BAD)),
              turn(tool("Write", file_path="calc.py", content=GOOD)))
    with ScriptedApi(*script) as api:
        result = guided(api, root, check_for(root))
    sent = api.requests[1]["messages"][-1]["content"]
    assert sent[0]["type"] == "tool_result" and not sent[0]["is_error"]
    assert sent[1]["type"] == "text" and "FAIL" in sent[1]["text"] and "AssertionError: 3 != 4" in sent[1]["text"]
    assert [v.passed for v in result.verifications] == [False, True]
    assert result.outcome == VERIFIED and (root / "calc.py").read_text() == GOOD


def test_finish_over_failing_tests_forces_a_write_then_ends_as_tests_failing(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Read", file_path="calc.py")), turn(tool(FINISH, summary="done")),
              turn(tool("Write", file_path="calc.py", content=BAD)),
              turn(tool(FINISH, summary="really done")), turn(tool(FINISH, summary="really, really")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, check_for(root))
    api.requests.pop(0)  # the Read's turn
    refusal = api.requests[1]["messages"][-1]["content"][0]
    assert refusal["is_error"] and refusal["content"].startswith("Not finished: I ran the tests")
    assert "You have not changed any file yet" in refusal["content"]
    # Nothing was changed: the next turn must be a Write; after its failing check, the next one too.
    forced = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
    assert api.requests[1]["tool_choice"] == forced and api.requests[2]["tool_choice"] == forced
    assert api.requests[3]["tool_choice"]["type"] == "any"
    second = api.requests[3]["messages"][-1]["content"][0]
    assert second["is_error"] and "You have not changed" not in second["content"]
    assert result.outcome == TESTS_FAILING and result.text == "really, really"
    assert len(result.verifications) == 2  # after the Write; the Finishes reuse it


def test_a_write_that_drops_an_existing_name_is_reported(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    renamed = "def twice(n):\n    return 2 * n\n"
    script = (turn(tool("Write", file_path="calc.py", content=renamed)), turn(tool(FINISH, summary="ok")))
    with ScriptedApi(*script) as api:
        guided(api, root, None)
    result = api.requests[1]["messages"][-1]["content"][0]["content"]
    assert "no longer defines double" in result
    assert lost_names("a.py", "def f():\n    pass\n", "def f(:\n").startswith("\nWarning: a.py is not valid")
    assert lost_names("a.txt", "x", "y") == "" and lost_names("a.py", None, "def g():\n    pass\n") == ""


def test_a_turn_cut_at_max_tokens_gets_a_nudge_that_changes_the_prompt(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(partial("Write", '{"file_path": "calc.py", "content": "def double'), stop_reason="max_tokens"),
              turn(tool(FINISH, summary="stopped")), turn(tool(FINISH, summary="stopped")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None)
    second = api.requests[1]["messages"]
    assert second[-1]["role"] == "user" and len(second) == 1  # no empty assistant turn was kept
    assert "cut off at the length limit" in second[-1]["content"][-1]["text"]
    assert result.outcome == FINISHED


def test_max_turns_bounds_a_guided_run(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    with ScriptedApi(turn(tool("Read", file_path="calc.py")), repeat_last=True) as api:
        result = guided(api, root, None, max_turns=3)
    assert len(api.requests) == 3 and result.stop_reason == MAX_TURNS_REACHED


def test_find_check_prefers_the_named_command_and_finds_tests(tmp_path: Path) -> None:
    assert find_check(tmp_path, None) is None
    named = find_check(tmp_path, "make check")
    assert named == CheckCommand("make check", "--verify", consented=True)
    exercise(tmp_path)
    found = find_check(tmp_path, None, python=PY)
    assert found is not None and not found.consented and found.source == "found 1 test file"
    assert "-m pytest" in found.command or "unittest discover" in found.command


def test_summaries_read_the_runner_s_verdict() -> None:
    assert summarize("...\n===== 2 failed, 7 passed in 0.12s =====\n", 1) == "2 failed, 7 passed in 0.12s"
    assert summarize("F\n----\nRan 3 tests in 0.001s\n\nFAILED (failures=1)\n", 1) == \
        "ran 3 tests: FAILED (failures=1)"
    assert summarize("boom\n", 2) == "boom (exit 2)"


def test_a_check_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    hang = CheckCommand(f"{PY} -c 'import time; time.sleep(60)'", "test", consented=True)
    tools = build_tools(["Read"], Workspace(root), Permissions(mode="acceptEdits"))
    from agentic_flow.agents.verify import run_check

    started = asyncio.run(run_check(hang, next(iter(tools.values())).context, timeout_s=1.0))
    assert started.timed_out and not started.passed and started.duration_s < 10


def test_an_unconsented_check_asks_and_is_refused_without_a_terminal(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    found = CheckCommand(f"{PY} -m unittest discover -s . -p '*_test.py'", "found", consented=False)
    script = (turn(tool("Write", file_path="calc.py", content=GOOD)), turn(tool(FINISH, summary="done")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, found)
    assert result.verifications[0].refused and "needs permission" in result.verifications[0].summary
    assert "--verify CMD" in api.requests[1]["messages"][-1]["content"][-1]["text"]
    assert result.outcome == FINISHED  # nothing could be checked: the model's word is all there is


@pytest.mark.parametrize(("content", "code", "outcome"), [(GOOD, 0, VERIFIED), (BAD, 8, TESTS_FAILING)])
def test_cli_json_and_exit_code_tell_verified_from_failing(tmp_path: Path, content: str, code: int,
                                                           outcome: str) -> None:
    (tmp_path / "ws").mkdir()
    root = exercise(tmp_path / "ws")
    script = [turn(tool("Write", file_path="calc.py", content=content))]
    script += [turn(tool(FINISH, summary="done"))] * 3
    done = run_cli(script, root)
    assert done.exit_code == code, done.output
    body = json.loads(done.stdout.strip().splitlines()[-1])
    assert body["outcome"] == outcome and body["files_changed"] == ["calc.py"]
    assert body["verifications"][0]["command"].endswith("-p '*_test.py'")
    assert body["verifications"][-1]["passed"] is (code == 0)


def test_a_repeated_call_is_answered_not_run_and_search_tools_are_dropped(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    read = tool("Read", file_path="calc.py")
    script = (turn(read), turn(tool("Read", file_path="calc.py")), turn(tool(FINISH, summary="ok")))
    with ScriptedApi(*script) as api:
        tools = build_tools(["Read", "Glob", "Grep", "Write"], Workspace(root), Permissions(mode="acceptEdits"))
        request = AgentRun(base_url=api.url, api_key="k", model="m", system="s", task="t", timeout=60, max_retries=0)
        guide = Guide(next(iter(tools.values())).context, None)
        result = asyncio.run(run_loop(request, tools, LoopHooks(), guide=guide))
    assert [t["name"] for t in api.requests[0]["tools"]] == ["Read", "Write", FINISH]
    again = api.requests[2]["messages"][-1]["content"][0]
    assert again["is_error"] and "already made this exact Read call" in again["content"]
    assert [c.summary.endswith("not run: a repeated call") for c in result.tool_calls] == [False, True]


def test_cli_json_reports_what_was_done_when_the_run_times_out(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Write", file_path="calc.py", content=GOOD.replace("2 * n", "n"))),
              turn(tool("Bash", command=f"{PY} -c 'import time; time.sleep(30)'")))
    with ScriptedApi(*script) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "k"}
        args = ["--agent", "coder", "--task", "Fix calc.py", "--provider", "anthropic", "--workspace", str(root),
                "--permission-mode", "bypassPermissions", "--workflow", "guided", "--json", "--timeout", "4",
                "--verify", f"{PY} -m unittest discover -s . -p '*_test.py'"]
        done = runner.invoke(app, args, env=env)
    assert done.exit_code == 1
    body = json.loads(done.stdout.strip().splitlines()[-1])
    assert body["outcome"] == "timeout" and body["files_changed"] == ["calc.py"]
    assert [v["passed"] for v in body["verifications"]] == [False]


def read_only_folder(root: Path) -> Path:
    """A folder on a read-only file system holding the exercise (chmod does not stop root: a mount does)."""
    import os
    import subprocess

    folder = root / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        exercise(folder)
        os.chmod(folder, 0o555)
        return folder
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only folder here: mount failed ({mounted.stderr.decode().strip()})")
    exercise(folder)
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    return folder


def release(folder: Path) -> None:
    import os
    import subprocess

    if os.geteuid() == 0:
        subprocess.run(["umount", str(folder)], check=False)
    else:
        os.chmod(folder, 0o755)


def test_a_read_only_workspace_is_named_up_front_and_writes_fail_cleanly(tmp_path: Path) -> None:
    root = read_only_folder(tmp_path)
    try:
        script = (turn(tool("Write", file_path="new.py", content=GOOD)), turn(tool(FINISH, summary="done")))
        with ScriptedApi(*script) as api:
            env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "k"}
            args = ["--agent", "coder", "--task", "Fix calc.py", "--provider", "anthropic", "--workspace",
                    str(root), "--permission-mode", "acceptEdits", "--workflow", "guided", "--json"]
            done = runner.invoke(app, args, env=env)
        assert "is read-only: Write and Edit will fail" in " ".join(done.stderr.split())  # wrapped to the width
        body = json.loads(done.stdout.strip().splitlines()[-1])
        assert body["tool_calls"][0]["is_error"] and body["files_changed"] == []
        assert "Read-only file system" in body["tool_calls"][0]["summary"] or "ermission" in \
            body["tool_calls"][0]["summary"]
    finally:
        release(root)


def test_a_turn_that_fails_transiently_is_run_again_and_reported(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    # The client itself tries three times (1 + its 2 retries): the loop's turn retry takes over after that.
    script = (Failure(), Failure(), Failure(503, "api_error"), turn(tool("Write", file_path="calc.py", content=GOOD)))
    done = run_cli(script, root)
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout.strip().splitlines()[-1])
    assert body["outcome"] == "verified"
    assert [(r["error_type"], r["status"], r["shown"]) for r in body["retries"]] == [("api_error", 503, False)]
    assert done.stderr.count("running the turn again") == 1


def test_turn_retries_are_bounded(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    with ScriptedApi(*([Failure()] * 6)) as api, pytest.raises(AgentError, match="overloaded_error"):
        guided(api, root, None)
    assert len(api.requests) == 4  # the first try and three more


def test_a_request_the_server_refuses_is_not_run_again(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (Failure(400, "invalid_request_error"), turn(tool(FINISH, summary="x")))
    with ScriptedApi(*script) as api, pytest.raises(AgentError, match="invalid_request_error"):
        guided(api, root, None)
    assert len(api.requests) == 1


def test_a_premature_finish_in_an_empty_folder_forces_a_write(tmp_path: Path) -> None:
    script = (turn(tool(FINISH, summary="Created it and the tests pass.")),
              turn(tool("Write", file_path="calc.py", content=GOOD)), turn(tool(FINISH, summary="done")))
    with ScriptedApi(*script) as api:
        result = guided(api, tmp_path, None, task="Create calc.py with double(n).")
    assert api.requests[1]["tool_choice"] == {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
    assert result.files_changed == ("calc.py",) and result.text == "done"


def test_turns_in_a_row_without_a_call_end_the_run(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    cut = turn(partial("Write", '{"file_path": "calc.py", "cont'), stop_reason="max_tokens")
    with ScriptedApi(cut, repeat_last=True) as api:
        result = guided(api, root, None, max_turns=20)
    assert len(api.requests) == 3 and result.stop_reason == MAX_TURNS_REACHED and result.outcome == "max_turns"


def test_writes_forced_after_failing_checks_are_bounded(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    bad = [turn(tool("Write", file_path="calc.py", content=f"def double(n):\n    return n + {10 * i}\n"))
           for i in range(1, 5)]
    with ScriptedApi(*bad, turn(tool("Write", file_path="calc.py", content=GOOD))) as api:
        result = guided(api, root, check_for(root))
    choices = [r["tool_choice"]["type"] for r in api.requests]
    assert choices == ["any", "tool", "tool", "any", "any"]  # two forced fixes, then the model chooses
    assert result.outcome == VERIFIED


def test_a_finish_with_files_the_task_asked_for_missing_is_answered_once(tmp_path: Path) -> None:
    task = "Create calc.py with double(n), and calc_test.py that tests it with unittest."
    script = (turn(tool("Write", file_path="calc.py", content=GOOD)),
              turn(tool(FINISH, summary="Created both; the tests pass.")),
              turn(tool("Write", file_path="calc_test.py", content=TEST)), turn(tool(FINISH, summary="Both.")))
    with ScriptedApi(*script) as api:
        result = guided(api, tmp_path, None, task=task)
    answer = api.requests[2]["messages"][-1]["content"][0]
    assert answer["is_error"] and "the task names calc_test.py, which the folder does not hold" in answer["content"]
    assert api.requests[2]["tool_choice"] == {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
    # The tests found once written are not run without consent (Bash is not allowed here): Finish ends it.
    assert result.outcome == FINISHED and result.text == "Both."
    assert result.files_changed == ("calc.py", "calc_test.py") and result.verifications[0].refused


def test_the_missing_files_answer_is_given_once_and_not_for_files_that_existed(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    task = "Rename calc.py to maths.py and add docs.md."
    script = (turn(tool("Read", file_path="calc.py")), turn(tool(FINISH, summary="done")),
              turn(tool(FINISH, summary="done, really")), turn(tool(FINISH, summary="done, really!")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None, task=task)
    answer = api.requests[2]["messages"][-1]["content"][0]["content"]
    assert "maths.py, docs.md" in answer and "calc.py" not in answer.split("which")[0]
    # Then the one answer to a Finish with nothing changed on a task that asks for a change.
    assert "no file has changed" in api.requests[3]["messages"][-1]["content"][0]["content"]
    assert result.outcome == FINISHED and result.text == "done, really!"
    assert named_files("Edit src/app.ts and calc.py, not foo.pyc; see notes.md.") == ["src/app.ts", "calc.py",
                                                                                   "notes.md"]


def test_a_missing_import_of_a_folder_module_s_name_is_added_and_said(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    no_import = TEST.replace("from calc import double\n", "") + "\n\nprint(triple(3))\n"
    script = (turn(tool("Write", file_path="calc_test.py", content=no_import)), turn(tool(FINISH, summary="ok")))
    notes: list[str] = []

    class Notes(LoopHooks):
        def note(self, line: str) -> None:
            notes.append(line)

    with ScriptedApi(*script) as api:
        guided(api, root, None, hooks=Notes())
    said = api.requests[1]["messages"][-1]["content"][0]["content"]
    assert "I added `from calc import double` at the top of calc_test.py" in said
    assert notes == ["I added `from calc import double` to calc_test.py"]  # the user's line on stderr
    assert "calc_test.py uses triple, which it neither defines nor imports" in said
    written = (root / "calc_test.py").read_text()
    assert written.startswith("import unittest\nfrom calc import double\n\n")
    assert written == no_import.replace("import unittest\n", "import unittest\nfrom calc import double\n", 1)


def test_import_fixes_respect_docstrings_star_imports_and_ambiguity(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    pass\n\n\ndef g():\n    pass\n")
    (tmp_path / "b.py").write_text("def g():\n    pass\n")
    fix = fix_imports("t.py", '"""Doc."""\nimport os\nprint(f(), g(), os)', tmp_path)
    assert fix.source == '"""Doc."""\nimport os\nfrom a import f\nprint(f(), g(), os)'
    assert "uses g, which it neither" in fix.note  # two modules define g: not guessed
    assert fix_imports("t.py", "print(f())", tmp_path).source == "from a import f\nprint(f())"
    assert fix_imports("t.py", "from m import *\nprint(f())", tmp_path) == ImportFix(None, "")
    assert fix_imports("t.txt", "print(f())", tmp_path) == ImportFix(None, "")
    source = ("import os.path\ndef f(x, *a, k=1, **kw):\n    y = [i for i in range(x)]\n    try:\n        pass\n"
              "    except OSError as e:\n        print(e)\n    return os.path, y, z, __name__\n")
    assert unbound_names(source) == ["z"] and unbound_names("def f(:\n") is None


def test_a_write_of_identical_content_says_so_and_is_not_a_change(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Write", file_path="calc.py", content=STUB)),
              *(turn(tool(FINISH, summary=f"ok {i}")) for i in range(3)))
    with ScriptedApi(*script) as api:
        result = guided(api, root, check_for(root))
    said = api.requests[1]["messages"][-1]["content"][0]["content"]
    assert "already held exactly this content, so nothing changed" in said
    assert result.files_changed == () and len(result.verifications) == 1  # only the first Finish's check
    assert "You have not changed any file yet" in api.requests[2]["messages"][-1]["content"][0]["content"]


def test_without_json_a_guided_run_s_summary_is_on_stdout(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Write", file_path="calc.py", content=GOOD)),)
    with ScriptedApi(*script) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "k"}
        args = ["--agent", "coder", "--task", "Fix calc.py", "--provider", "anthropic", "--workspace", str(root),
                "--permission-mode", "acceptEdits", "--workflow", "guided",
                "--verify", f"{PY} -m unittest discover -s . -p '*_test.py'"]
        done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == "Changed calc.py; the tests pass (ran 1 tests: OK)."
    assert "● Write calc.py" in done.stderr and "tests pass" in done.stderr


def test_a_finish_with_nothing_changed_on_a_change_task_is_answered_once(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    task = "Add a function triple(n) to calc.py. Keep double."
    script = (turn(tool("Read", file_path="calc.py")), turn(tool(FINISH, summary="Added it.")),
              turn(tool(FINISH, summary="Added it, really.")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None, task=task)
    answer = api.requests[2]["messages"][-1]["content"][0]
    assert answer["is_error"] and "no file has changed, and the task asks for a change" in answer["content"]
    assert api.requests[2]["tool_choice"] == {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
    assert result.outcome == FINISHED and result.text == "Added it, really." and len(api.requests) == 3


def test_a_question_may_finish_without_a_change(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Read", file_path="calc.py")), turn(tool(FINISH, summary="It returns None.")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None, task="What does double in calc.py return? Explain in one sentence.")
    assert result.outcome == FINISHED and len(api.requests) == 2
    assert asks_for_change("The tests fail. Find the bug in stats.py and fix it.")
    assert asks_for_change("In README.md, change the version from 1.0 to 2.0.")
    assert not asks_for_change("In which file is parse_config defined? Answer with the file's path.")
    assert not asks_for_change("List the Python files in this folder.")


def test_a_finish_after_a_change_that_dropped_names_is_answered_once(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    replaced = "def triple(n):\n    return 3 * n\n"
    both = GOOD + "\n\n" + replaced
    script = (turn(tool("Write", file_path="calc.py", content=replaced)), turn(tool(FINISH, summary="Added.")),
              turn(tool("Write", file_path="calc.py", content=both)), turn(tool(FINISH, summary="Both.")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None, task="Add a function triple(n) to calc.py. Keep the existing one.")
    answer = api.requests[2]["messages"][-1]["content"][0]
    assert answer["is_error"] and "calc.py no longer defines double, which it defined before" in answer["content"]
    assert api.requests[2]["tool_choice"] == {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
    assert result.outcome == FINISHED and result.text == "Both." and (root / "calc.py").read_text() == both


def test_a_name_the_task_mentions_may_go(tmp_path: Path) -> None:
    root = exercise(tmp_path)
    script = (turn(tool("Write", file_path="calc.py", content=GOOD.replace("double", "twice"))),
              turn(tool(FINISH, summary="Renamed.")))
    with ScriptedApi(*script) as api:
        result = guided(api, root, None, task="Rename double to twice in calc.py.")
    assert result.outcome == FINISHED and result.text == "Renamed." and len(api.requests) == 2


def test_a_check_leaves_no_empty_folder_of_its_own(tmp_path: Path) -> None:
    from agentic_flow.agents.verify import run_check

    root = exercise(tmp_path)
    (root / "kept").mkdir()  # empty, but there before the check
    check = CheckCommand("mkdir .benchmarks out && echo x > out/log && true", "test", consented=True)
    tools = build_tools(["Read"], Workspace(root), Permissions(mode="acceptEdits"))
    verdict = asyncio.run(run_check(check, next(iter(tools.values())).context))
    assert verdict.passed
    assert not (root / ".benchmarks").exists() and (root / "out" / "log").is_file() and (root / "kept").is_dir()
