"""Model choice by priority, budget, available providers and installed local models."""

from __future__ import annotations

import pytest

from agentic_flow.agents.optimizer import (
    PRIORITIES,
    PROFILES,
    WEIGHTS,
    ModelProfile,
    choose,
    cost_score,
    estimate_tokens,
)
from agentic_flow.errors import ConfigError

BOTH = {"onnx", "anthropic"}
TASK = (2_000, 1_024)  # estimated input and output tokens of a typical agent task


def pick(priority: str, providers: set[str] = BOTH, max_cost: float | None = None,
         installed_local: set[str] | None = None) -> str:
    installed = {"smollm2-135m"} if installed_local is None else installed_local
    return choose(priority, max_cost, providers, *TASK, installed_local=installed).profile.name


def by_name(name: str) -> ModelProfile:
    return next(p for p in PROFILES if p.name == name)


# ---------------------------------------------------------------- each priority

@pytest.mark.parametrize(
    "priority,expected",
    [
        ("quality", "claude-opus-4-5"),
        ("balanced", "claude-haiku-4-5"),
        ("speed", "claude-haiku-4-5"),
        ("cost", "smollm2-135m"),
        ("privacy", "smollm2-135m"),
    ],
)
def test_each_priority_picks_its_model_when_everything_is_available(priority: str, expected: str) -> None:
    assert pick(priority) == expected


def test_privacy_never_leaves_the_machine_and_prefers_the_better_installed_local_model() -> None:
    assert pick("privacy", installed_local={"smollm2-135m"}) == "smollm2-135m"
    assert pick("privacy", installed_local={"smollm2-135m", "phi-4-mini"}) == "phi-4-mini"


def test_privacy_without_the_local_provider_is_an_error() -> None:
    expected = r"claude-opus-4-5: not local .*smollm2-135m: provider onnx not available"
    with pytest.raises(ConfigError, match=expected):
        choose("privacy", None, {"anthropic"}, *TASK)


def test_cost_prefers_free_local_models() -> None:
    choice = choose("cost", None, BOTH, *TASK, installed_local={"smollm2-135m", "phi-4-mini"})
    assert choice.profile.local
    assert choice.table[1].profile.local  # both free models rank above every paid one


# ---------------------------------------------------------------- availability and budget

def test_without_an_api_key_only_local_models_are_candidates() -> None:
    choice = choose("quality", None, {"onnx"}, *TASK)

    assert choice.profile.name == "smollm2-135m"
    reasons = {s.profile.name: s.excluded for s in choice.table}
    assert reasons["claude-opus-4-5"] == "provider anthropic not available (no ANTHROPIC_API_KEY)"
    assert reasons["phi-4-mini"] == "not installed"


def test_without_the_local_provider_only_anthropic_models_are_candidates() -> None:
    assert pick("cost", providers={"anthropic"}) == "claude-haiku-4-5"


def test_max_cost_rules_out_models_whose_estimate_exceeds_it() -> None:
    opus = by_name("claude-opus-4-5").estimated_cost(*TASK)
    sonnet = by_name("claude-sonnet-4-5").estimated_cost(*TASK)
    budget = (opus + sonnet) / 2

    choice = choose("quality", budget, {"anthropic"}, *TASK)

    assert choice.profile.name == "claude-sonnet-4-5"
    opus_row = next(s for s in choice.table if s.profile.name == "claude-opus-4-5")
    assert opus_row.excluded is not None and "> --max-cost" in opus_row.excluded
    assert all(s.cost_usd <= budget for s in choice.table if s.excluded is None)


def test_a_zero_budget_leaves_only_free_models() -> None:
    assert pick("quality", max_cost=0.0) == "smollm2-135m"


def test_nothing_fits_says_why_for_every_model() -> None:
    with pytest.raises(ConfigError) as err:
        choose("balanced", 0.0001, {"anthropic"}, *TASK)

    message = str(err.value)
    assert message.startswith("no model fits --priority balanced:")
    assert "claude-haiku-4-5: estimated $0.0071 > --max-cost $0.0001" in message
    assert "smollm2-135m: provider onnx not available" in message


def test_a_task_larger_than_the_context_rules_the_model_out() -> None:
    with pytest.raises(ConfigError, match=r"smollm2-135m: task needs ~12000 tokens > context 8192"):
        choose("privacy", None, BOTH, 10_000, 2_000)


