"""The prefix cache's budget (engine/memory.py): from the model's KV size and the memory available, or
the setting; and the settings' order (flag > variable > default)."""

from __future__ import annotations

import json

import pytest

from agentic_flow.engine.memory import MIB, kv_bytes_per_token, prefix_budget
from agentic_flow.errors import ConfigError
from agentic_flow.settings import ProxySettings, proxy_settings

SMOLLM2 = {"model": {"decoder": {"head_size": 64, "hidden_size": 576, "num_attention_heads": 9,
                                 "num_hidden_layers": 30, "num_key_value_heads": 3}}}
GiB = 1 << 30


def test_kv_bytes_per_token_of_the_default_model(real_model_dir: object) -> None:
    assert kv_bytes_per_token(SMOLLM2) == 30 * 2 * 3 * 64 * 4  # 45 KB: float32 keys and values
    from pathlib import Path
    installed = json.loads((Path(str(real_model_dir)) / "genai_config.json").read_text())
    assert kv_bytes_per_token(installed) == kv_bytes_per_token(SMOLLM2)


def test_the_budget_follows_the_memory_available() -> None:
    per_token = kv_bytes_per_token(SMOLLM2)
    small = prefix_budget(context_length=8192, max_entries=8, bytes_per_token=per_token,
                          available_bytes=1 * GiB, override_mb=None)
    large = prefix_budget(context_length=8192, max_entries=8, bytes_per_token=per_token,
                          available_bytes=64 * GiB, override_mb=None)
    assert small.tokens * per_token <= GiB // 4  # a quarter of what is available
    assert large.tokens == 8 * 8192  # capped: the cache's entries could not use more
    assert "available" in small.reason and "full contexts" in large.reason


def test_the_setting_overrides_the_memory() -> None:
    per_token = kv_bytes_per_token(SMOLLM2)
    budget = prefix_budget(context_length=8192, max_entries=8, bytes_per_token=per_token,
                           available_bytes=64 * GiB, override_mb=100)
    assert budget.tokens == 100 * MIB // per_token and "--prefix-cache-mb" in budget.reason
    off = prefix_budget(context_length=8192, max_entries=8, bytes_per_token=per_token,
                        available_bytes=64 * GiB, override_mb=0)
    assert off.tokens == 0


def test_prefix_cache_mb_flag_beats_the_variable_beats_the_default() -> None:
    env = {"AGENTIC_FLOW_PREFIX_CACHE_MB": "300"}
    assert proxy_settings(env={}).prefix_cache_mb is None
    assert proxy_settings(env=env).prefix_cache_mb == 300
    assert proxy_settings(prefix_cache_mb=50, env=env).prefix_cache_mb == 50
    with pytest.raises(ConfigError, match="AGENTIC_FLOW_PREFIX_CACHE_MB"):
        proxy_settings(env={"AGENTIC_FLOW_PREFIX_CACHE_MB": "lots"})
    settings = ProxySettings(prefix_cache_mb=300)
    assert ProxySettings.from_argv(settings.to_argv(), env={}).prefix_cache_mb == 300  # to the proxy process
    assert ProxySettings.from_argv([], env=env).prefix_cache_mb == 300
