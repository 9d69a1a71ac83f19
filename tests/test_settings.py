"""Configuration resolution: flags > environment > defaults, in one module, with the source of each value.

Every test passes its own `env` mapping, so none depends on (or changes) the process environment.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from agentic_flow import settings as cfg
from agentic_flow.errors import ConfigError
from agentic_flow.proxy.__main__ import parse_args

# ---------------------------------------------------------------- provider resolution


@pytest.mark.parametrize(
    ("flag", "env", "provider", "source"),
    [
        # the flag beats everything
        ("onnx", {"PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "k"}, "onnx", "flag --provider"),
        ("anthropic", {"USE_ONNX": "true"}, "anthropic", "flag --provider"),
        ("ANTHROPIC", {}, "anthropic", "flag --provider"),
        # then PROVIDER
        (None, {"PROVIDER": "anthropic", "USE_ONNX": "1"}, "anthropic", "env PROVIDER"),
        (None, {"PROVIDER": " onnx ", "ANTHROPIC_API_KEY": "k"}, "onnx", "env PROVIDER"),
        # an empty PROVIDER counts as unset
        (None, {"PROVIDER": "", "ANTHROPIC_API_KEY": "k"}, "anthropic", "default (ANTHROPIC_API_KEY is set)"),
        # then USE_ONNX, whose true words win over an API key
        (None, {"USE_ONNX": "true", "ANTHROPIC_API_KEY": "k"}, "onnx", "env USE_ONNX"),
        (None, {"USE_ONNX": "1", "ANTHROPIC_API_KEY": "k"}, "onnx", "env USE_ONNX"),
        (None, {"USE_ONNX": "YES", "ANTHROPIC_API_KEY": "k"}, "onnx", "env USE_ONNX"),
        # "0" and "false" mean false: they do not force onnx, the next rule decides
        (None, {"USE_ONNX": "0", "ANTHROPIC_API_KEY": "k"}, "anthropic", "default (ANTHROPIC_API_KEY is set)"),
        (None, {"USE_ONNX": "false", "ANTHROPIC_API_KEY": "k"}, "anthropic",
         "default (ANTHROPIC_API_KEY is set)"),
        (None, {"USE_ONNX": "0"}, "onnx", "default (no ANTHROPIC_API_KEY: using the local model)"),
        # then ANTHROPIC_API_KEY, else the local model
        (None, {"ANTHROPIC_API_KEY": "k"}, "anthropic", "default (ANTHROPIC_API_KEY is set)"),
        (None, {"ANTHROPIC_API_KEY": ""}, "onnx", "default (no ANTHROPIC_API_KEY: using the local model)"),
        (None, {}, "onnx", "default (no ANTHROPIC_API_KEY: using the local model)"),
    ],
)
def test_provider_precedence(flag: str | None, env: dict[str, str], provider: str, source: str) -> None:
    resolved = cfg.resolve_provider(flag, env)
    assert (resolved.value, resolved.source) == (provider, source)


@pytest.mark.parametrize("garbage", ["maybe", "2", "onnx"])
def test_use_onnx_that_is_not_a_boolean_is_a_config_error(garbage: str) -> None:
    with pytest.raises(ConfigError, match=rf"USE_ONNX={garbage!r} is not a boolean"):
        cfg.resolve_provider(None, {"USE_ONNX": garbage})


@pytest.mark.parametrize(
    ("flag", "env", "where"),
    [("vllm", {}, "flag --provider"), (None, {"PROVIDER": "ollama"}, "env PROVIDER")],
)
def test_unknown_provider_lists_the_valid_ones(flag: str | None, env: dict[str, str], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.resolve_provider(flag, env)
    message = str(info.value)
    assert "unknown provider" in message and where in message
    assert "valid providers: onnx, anthropic, openai, openrouter, gemini" in message
    assert info.value.exit_code == 2


# ---------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("flag", "env", "port"),
    [(4000, {"ONNX_PROXY_PORT": "5000"}, 4000), (None, {"ONNX_PROXY_PORT": " 5000 "}, 5000),
     (None, {"ONNX_PROXY_PORT": ""}, cfg.DEFAULT_PORT), (None, {}, 3001)],
)
def test_port_from_flag_then_env_then_default(flag: int | None, env: dict[str, str], port: int) -> None:
    assert cfg.proxy_settings(port=flag, env=env).port == port


@pytest.mark.parametrize(
    ("raw", "message"),
    [("abc", "port 'abc' (env ONNX_PROXY_PORT) is not a number"),
     ("70000", "port 70000 (env ONNX_PROXY_PORT) is outside 1..65535"),
     ("0", "port 0 (env ONNX_PROXY_PORT) is outside 1..65535")],
)
def test_bad_port_is_a_config_error_naming_its_source(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.proxy_settings(env={"ONNX_PROXY_PORT": raw})
    assert str(info.value) == message


def test_bad_port_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"port -1 \(flag --port\)"):
        cfg.proxy_settings(port=-1, env={})


# ---------------------------------------------------------------- execution providers


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("cpu", ("cpu",)), ("CUDA, cpu", ("cuda", "cpu")), ("dml,,cpu,", ("dml", "cpu"))],
)
def test_execution_providers_parse(raw: str, parsed: tuple[str, ...]) -> None:
    assert cfg.proxy_settings(env={"ONNX_EXECUTION_PROVIDERS": raw}).providers == parsed


def test_execution_providers_default_to_cpu() -> None:
    assert cfg.proxy_settings(env={}).providers == ("cpu",)


@pytest.mark.parametrize(("raw", "named"), [("cpu,tpu", "tpu"), (",", "(empty)")])
def test_unknown_execution_provider_is_refused_with_the_valid_list(raw: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.parse_providers(raw)
    assert f"unknown provider {named}" in str(info.value)
    assert "valid: cpu, cuda, dml, openvino, qnn, webgpu" in str(info.value)


# ---------------------------------------------------------------- binding and keys


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_non_loopback_host_without_a_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        cfg.proxy_settings(host=host, env={})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_host_needs_no_key(host: str) -> None:
    assert cfg.proxy_settings(host=host, env={}).api_key is None


def test_non_loopback_host_with_a_key_from_flag_or_env() -> None:
    assert cfg.proxy_settings(host="0.0.0.0", api_key="s3cret", env={}).api_key == "s3cret"
    from_env = cfg.proxy_settings(host="0.0.0.0", env={"AGENTIC_FLOW_API_KEY": "e"})
    assert from_env.api_key == "e"
    assert cfg.proxy_settings(api_key="flag", env={"AGENTIC_FLOW_API_KEY": "e"}).api_key == "flag"


# ---------------------------------------------------------------- model and store


def test_model_from_flag_then_env_then_default() -> None:
    env = {"ONNX_MODEL_PATH": "/models/mine"}
    assert cfg.proxy_settings(model="other", env=env).model == "other"
    assert cfg.proxy_settings(env=env).model == "/models/mine"
    assert cfg.proxy_settings(env={}).model == cfg.DEFAULT_MODEL


def test_model_dir_override_and_default(tmp_path: Path) -> None:
    assert cfg.model_dir({"AGENTIC_FLOW_MODEL_DIR": str(tmp_path / "store")}) == tmp_path / "store"
    assert cfg.model_dir({"XDG_CACHE_HOME": str(tmp_path / "c")}) == tmp_path / "c" / "agentic-flow" / "models"
    relative = cfg.model_dir({"AGENTIC_FLOW_MODEL_DIR": "rel/store"})
    assert relative.is_absolute() and relative.parts[-2:] == ("rel", "store")
    assert cfg.proxy_settings(env={"AGENTIC_FLOW_MODEL_DIR": str(tmp_path)}).model_dir == tmp_path


def test_state_dir_follows_xdg(tmp_path: Path) -> None:
    assert cfg.state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "agentic-flow"


# ---------------------------------------------------------------- the child's arguments


def test_proxy_settings_round_trip_through_the_proxy_argument_parser() -> None:
    full = cfg.ProxySettings(
        host="127.0.0.1", port=4567, model="/x/y", model_dir=Path("/m"), providers=("cuda", "cpu"),
        threads=3, max_body=100, max_queue=5, max_batch=2, grace_seconds=1.5, log_level="debug",
        parent_pid=123,
    )
    assert parse_args(full.to_argv()) == full
    assert parse_args(cfg.ProxySettings().to_argv()) == cfg.ProxySettings()


def test_api_key_travels_outside_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    keyed = cfg.ProxySettings(api_key="s3cret")
    assert "s3cret" not in keyed.to_argv()
    monkeypatch.setenv("AGENTIC_FLOW_API_KEY", "s3cret")  # how the supervisor hands it to the child
    assert parse_args(keyed.to_argv()) == keyed


def test_proxy_parser_refuses_public_host_without_key() -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        parse_args(["--host", "0.0.0.0"])


# ---------------------------------------------------------------- the main command's settings


def test_run_settings_sources_for_verbose() -> None:
    env = {"ANTHROPIC_API_KEY": "k", "ONNX_PROXY_PORT": "4100", "AGENTS_DIR": "/agents"}
    s = cfg.run_settings(model="claude-x", env=env)
    rows = {name: (value, source) for name, value, source in s.explain()}
    assert rows["provider"] == ("anthropic", "default (ANTHROPIC_API_KEY is set)")
    assert rows["model"] == ("claude-x", "flag --model")
    assert rows["anthropic base url"] == (cfg.ANTHROPIC_API_URL, "default")
    assert rows["anthropic api key"] == ("set", "env ANTHROPIC_API_KEY")  # never the key itself
    assert rows["proxy port"] == ("4100", "env ONNX_PROXY_PORT")
    assert rows["local model"] == (cfg.DEFAULT_MODEL, "default")
    assert rows["agents dir"] == ("/agents", "env AGENTS_DIR")
    assert "k" not in {value for value, _ in rows.values()}


def test_run_settings_model_flag_picks_the_local_model_for_onnx() -> None:
    s = cfg.run_settings(provider="onnx", model="/my/model", env={"ONNX_MODEL_PATH": "/env/model"})
    assert s.proxy.model == "/my/model"
    rows = {name: (value, source) for name, value, source in s.explain()}
    assert rows["local model"] == ("/my/model", "flag --model")
    assert cfg.run_settings(provider="onnx", env={"ONNX_MODEL_PATH": "/env/model"}).proxy.model == "/env/model"


def test_run_settings_reads_urls_and_agents_dir_flag() -> None:
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ONNX_PROXY_URL": "http://127.0.0.1:8",
           "AGENTS_DIR": "/env-agents"}
    s = cfg.run_settings(agents_dir="/flag-agents", env=env)
    assert s.anthropic_base_url.value == "http://127.0.0.1:9"
    assert (s.proxy_url.value, s.proxy_url.source) == ("http://127.0.0.1:8", "env ONNX_PROXY_URL")
    assert (s.agents_dir.value, s.agents_dir.source) == ("/flag-agents", "flag --agents-dir")
    assert s.anthropic_api_key.value is None


def test_settings_are_frozen() -> None:
    s = cfg.proxy_settings(env={})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


# ---------------------------------------------------------------- hardening (issue 8, item 11)


@pytest.mark.parametrize("key", ["   ", "\t\n"])
def test_a_whitespace_key_is_no_key_for_the_bind_check(key: str) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        cfg.proxy_settings(host="0.0.0.0", api_key=key, env={})
    with pytest.raises(ConfigError, match="without an API key"):
        cfg.proxy_settings(host="0.0.0.0", env={"AGENTIC_FLOW_API_KEY": key})
    with pytest.raises(ConfigError, match="without an API key"):
        parse_args(["--host", "0.0.0.0", "--api-key", key])


@pytest.mark.parametrize("raw", ["\u0663\u0660\u0660\u0661", "\uff13\uff10\uff10\uff11", "3\u00b9"])
def test_a_port_in_other_digits_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="is not a number"):
        cfg.proxy_settings(env={"ONNX_PROXY_PORT": raw})
    with pytest.raises(ConfigError, match="is not a number"):
        parse_args(["--port", raw])


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:21", "127.0.0.1:3001", "http://"])
def test_a_proxy_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"\(env ONNX_PROXY_URL\) is not an http:// or https:// URL"):
        cfg.run_settings(env={"ONNX_PROXY_URL": url})


@pytest.mark.parametrize(("args", "message"), [
    (["--max-queue", "-5"], "--max-queue -5 is below 0"),
    (["--max-batch", "0"], "--max-batch 0 is below 1"),
    (["--grace", "nan"], "--grace 'nan' must be 0 or more seconds"),
    (["--log-level", "loud"], "--log-level 'loud'"),
])
def test_the_proxy_parser_refuses_bad_numbers(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_args(args)


def test_the_proxy_process_takes_an_api_key_flag() -> None:
    assert parse_args(["--api-key", "s3cret", "--host", "0.0.0.0"]).api_key == "s3cret"


def test_argv_follows_the_fields() -> None:
    settings = cfg.ProxySettings(parent_pid=1, provider="openai", upstream="http://gpu:8000/v1",
                                 upstream_model="m", upstream_key="up-secret", prefix_cache_mb=64, idle_exit=90.0)
    flags = [arg for arg in settings.to_argv() if arg.startswith("--")]
    assert len(flags) == len(dataclasses.fields(cfg.ProxySettings)) - 2  # all but the two keys
    assert "--api-key" not in flags and "--upstream-key" not in flags and "up-secret" not in settings.to_argv()
    env = {cfg.UPSTREAM_KEY_VARIABLE: "up-secret"}
    assert cfg.ProxySettings.from_argv(settings.to_argv(), env=env) == settings
