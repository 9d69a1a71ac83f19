"""Claude Code (the `claude` CLI) on the local model: which model, which limits, which variables.

Each variable below was checked against the real client (Claude Code 2.1.197, against a recording
server; docs/usage.md "Claude Code set-up" says what each one changes).  The policy (`setup`,
`claude_env`) is pure; `run_claude_code` starts or reuses the proxy and runs `claude`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import AgenticFlowError, ConfigError
from ..models import catalog, store
from ..settings import RunSettings, environ
from .plan import LOCAL_PLACEHOLDER_KEY, Hooks, local_proxy

# Claude Code's own default output limit (32,000 for a model name it does not know) would take hours
# on a local model: catalog.output_limit is a quarter of the context, at most OUTPUT_CAP.
OUTPUT_CAP = catalog.OUTPUT_CAP
DEFAULT_CONTEXT = 4096  # what the engine assumes when genai_config.json names no context_length
INSTALL_HINT = "install it with `npm install -g @anthropic-ai/claude-code`"
# Limits a user may tune: a value already in the environment wins over ours.  The others must be
# ours (an ANTHROPIC_API_KEY in the environment is the user's real key, for the real API).
TUNABLE = ("CLAUDE_CODE_MAX_CONTEXT_TOKENS", "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "CLAUDE_CODE_ATTRIBUTION_HEADER")


@dataclass(frozen=True)
class ClaudeCodeSetup:
    """The local model Claude Code will drive and the limits it should assume."""

    model: str  # what the proxy loads: a catalog name or a model folder
    model_name: str  # what Claude Code sends as `model` (never `claude-...`: see claude_env)
    context_tokens: int
    output_tokens: int
    source: str  # why this model: a flag, ONNX_MODEL_PATH, or the best installed tool-capable model


def choose_model(settings: RunSettings, flag: str | None = None) -> tuple[str, str]:
    """(model, why): --model, else ONNX_MODEL_PATH, else the best installed tool-capable model,
    else the configured default (the proxy then says how to install a better one)."""
    if flag:
        return flag, "flag --model"
    source = settings.proxy_sources.get("model", "default")
    if source != "default":
        return settings.proxy.model, source
    best = store.best_installed(tool_use=True, store=settings.proxy.model_dir)
    if best is not None:
        return best, "the best installed tool-capable model"
    return settings.proxy.model, "default (no tool-capable model installed: `agentic-flow models list`)"


def context_length(model: str, model_dir: Path) -> int:
    """The context the engine will serve: genai_config.json's, else the catalog's, else the engine default."""
    try:
        genai = json.loads((store.resolve(model, store=model_dir) / "genai_config.json").read_text())
        return int(genai["model"]["context_length"])
    except (AgenticFlowError, OSError, ValueError, KeyError, TypeError):
        if catalog.is_known(model):
            return catalog.get(model).context_length
        return DEFAULT_CONTEXT


def setup(settings: RunSettings, flag: str | None = None) -> ClaudeCodeSetup:
    model, why = choose_model(settings, flag)
    context = context_length(model, settings.proxy.model_dir)
    name = model if catalog.is_known(model) else Path(model).name or "local-model"
    if name.startswith("claude-"):
        # Claude Code ignores CLAUDE_CODE_MAX_CONTEXT_TOKENS for `claude-` names.
        name = f"local-{name}"
    return ClaudeCodeSetup(model, name, context, catalog.output_limit(context), why)


def claude_env(base: Mapping[str, str], url: str, api_key: str, cc: ClaudeCodeSetup) -> dict[str, str]:
    """Claude Code's environment: `base` plus the variables that point it at the local model."""
    name = cc.model_name
    ours = {
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": api_key,
        # Without ANTHROPIC_MODEL the default alias keeps its `[1m]` suffix: a 1M-token window that
        # CLAUDE_CODE_MAX_CONTEXT_TOKENS cannot lower, and the context-1m beta on every request.
        "ANTHROPIC_MODEL": name,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": name,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": name,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": name,  # its background calls use the haiku alias
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(cc.context_tokens),
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(cc.output_tokens),
        # Drops the per-version `x-anthropic-billing-header` block from the system prompt: with it the
        # prompt's first bytes change with each Claude Code release and no cached prefix matches.
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
    }
    return {**base, **ours, **{key: base[key] for key in TUNABLE if base.get(key)}}


def find_claude(env: Mapping[str, str]) -> str:
    claude = shutil.which("claude", path=env.get("PATH"))
    if claude is None:
        raise ConfigError(f"Claude Code is not installed (no `claude` on PATH); {INSTALL_HINT}")
    return claude


# Claude Code's sub-agent tool starts a whole second conversation on the same small model.  Measured on
# qwen2.5-coder-1.5b with Claude Code's 24 tools: asked to create hello.py, it called `Agent` (the first
# tool listed) in 3 of 3 sessions and never wrote the file.  Denied unless the user sets their own list.
DENIED_TOOLS = ("Agent",)
DENY_FLAGS = ("--disallowedTools", "--disallowed-tools")


def claude_args(args: Sequence[str]) -> list[str]:
    """The user's arguments, with the tools a local model should not be offered denied first."""
    if any(arg.split("=", 1)[0] in DENY_FLAGS for arg in args):
        return list(args)
    return [DENY_FLAGS[0], ",".join(DENIED_TOOLS), *args]


def run_claude_code(args: Sequence[str], settings: RunSettings, hooks: Hooks, model: str | None = None) -> int:
    """Start or reuse the proxy for the chosen model, run `claude ARGS` against it, return its exit code."""
    base = environ()
    claude = find_claude(base)
    cc = setup(settings, model)
    hooks.notice(f"Claude Code on {cc.model} ({cc.source}): context {cc.context_tokens}, "
                 f"output limit {cc.output_tokens} tokens")
    with local_proxy(replace(settings.proxy, model=cc.model, idle_exit=settings.keep_warm.value), hooks) as url:
        env = claude_env(base, url, settings.proxy.api_key or LOCAL_PLACEHOLDER_KEY, cc)
        return subprocess.call([claude, *claude_args(args)], env=env)
