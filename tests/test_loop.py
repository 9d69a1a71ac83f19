"""The agent loop against a scripted Messages API server (tests/scripted_api.py): a real HTTP server in
the real wire format, streaming and JSON, with the real tools in a temporary workspace.

The library-level tests pin the exact multi-turn sequences (what each request carried); the CLI tests
run `agentic-flow` in-process (CliRunner) for flags, exit codes and --json, and as a real subprocess for
the stdout/stderr split and for Ctrl-C and --timeout while Bash runs (nothing may outlive the command).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from agentic_flow.agents.client import AgentRun
from agentic_flow.agents.loop import MAX_TURNS_REACHED, TOOLS_NOTE, LoopHooks, LoopResult, run_loop
from agentic_flow.agents.tools import Permissions, Workspace, build_tools
from agentic_flow.cli.main import app

from .scripted_api import ScriptedApi, partial, text, tool, turn

AGENTIC_FLOW = str(Path(sys.executable).parent / "agentic-flow")
MODEL = "claude-test-model"
runner = CliRunner()


def loop(api: ScriptedApi, workspace: Path, names: list[str], *, stream: bool = True,
         mode: str = "acceptEdits", max_turns: int = 20) -> LoopResult:
    tools = build_tools(names, Workspace(workspace), Permissions(mode=mode))  # type: ignore[arg-type]
    request = AgentRun(base_url=api.url, api_key="sk-test", model=MODEL, system="You are a coder.",
                       task="Create hello.py", stream=stream, timeout=30, max_retries=0)
    return asyncio.run(run_loop(request, tools, LoopHooks(), max_turns=max_turns))


# ---------------------------------------------------------------- exact sequences


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_write_then_read_then_answer(tmp_path: Path, stream: bool) -> None:
    write = tool("Write", file_path="hello.py", content="print('hello world')\n")
    read = tool("Read", file_path="hello.py")
    script = (turn(text("I will create it."), write), turn(read), turn(text("Created hello.py.")))
    with ScriptedApi(*script) as api:
        result = loop(api, tmp_path, ["Read", "Write"], stream=stream)
    assert (tmp_path / "hello.py").read_text() == "print('hello world')\n"
    first, second, third = api.requests
    assert first["system"] == "You are a coder." + TOOLS_NOTE
    assert [t["name"] for t in first["tools"]] == ["Read", "Write"]
    assert "tool_choice" not in first
    assert first["messages"] == [{"role": "user", "content": "Create hello.py"}]
    assert second["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "I will create it."},
            {"type": "tool_use", "id": write.id, "name": "Write", "input": write.input}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": write.id, "is_error": False,
             "content": second["messages"][2]["content"][0]["content"]}]},
    ]
    assert "hello.py" in second["messages"][2]["content"][0]["content"]
    read_result = third["messages"][4]["content"][0]
    assert read_result["tool_use_id"] == read.id and read_result["is_error"] is False
    assert "print('hello world')" in read_result["content"]
    assert (result.text, result.stop_reason, result.turns) == ("Created hello.py.", "end_turn", 3)
    assert [c.name for c in result.tool_calls] == ["Write", "Read"]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (600, 30)


def test_several_calls_in_one_turn_run_in_order(tmp_path: Path) -> None:
    calls = [tool("Write", file_path="a.txt", content="one"),
             tool("Edit", file_path="a.txt", old_string="one", new_string="two"),
             tool("Read", file_path="a.txt")]
    with ScriptedApi(turn(*calls), turn(text("ok"))) as api:
        result = loop(api, tmp_path, ["Read", "Write", "Edit"])
    results = api.requests[1]["messages"][2]["content"]
    assert [r["tool_use_id"] for r in results] == [c.id for c in calls]
    assert [r["is_error"] for r in results] == [False, False, False]
    assert "two" in results[2]["content"]
    assert (tmp_path / "a.txt").read_text() == "two"
    assert result.tool_calls[1].summary and not result.tool_calls[1].is_error


def test_an_invented_tool_is_an_error_result_naming_the_tools(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("DeleteEverything", path=".")), turn(text("sorry"))) as api:
        result = loop(api, tmp_path, ["Read", "Grep"])
    sent = api.requests[1]["messages"][2]["content"][0]
    assert sent["is_error"] is True
    assert sent["content"] == "there is no tool named 'DeleteEverything'; the tools are: Read, Grep"
    assert result.stop_reason == "end_turn" and result.tool_calls[0].is_error


def test_a_failing_call_is_an_error_result_and_the_run_goes_on(tmp_path: Path) -> None:
    script = (turn(tool("Read", file_path="../outside.txt")), turn(tool("Edit", file_path="x.py")),
              turn(text("gave up")))
    with ScriptedApi(*script) as api:
        result = loop(api, tmp_path, ["Read", "Edit"])
    escape = api.requests[1]["messages"][2]["content"][0]
    bad_input = api.requests[2]["messages"][4]["content"][0]
    assert escape["is_error"] and "outside the workspace" in escape["content"]
    assert bad_input["is_error"] and "missing required field 'old_string'" in bad_input["content"]
    assert result.text == "gave up"


def test_max_turns_stops_a_model_that_never_stops(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with ScriptedApi(turn(tool("Read", file_path="f.txt")), repeat_last=True) as api:
        result = loop(api, tmp_path, ["Read"], max_turns=3)
    assert len(api.requests) == 3
    assert result.stop_reason == MAX_TURNS_REACHED and result.stopped_at_max_turns
    assert len(result.tool_calls) == 2  # the third turn's call is not run: nobody would see its result


def test_at_max_tokens_complete_calls_run_and_a_cut_one_is_dropped(tmp_path: Path) -> None:
    whole = tool("Write", file_path="a.txt", content="a")
    cut = partial("Write", '{"file_path": "b.txt", "cont')
    with ScriptedApi(turn(whole, cut, stop_reason="max_tokens"), turn(text("ok"))) as api:
        result = loop(api, tmp_path, ["Write"])
    assert (tmp_path / "a.txt").read_text() == "a" and not (tmp_path / "b.txt").exists()
    history = api.requests[1]["messages"]
    assert [b["id"] for b in history[1]["content"]] == [whole.id]
    assert [b["tool_use_id"] for b in history[2]["content"]] == [whole.id]
    assert [c.name for c in result.tool_calls] == ["Write"] and result.text == "ok"


def test_plan_mode_refuses_a_write_and_says_so(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Write", file_path="x.py", content="")), turn(text("ok"))) as api:
        loop(api, tmp_path, ["Write"], mode="plan")
    sent = api.requests[1]["messages"][2]["content"][0]
    assert sent["is_error"] and "not allowed in plan mode" in sent["content"]
    assert not (tmp_path / "x.py").exists()


# ---------------------------------------------------------------- the command


def cli_env(api: ScriptedApi) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test", "PROVIDER": "anthropic"}


def main_args(workspace: Path, *extra: str) -> list[str]:
    return ["--agent", "coder", "--task", "Create hello.py", "--model", MODEL, "--workspace", str(workspace),
            *extra]


def test_without_a_terminal_a_write_is_refused_with_the_flag_that_allows_it(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Write", file_path="hello.py", content="x")), turn(text("Could not."))) as api:
        result = runner.invoke(app, main_args(tmp_path), env=cli_env(api))
    assert result.exit_code == 0, result.output
    message = "Write needs permission: rerun with --permission-mode acceptEdits or --allow-tools Write"
    assert message in result.stderr
    sent = api.requests[1]["messages"][2]["content"][0]
    assert sent["is_error"] is True and sent["content"] == message
    assert not (tmp_path / "hello.py").exists()


def test_allow_tools_grants_up_front(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Write", file_path="hello.py", content="x")), turn(text("Done."))) as api:
        result = runner.invoke(app, main_args(tmp_path, "--allow-tools", "Write"), env=cli_env(api))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hello.py").read_text() == "x"


def test_max_turns_exits_7(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Glob", pattern="*")), repeat_last=True) as api:
        result = runner.invoke(app, main_args(tmp_path, "--max-turns", "2"), env=cli_env(api))
    assert result.exit_code == 7, result.output
    assert "stopped after 2 turns (--max-turns)" in result.stderr
    assert len(api.requests) == 2


def test_json_gives_one_object_with_every_call(tmp_path: Path) -> None:
    script = (turn(text("Writing."), tool("Write", file_path="hello.py", content="print(1)\n")),
              turn(tool("Nope")), turn(text("Done.")))
    with ScriptedApi(*script) as api:
        result = runner.invoke(app, main_args(tmp_path, "--permission-mode", "acceptEdits", "--json"),
                               env=cli_env(api))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["text"] == "Done." and body["stop_reason"] == "end_turn" and body["turns"] == 3
    assert body["usage"] == {"input_tokens": 600, "output_tokens": 30, "cache_read_input_tokens": 0}
    write, nope = body["tool_calls"]
    assert write["name"] == "Write" and write["input"] == {"file_path": "hello.py", "content": "print(1)\n"}
    assert write["is_error"] is False and "hello.py" in write["summary"]
    assert isinstance(write["duration_s"], float)
    assert nope["is_error"] is True and nope["input"] == {}
    assert set(body) >= {"agent", "provider", "model", "timings", "request_id"}


def test_tool_choice_applies_to_the_first_turn_and_tools_narrow(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Grep", pattern="x")), turn(text("none"))) as api:
        result = runner.invoke(app, main_args(tmp_path, "--tools", "Read,Grep", "--tool-choice", "any"),
                               env=cli_env(api))
    assert result.exit_code == 0, result.output
    assert [t["name"] for t in api.requests[0]["tools"]] == ["Read", "Grep"]
    assert api.requests[0]["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "tool_choice" not in api.requests[1]


def test_tools_cannot_add_a_tool_the_agent_lacks(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--agent", "reviewer", "--task", "x", "--tools", "Bash", "--provider", "onnx"])
    assert result.exit_code == 2
    assert "--tools Bash: the reviewer agent does not have it" in result.stderr


def test_an_agent_without_tools_makes_one_call_as_before(tmp_path: Path) -> None:
    with ScriptedApi(turn(text("Just text."))) as api:
        result = runner.invoke(app, main_args(tmp_path, "--tools", ""), env=cli_env(api))
    assert result.exit_code == 0, result.output
    assert result.stdout == "Just text.\n"
    (only,) = api.requests
    assert "tools" not in only and only["system"].endswith(TOOLS_NOTE) is False


def test_agents_show_lists_the_tools() -> None:
    result = runner.invoke(app, ["agents", "show", "coder"])
    assert result.exit_code == 0
    assert "tools: Read, Write, Edit, Bash, Grep, Glob" in result.stderr


# ---------------------------------------------------------------- real subprocesses


def run_cli(api: ScriptedApi, args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, **cli_env(api)}
    return subprocess.Popen([AGENTIC_FLOW, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_stdout_is_the_answer_and_tool_lines_go_to_stderr(tmp_path: Path) -> None:
    script = (turn(text("Let me write it.\n"), tool("Write", file_path="hello.py", content="print(1)\n")),
              turn(tool("Edit", file_path="hello.py", old_string="print(1)", new_string="print(2)")),
              turn(text("Created hello.py.")))
    with ScriptedApi(*script) as api:
        proc = run_cli(api, main_args(tmp_path, "--permission-mode", "acceptEdits"))
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout == "Let me write it.\nCreated hello.py.\n"
    assert "● Write hello.py" in stderr and "● Edit hello.py" in stderr  # one line per call
    assert "-print(1)" in stderr and "+print(2)" in stderr  # and the edit's diff


BASH_THAT_HANGS = "echo $$ > bash.pid; (sleep 300; echo late > late.txt) & echo $! > child.pid; wait"


def start_hanging_bash(api: ScriptedApi, workspace: Path, *extra: str) -> tuple[subprocess.Popen[str], list[int]]:
    proc = run_cli(api, main_args(workspace, "--permission-mode", "bypassPermissions", *extra))
    deadline = time.monotonic() + 60
    pids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        files = [workspace / "bash.pid", workspace / "child.pid"]
        if all(f.exists() and f.read_text().strip() for f in files):
            pids = [int(f.read_text()) for f in files]
            break
        time.sleep(0.05)  # polling for the files the command writes
    assert pids, f"bash did not start: {proc.communicate(timeout=10)}"
    return proc, pids


def survivors(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_ctrl_c_while_bash_runs_kills_its_tree(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Bash", command=BASH_THAT_HANGS)), turn(text("never"))) as api:
        proc, pids = start_hanging_bash(api, tmp_path)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert survivors(pids) == []
    assert len(api.requests) == 1


def test_timeout_while_bash_runs_kills_its_tree(tmp_path: Path) -> None:
    with ScriptedApi(turn(tool("Bash", command=BASH_THAT_HANGS)), turn(text("never"))) as api:
        proc, pids = start_hanging_bash(api, tmp_path, "--timeout", "3")
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert "the agent run timed out after 3 s" in stderr
    assert survivors(pids) == []
