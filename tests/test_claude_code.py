"""Claude Code set-up: which local model it drives and the variables that point it there (pure policy;
tests/test_cli.py runs a stand-in `claude` through the real command and proxy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentic_flow.agents.claude_code import OUTPUT_CAP, ClaudeCodeSetup, claude_args, claude_env, find_claude, setup
from agentic_flow.errors import ConfigError
from agentic_flow.settings import RunSettings, run_settings


def fake_store(root: Path, models: dict[str, int]) -> Path:
    """Installed-looking model folders (a folder at the name is installed), each with its context."""
    for name, context in models.items():
        (root / name).mkdir(parents=True)
        (root / name / "genai_config.json").write_text(json.dumps({"model": {"context_length": context}}))
    return root


def settings_for(store: Path, **env: str) -> RunSettings:
    return run_settings(provider="onnx", env={"AGENTIC_FLOW_MODEL_DIR": str(store), **env})


def test_the_best_installed_tool_capable_model_is_preferred(tmp_path: Path) -> None:
    store = fake_store(tmp_path, {"smollm2-135m": 8192, "qwen2.5-coder-0.5b": 32768, "qwen2.5-coder-1.5b": 32768})
    cc = setup(settings_for(store))
    assert (cc.model, cc.model_name, cc.context_tokens) == ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b", 32768)
    assert cc.output_tokens == OUTPUT_CAP and cc.source == "the best installed tool-capable model"


def test_without_a_tool_capable_model_the_configured_default_stays(tmp_path: Path) -> None:
    store = fake_store(tmp_path, {"smollm2-135m": 8192, "qwen2.5-coder-0.5b": 32768})  # 0.5B: no tool use
    cc = setup(settings_for(store))
    assert cc.model == "smollm2-135m" and cc.context_tokens == 8192 and cc.output_tokens == 2048
    assert "no tool-capable model installed" in cc.source


def test_onnx_model_path_and_the_flag_win_over_the_catalog_rank(tmp_path: Path) -> None:
    store = fake_store(tmp_path / "store", {"qwen2.5-coder-1.5b": 32768, "smollm2-135m": 8192})
    folder = fake_store(tmp_path, {"my-model": 2048}) / "my-model"
    by_env = setup(settings_for(store, ONNX_MODEL_PATH=str(folder)))
    assert by_env.model == str(folder) and by_env.source == "env ONNX_MODEL_PATH"
    assert by_env.context_tokens == 2048 and by_env.output_tokens == 512
    assert by_env.model_name == "my-model"  # the folder's name
    by_flag = setup(settings_for(store, ONNX_MODEL_PATH=str(folder)), "smollm2-135m")
    assert (by_flag.model, by_flag.context_tokens, by_flag.source) == ("smollm2-135m", 8192, "flag --model")


def test_a_claude_named_folder_gets_a_local_prefix(tmp_path: Path) -> None:
    folder = fake_store(tmp_path, {"claude-3-tiny": 4096}) / "claude-3-tiny"
    cc = setup(settings_for(tmp_path, ONNX_MODEL_PATH=str(folder)))
    assert cc.model_name == "local-claude-3-tiny"


def test_claude_env_points_every_model_alias_and_limit_at_the_local_model() -> None:
    cc = ClaudeCodeSetup("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b", 32768, 4096, "test")
    env = claude_env({"PATH": "/bin", "ANTHROPIC_MODEL": "claude-opus-4-5"}, "http://127.0.0.1:9", "k", cc)
    assert env == {
        "PATH": "/bin", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": "k",
        "ANTHROPIC_MODEL": "qwen2.5-coder-1.5b", "ANTHROPIC_DEFAULT_OPUS_MODEL": "qwen2.5-coder-1.5b",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "qwen2.5-coder-1.5b", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "qwen2.5-coder-1.5b",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "32768", "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "4096",
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
    }


def test_no_claude_on_path_is_a_config_error_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="npm install -g @anthropic-ai/claude-code"):
        find_claude({"PATH": str(tmp_path)})


def test_the_users_limits_win_but_never_their_api_key_or_url() -> None:
    cc = ClaudeCodeSetup("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b", 32768, 4096, "test")
    base = {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "1024", "CLAUDE_CODE_ATTRIBUTION_HEADER": "",
            "ANTHROPIC_API_KEY": "sk-real", "ANTHROPIC_BASE_URL": "https://api.anthropic.com"}
    env = claude_env(base, "http://127.0.0.1:9", "k", cc)
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "1024" and env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "32768"
    assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"  # an empty value is no choice
    assert (env["ANTHROPIC_API_KEY"], env["ANTHROPIC_BASE_URL"]) == ("k", "http://127.0.0.1:9")


def test_the_sub_agent_tool_is_denied_unless_the_user_sets_a_deny_list() -> None:
    assert claude_args(["-p", "hi"]) == ["--disallowedTools", "Agent", "-p", "hi"]
    own = ["--disallowed-tools=Bash", "-p", "hi"]
    assert claude_args(own) == own
