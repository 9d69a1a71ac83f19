"""Planning the main job (agents/plan.py): which agent, provider, model and local proxy settings run,
decided once from the resolved settings before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentic_flow.agents.plan import Hooks, Plan, TaskOptions, find_agent, plan, prepare
from agentic_flow.launcher import supervisor
from agentic_flow.settings import Origin, Provider, run_settings


def test_optimize_plans_by_priority_and_keeps_the_configured_local_model(real_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    settings = run_settings(env={"ONNX_MODEL_PATH": str(real_model_dir), "ANTHROPIC_API_KEY": "k"})
    spec = find_agent("coder", settings, tmp_path)
    private = plan(TaskOptions("coder", "hi", optimize=True, priority="privacy"), settings, spec)
    # The store is empty: the optimizer's local pick runs on the folder ONNX_MODEL_PATH names.
    assert (private.provider.value, private.model) == ("onnx", str(real_model_dir))
    assert private.choice is not None and "<- chosen" in private.choice.explanation
    best = plan(TaskOptions("coder", "hi", optimize=True, priority="quality"), settings, spec)
    assert (best.provider.value, best.model) == ("anthropic", "claude-opus-4-5")
    no_key = run_settings(env={"ONNX_MODEL_PATH": str(real_model_dir)})
    assert plan(TaskOptions("coder", "hi", optimize=True, priority="quality"), no_key, spec).provider.value == "onnx"


def write_agent(folder: Path, name: str, model: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(f"---\nname: {name}\ndescription: d\nmodel: {model}\n---\nBe brief.\n")


@pytest.mark.parametrize(
    ("agent_model", "flag", "provider", "planned"),
    [
        # Claude Code agent files name models by alias: never taken for a local model name
        ("sonnet", None, "onnx", "LOCAL"),
        ("opus", None, "anthropic", "claude-opus-4-5"),
        ("inherit", None, "anthropic", "claude-sonnet-4-5"),
        ("inherit", None, "onnx", "LOCAL"),
        ("claude-haiku-4-5", None, "onnx", "LOCAL"),
        ("smollm2-135m", None, "anthropic", "claude-sonnet-4-5"),
        # an explicit --model is sent as given (ANTHROPIC_BASE_URL may serve any name)
        ("sonnet", "my-gateway-model", "anthropic", "my-gateway-model"),
        ("sonnet", "haiku", "anthropic", "claude-haiku-4-5"),
    ],
)
def test_plan_picks_the_model_for_the_provider(tmp_path: Path, agent_model: str, flag: str | None,
                                               provider: str, planned: str) -> None:
    write_agent(tmp_path / "agents", "mine", agent_model)
    env = {"ANTHROPIC_API_KEY": "k", "ONNX_MODEL_PATH": "/models/local"}
    settings = run_settings(provider=provider, model=flag, agents_dir=str(tmp_path / "agents"), env=env)
    the_plan = plan(TaskOptions("mine", "hi"), settings, find_agent("mine", settings, tmp_path))
    assert the_plan.model == ("/models/local" if planned == "LOCAL" else planned)


def test_agents_dir_flag_then_env_then_project_then_builtin(tmp_path: Path) -> None:
    write_agent(tmp_path / "flag", "both", "from-flag")
    write_agent(tmp_path / "env", "both", "from-env")
    write_agent(tmp_path / "env", "only-env", "x")
    write_agent(tmp_path / ".claude" / "agents", "only-project", "x")
    settings = run_settings(agents_dir=str(tmp_path / "flag"), env={"AGENTS_DIR": str(tmp_path / "env")})
    assert find_agent("both", settings, tmp_path).model == "from-flag"
    assert find_agent("only-env", settings, tmp_path).folder == "AGENTS_DIR"  # still searched after the flag
    assert find_agent("only-project", settings, tmp_path).folder == "project"
    assert find_agent("coder", settings, tmp_path).folder == "builtin"


def test_the_plan_carries_the_local_proxy_settings_it_decided(tmp_path: Path) -> None:
    write_agent(tmp_path / "agents", "mine", "smollm2-360m")
    settings = run_settings(provider="onnx", agents_dir=str(tmp_path / "agents"), env={"ONNX_PROXY_PORT": "4100"})
    the_plan = plan(TaskOptions("mine", "hi"), settings, find_agent("mine", settings, tmp_path))
    assert the_plan.local is not None
    assert (the_plan.local.model, the_plan.local.port) == ("smollm2-360m", 4100)  # the agent's local model
    assert settings.proxy.model == "smollm2-135m"  # the resolved settings are not patched afterwards
    assert not the_plan.local_by_default  # --provider asked for it


def test_local_by_default_only_when_nothing_asked_for_the_local_model(tmp_path: Path) -> None:
    settings = run_settings(env={})
    the_plan = plan(TaskOptions("coder", "hi"), settings, find_agent("coder", settings, tmp_path))
    assert the_plan.provider.origin is Origin.DEFAULT and the_plan.provider.value is Provider.ONNX
    assert the_plan.local_by_default
    api = run_settings(env={"ANTHROPIC_API_KEY": "k"})
    assert not plan(TaskOptions("coder", "hi"), api, find_agent("coder", api, tmp_path)).local_by_default


def test_onnx_proxy_url_means_no_local_proxy_to_start(tmp_path: Path) -> None:
    settings = run_settings(provider="onnx", env={"ONNX_PROXY_URL": "http://127.0.0.1:9/"})
    the_plan = plan(TaskOptions("coder", "hi"), settings, find_agent("coder", settings, tmp_path))
    assert the_plan.local is None and settings.proxy_url.value == "http://127.0.0.1:9"


def test_a_malformed_agent_file_is_reported_with_its_path_and_others_still_run(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "broken.md").write_text("---\nname: [unclosed\n---\nbody\n")
    problems: list[str] = []
    settings = run_settings(provider="onnx", agents_dir=str(folder), env={})
    spec = find_agent("coder", settings, tmp_path, on_problem=problems.append)
    assert spec.name == "coder"
    assert len(problems) == 1 and str(folder / "broken.md") in problems[0]


# ---------------------------------------------------------------- the local model for an agent with tools

TOOL_MODEL = "qwen2.5-coder-1.5b"


@pytest.fixture
def tool_store(tmp_path: Path, real_model_dir: Path) -> Path:
    """A store where the tool-capable coder is "installed": its folder holds the real 135M model (the
    choice reads only which folders exist; the subprocess test below also loads it)."""
    root = tmp_path / "store"
    root.mkdir()
    (root / TOOL_MODEL).symlink_to(real_model_dir, target_is_directory=True)
    (root / "smollm2-135m").symlink_to(real_model_dir, target_is_directory=True)
    return root


class Notices(Hooks):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def notice(self, message: str) -> None:
        self.lines.append(message)


def prepared(tmp_path: Path, env: dict[str, str], *, model: str | None = None,
             tools: tuple[str, ...] | None = None, agent: str = "coder") -> tuple[Plan, list[str]]:
    settings = run_settings(provider="onnx", model=model, env=env)
    hooks = Notices()
    return prepare(TaskOptions(agent, "hi"), settings, tmp_path, hooks, tools), hooks.lines


def test_an_agent_with_tools_runs_on_the_best_installed_tool_capable_model(tmp_path: Path,
                                                                          tool_store: Path) -> None:
    the_plan, notices = prepared(tmp_path, {"AGENTIC_FLOW_MODEL_DIR": str(tool_store)})
    assert the_plan.model == TOOL_MODEL and the_plan.local is not None and the_plan.local.model == TOOL_MODEL
    assert notices == [f"model: {TOOL_MODEL}, the best installed tool-capable model (the agent has tools; "
                       "--model or ONNX_MODEL_PATH picks another)"]
    assert the_plan.model_source == "the best installed tool-capable model"


def test_model_flag_and_onnx_model_path_win_and_a_run_without_tools_keeps_the_default(
        tmp_path: Path, tool_store: Path, real_model_dir: Path) -> None:
    env = {"AGENTIC_FLOW_MODEL_DIR": str(tool_store)}
    flag, notices = prepared(tmp_path, env, model="smollm2-135m")
    assert (flag.model, flag.model_source, notices) == ("smollm2-135m", "flag --model", [])
    by_env, notices = prepared(tmp_path, {**env, "ONNX_MODEL_PATH": str(real_model_dir)})
    assert (by_env.model, by_env.model_source, notices) == (str(real_model_dir), "env ONNX_MODEL_PATH", [])
    no_tools, notices = prepared(tmp_path, env, tools=())
    assert (no_tools.model, no_tools.tools, notices) == ("smollm2-135m", (), [])
    write_agent(tmp_path / ".claude" / "agents", "talker", "inherit")  # an agent file without tools
    talker, notices = prepared(tmp_path, env, agent="talker")
    assert (talker.model, notices) == ("smollm2-135m", [])


def test_without_a_tool_capable_model_the_notice_says_what_to_install(tmp_path: Path) -> None:
    the_plan, notices = prepared(tmp_path, {"AGENTIC_FLOW_MODEL_DIR": str(tmp_path / "empty")})
    assert the_plan.model == "smollm2-135m"
    assert notices == ["no tool-capable model is installed: the agent's tools run on smollm2-135m, which is too "
                       f"small to use them well; install one with `agentic-flow models pull {TOOL_MODEL}`"]


def test_the_cli_says_which_model_it_chose_and_runs_it(tool_store: Path, real_model_dir: Path) -> None:
    """Through the real command: the notice on stderr, the proxy started for the chosen model."""
    port = supervisor.free_port()
    env = {**os.environ, "AGENTIC_FLOW_MODEL_DIR": str(tool_store), "ONNX_PROXY_PORT": str(port),
           "COLUMNS": "200"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "agentic-flow"), "--agent", "coder", "--task", "Say hi",
         "--provider", "onnx", "--max-turns", "1", "--max-tokens", "4", "--json", "--verbose"],
        env=env, capture_output=True, text=True, timeout=180, check=False, cwd=tool_store.parent)
    assert f"model: {TOOL_MODEL}, the best installed tool-capable model" in result.stderr, result.stderr
    assert f"the local model ({TOOL_MODEL})" in result.stderr or "model (final)" in result.stderr
    assert result.returncode in (0, 7), result.stderr  # 7: one turn was not enough to finish
    assert json.loads(result.stdout)["model"] == TOOL_MODEL
