"""The agent loop on the real default model (SmolLM2-135M) through the real proxy: with the first turn
forced to call Write (`--tool-choice Write`, which the proxy's grammar enforces), even the 135M creates a
file in the workspace.  A short agent file keeps the prompt small; greedy decoding keeps it repeatable."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentic_flow.cli.main import app

from .conftest import ProxyFactory

FILER = """---
name: filer
description: Creates the files it is asked for
tools: [Write]
temperature: 0
max_tokens: 60
---
You create files with the Write tool.
"""


def test_the_135m_creates_a_file_through_the_loop(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    agents, workspace = tmp_path / "agents", tmp_path / "ws"
    agents.mkdir()
    workspace.mkdir()
    (agents / "filer.md").write_text(FILER)
    args = ["--agents-dir", str(agents), "--agent", "filer", "--provider", "onnx", "--workspace", str(workspace),
            "--task", "Create the file note.txt containing the word hi.", "--permission-mode", "acceptEdits",
            "--tool-choice", "Write", "--max-turns", "2", "--json", "--workflow", "free"]
    with proxy_factory() as proxy:
        result = CliRunner().invoke(app, args, env={"ONNX_PROXY_URL": proxy.url})
    assert result.exit_code in (0, 7), result.output
    body = json.loads(result.stdout)
    first = body["tool_calls"][0]
    assert first["name"] == "Write" and first["is_error"] is False
    written = workspace / first["input"]["file_path"]
    assert written.is_file() and written.read_text() == first["input"]["content"]
    assert "hi" in written.read_text().lower()


def test_the_135m_never_answers_in_prose_in_a_guided_run(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    """Guided (the default on the local model): every turn must be a tool call, so no turn of prose
    reaches the user; the run ends with Finish or at the turn limit.  (Measured: the 135M calls Finish at
    once and loops inside its summary, which the repetition guard cuts; the 1.5B is what does the work.)"""
    agents, workspace = tmp_path / "agents", tmp_path / "ws"
    agents.mkdir()
    workspace.mkdir()
    (agents / "filer.md").write_text(FILER)
    args = ["--agents-dir", str(agents), "--agent", "filer", "--provider", "onnx", "--workspace", str(workspace),
            "--task", "Create the file note.txt containing the word hi.", "--permission-mode", "acceptEdits",
            "--max-turns", "2", "--json", "--workflow", "guided"]  # the 135M's own default is free
    with proxy_factory() as proxy:
        result = CliRunner().invoke(app, args, env={"ONNX_PROXY_URL": proxy.url})
    assert result.exit_code in (0, 7), result.output
    body = json.loads(result.stdout)
    assert body["outcome"] in ("finished", "max_turns"), body
    assert body["outcome"] == "finished" or body["text"] == ""  # the run's answer is never a turn of prose
    assert len(body["tool_calls"]) <= body["turns"]