@pytest.mark.parametrize("priority,max_cost,match", [("fastest", None, "unknown priority 'fastest'"),
                                                     ("cost", -1.0, "--max-cost must be 0 or more")])
def test_bad_arguments_are_config_errors(priority: str, max_cost: float | None, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        choose(priority, max_cost, BOTH, *TASK)


# ---------------------------------------------------------------- scoring

def test_cost_score_is_one_when_free_zero_for_the_most_expensive_and_falls_with_price() -> None:
    assert cost_score(0.0, 0.05) == 1.0
    assert cost_score(0.05, 0.05) == 0.0
    assert cost_score(0.01, 0.05) > cost_score(0.02, 0.05)
    assert cost_score(0.0, 0.0) == 1.0


def test_weights_match_the_documented_priorities() -> None:
    assert set(WEIGHTS) == set(PRIORITIES)
    for w in WEIGHTS.values():
        assert w.quality + w.speed + w.cost == pytest.approx(1.0)
    assert (WEIGHTS["quality"].quality, WEIGHTS["cost"].cost, WEIGHTS["speed"].speed) == (0.7, 0.7, 0.7)
    balanced = WEIGHTS["balanced"]
    assert (balanced.quality, balanced.cost, balanced.speed) == (0.4, 0.4, 0.2)


def test_profiles_are_consistent() -> None:
    names = [p.name for p in PROFILES]
    assert len(names) == len(set(names))
    assert set(names) >= {
        "smollm2-135m", "phi-4-mini", "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"
    }
    for p in PROFILES:
        assert 0 <= p.quality <= 1 and 0 <= p.speed <= 1
        assert p.local == (p.provider == "onnx")
        assert (p.input_cost == p.output_cost == 0) == p.local


def test_estimated_cost_uses_prices_per_million_tokens() -> None:
    sonnet = by_name("claude-sonnet-4-5")
    assert sonnet.estimated_cost(1_000_000, 1_000_000) == pytest.approx(18.0)
    assert by_name("smollm2-135m").estimated_cost(10**6, 10**6) == 0


def test_explanation_lists_weights_scores_and_exclusions() -> None:
    choice = choose("balanced", 0.01, BOTH, *TASK)

    lines = choice.explanation.splitlines()
    assert lines[0] == "priority balanced: 0.4*quality + 0.2*speed + 0.4*cost; max cost $0.0100"
    assert "claude-haiku-4-5" in lines[1] and lines[1].endswith("<- chosen")
    opus = next(line for line in lines if "claude-opus-4-5" in line)
    assert "excluded: estimated $0.0356 > --max-cost" in opus
    assert [s.score for s in choice.table if s.excluded is None] == sorted(
        (s.score for s in choice.table if s.excluded is None), reverse=True)


def test_estimate_tokens_is_about_four_characters_each() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("x" * 400) == 100


# ---------------------------------------------------------------- agents with tools

QWENS = {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}


def test_an_agent_with_tools_gets_the_best_installed_tool_capable_local_model() -> None:
    for priority in ("privacy", "cost"):
        choice = choose(priority, None, {"onnx"}, *TASK, installed_local=QWENS, needs_tools=True)
        assert choice.profile.name == "qwen2.5-coder-1.5b"
        reasons = {s.profile.name: s.excluded for s in choice.table}
        assert reasons["smollm2-135m"] == reasons["qwen2.5-coder-0.5b"] == "no tool use (the agent has tools)"
    # Without tools the fast small model still wins on speed.
    assert choose("speed", None, {"onnx"}, *TASK, installed_local=QWENS).profile.name == "smollm2-135m"


def test_tools_without_a_tool_capable_model_installed_keep_the_local_model() -> None:
    choice = choose("privacy", None, {"onnx"}, *TASK, installed_local={"smollm2-135m"}, needs_tools=True)
    assert choice.profile.name == "smollm2-135m"


def test_local_profiles_take_tool_use_and_context_from_the_catalog() -> None:
    assert by_name("qwen2.5-coder-1.5b").tool_use and not by_name("smollm2-135m").tool_use
    assert by_name("qwen2.5-coder-1.5b").context_length == 32768
