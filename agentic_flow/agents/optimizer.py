"""Pick a model for a task: a table of model profiles scored by the user's priority.

Each profile has a quality and a speed score (0..1, our judgement, for ranking only), published prices
in USD per million tokens, and whether it runs locally.  The task's cost is estimated from token counts
and normalized to a 0..1 score (free = 1; the most expensive profile for this task = 0).  A priority is a
set of weights over quality, speed and cost; `privacy` keeps only local models and ranks them by quality.

Prices: Anthropic's published list prices (claude.com/pricing, checked for the 4.5 models:
Opus $5/$25, Sonnet $3/$15, Haiku $1/$5 per million input/output tokens).  Local models cost nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from ..errors import ConfigError
from ..models import catalog
from ..settings import DEFAULT_MODEL


class Priority(StrEnum):
    QUALITY = "quality"
    BALANCED = "balanced"
    COST = "cost"
    SPEED = "speed"
    PRIVACY = "privacy"


PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)


@dataclass(frozen=True)
class ModelProfile:
    name: str
    provider: Literal["onnx", "anthropic"]
    model_id: str
    quality: float  # 0..1
    speed: float  # 0..1
    input_cost: float  # USD per million input tokens
    output_cost: float  # USD per million output tokens
    local: bool
    context_length: int
    tool_use: bool = True  # can drive tools; local models say so in the catalog (measured)

    def estimated_cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_cost + output_tokens * self.output_cost) / 1_000_000


def _local(name: str, quality: float, speed: float) -> ModelProfile:
    entry = catalog.get(name)
    return ModelProfile(name, "onnx", name, quality, speed, 0.0, 0.0, True, entry.context_length, entry.tool_use)


PROFILES: tuple[ModelProfile, ...] = (
    # Speeds measured here: SmolLM2-135M decodes 130-200 tokens/s on 2 CPU cores, the Qwen coders 0.5B
    # ~25 and 1.5B ~8.5; Phi-4-mini (3.8B) is roughly thirty times larger than the 135M.
    _local("smollm2-135m", 0.15, 0.95),
    _local("qwen2.5-coder-0.5b", 0.25, 0.6),
    _local("qwen2.5-coder-1.5b", 0.35, 0.4),
    _local("phi-4-mini", 0.45, 0.25),
    ModelProfile("claude-haiku-4-5", "anthropic", "claude-haiku-4-5", 0.70, 0.85, 1.0, 5.0, False, 200_000),
    ModelProfile("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", 0.85, 0.6, 3.0, 15.0, False, 200_000),
    ModelProfile("claude-opus-4-5", "anthropic", "claude-opus-4-5", 1.00, 0.45, 5.0, 25.0, False, 200_000),
)


@dataclass(frozen=True)
class Weights:
    quality: float
    speed: float
    cost: float


WEIGHTS: dict[Priority, Weights] = {
    Priority.QUALITY: Weights(quality=0.7, speed=0.2, cost=0.1),
    Priority.COST: Weights(quality=0.2, speed=0.1, cost=0.7),
    Priority.SPEED: Weights(quality=0.2, speed=0.7, cost=0.1),
    Priority.BALANCED: Weights(quality=0.4, speed=0.2, cost=0.4),
    Priority.PRIVACY: Weights(quality=1.0, speed=0.0, cost=0.0),  # and local models only
}


@dataclass(frozen=True)
class Scored:
    profile: ModelProfile
    cost_usd: float  # estimated for this task
    cost_score: float  # 0..1, cheaper is higher
    score: float  # weighted; 0 when excluded
    excluded: str | None = None  # why it cannot be chosen


@dataclass(frozen=True)
class Choice:
    profile: ModelProfile
    priority: str
    table: tuple[Scored, ...]  # every profile, best first, excluded ones last
    explanation: str


def choose(
    priority: str,
    max_cost_usd: float | None,
    available_providers: Collection[str],
    est_input_tokens: int,
    est_output_tokens: int,
    *,
    installed_local: Collection[str] = (DEFAULT_MODEL,),
    profiles: Sequence[ModelProfile] = PROFILES,
    needs_tools: bool = False,
) -> Choice:
    """The best profile for `priority` among those that are available, installed and within budget.

    `installed_local` names the local models that can actually be served (by default only the embedded
    default model).  Pass the request's max_tokens as `est_output_tokens` so `max_cost_usd` is a true cap.
    With `needs_tools` (the agent has tools) and a tool-capable local model installed, local models
    that cannot use tools are ruled out; with none installed they stay (a weak answer beats none).
    Raises ConfigError, saying why each model was ruled out, when none fits.
    """
    weights = _weights(priority)
    if max_cost_usd is not None and max_cost_usd < 0:
        raise ConfigError(f"--max-cost must be 0 or more, got {max_cost_usd}")
    tokens = (est_input_tokens, est_output_tokens)
    usable = _tool_capable_if_any(installed_local, profiles) if needs_tools else installed_local
    costs = [p.estimated_cost(*tokens) for p in profiles]
    most = max(costs, default=0.0)
    table: list[Scored] = []
    for profile, cost in zip(profiles, costs, strict=True):
        why = _exclusion(profile, cost, priority, max_cost_usd, available_providers, installed_local, tokens)
        if why is None and profile.local and profile.name not in usable:
            why = "no tool use (the agent has tools)"
        table.append(_score(profile, cost, cost_score(cost, most), weights, why))
    table.sort(key=lambda s: (s.excluded is not None, -s.score, -s.profile.quality, s.profile.name))
    if not table or table[0].excluded is not None:
        raise ConfigError(_nothing_fits(priority, table))
    return Choice(table[0].profile, priority, tuple(table), explain(priority, weights, max_cost_usd, table))


def _tool_capable_if_any(installed: Collection[str], profiles: Sequence[ModelProfile]) -> Collection[str]:
    capable = {p.name for p in profiles if p.local and p.tool_use and p.name in installed}
    return capable or installed


def cost_score(cost: float, most_expensive: float) -> float:
    """0..1, cheaper is higher: free is 1, the most expensive candidate for this task is 0."""
    if cost <= 0 or most_expensive <= 0:
        return 1.0
    return max(0.0, 1.0 - cost / most_expensive)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token for English and code)."""
    return max(1, (len(text) + 3) // 4)


def _weights(priority: str) -> Weights:
    try:
        return WEIGHTS[Priority(priority)]
    except ValueError:
        raise ConfigError(f"unknown priority {priority!r}; choose one of: {', '.join(PRIORITIES)}") from None


def _exclusion(
    profile: ModelProfile,
    cost: float,
    priority: str,
    max_cost: float | None,
    providers: Collection[str],
    installed_local: Collection[str],
    tokens: tuple[int, int],
) -> str | None:
    if priority == "privacy" and not profile.local:
        return "not local (--priority privacy)"
    if profile.provider not in providers:
        hint = " (no ANTHROPIC_API_KEY)" if profile.provider == "anthropic" else ""
        return f"provider {profile.provider} not available{hint}"
    if profile.local and profile.name not in installed_local:
        return "not installed"
    if sum(tokens) > profile.context_length:
        return f"task needs ~{sum(tokens)} tokens > context {profile.context_length}"
    if max_cost is not None and cost > max_cost:
        return f"estimated ${cost:.4f} > --max-cost ${max_cost:.4f}"
    return None


def _score(profile: ModelProfile, cost: float, c_score: float, w: Weights, excluded: str | None) -> Scored:
    score = w.quality * profile.quality + w.speed * profile.speed + w.cost * c_score
    return Scored(profile, cost, c_score, 0.0 if excluded else round(score, 4), excluded)


def _nothing_fits(priority: str, table: list[Scored]) -> str:
    reasons = "; ".join(f"{s.profile.name}: {s.excluded}" for s in table) or "no model profiles"
    return f"no model fits --priority {priority}: {reasons}"


def explain(priority: str, w: Weights, max_cost: float | None, table: Sequence[Scored]) -> str:
    """A few lines for --verbose: the weights, then each model's score or why it was ruled out."""
    budget = "no limit" if max_cost is None else f"${max_cost:.4f}"
    lines = [
        f"priority {priority}: {w.quality:g}*quality + {w.speed:g}*speed + {w.cost:g}*cost"
        + (", local models only" if priority == "privacy" else "") + f"; max cost {budget}",
    ]
    for i, s in enumerate(table):
        p = s.profile
        head = f"  {p.name:<18} est. ${s.cost_usd:.4f}"
        if s.excluded:
            lines.append(f"{head}  excluded: {s.excluded}")
            continue
        detail = f"q {p.quality:.2f} s {p.speed:.2f} c {s.cost_score:.2f}"
        lines.append(f"{head}  score {s.score:.3f} ({detail})" + ("  <- chosen" if i == 0 else ""))
    return "\n".join(lines)
