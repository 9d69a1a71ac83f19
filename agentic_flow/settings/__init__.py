"""Configuration, resolved once: flags > environment variables > defaults.

This package is the only code that reads `os.environ` (`core.environ`).  Commands build a frozen
settings object here and pass it down; a child process (the proxy) receives its settings as
command-line arguments.  Each resolved value remembers where it came from, so `--verbose` can explain it.

- `core`: defaults, providers, `Resolved`/`pick`, the shared parsers, the user's folders;
- `proxy`: `ProxySettings` and `resolve_proxy` (with the upstream mode's URL and key);
- `run`: `RunSettings` for the main command;
- `loop`: `LoopSettings` for an agent with tools.

Everything is re-exported here: callers write `from agentic_flow.settings import ...` or `settings.X`.
"""

from __future__ import annotations

from .core import (
    ANTHROPIC_API_URL,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MODEL,
    DEFAULT_PORT,
    FALSE_WORDS,
    LOG_LEVELS,
    PROVIDERS,
    TRUE_WORDS,
    UPSTREAM_KEY_VARIABLE,
    UPSTREAM_PROVIDERS,
    Origin,
    Provider,
    Resolved,
    cache_dir,
    clean_key,
    environ,
    local_model,
    model_dir,
    parse_bool,
    parse_duration,
    parse_int,
    parse_port,
    parse_url,
    pick,
    show_duration,
    state_dir,
)
from .loop import (
    DEFAULT_MAX_TURNS,
    LoopSettings,
    loop_settings,
    split_names,
)
from .proxy import (
    LOOPBACK,
    TOOL_POLICY_ALL,
    TOOL_POLICY_AUTO,
    TOOL_POLICY_VARIABLE,
    ProxySettings,
    ResolvedProxy,
    check_bind,
    parse_providers,
    parse_tool_policy,
    proxy_settings,
    resolve_proxy,
    with_upstream,
)
from .run import (
    KEEP_WARM_VARIABLE,
    RunSettings,
    resolve_provider,
    run_settings,
)

__all__ = [
    "ANTHROPIC_API_URL",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_TURNS",
    "DEFAULT_MODEL",
    "DEFAULT_PORT",
    "FALSE_WORDS",
    "KEEP_WARM_VARIABLE",
    "LOG_LEVELS",
    "LOOPBACK",
    "PROVIDERS",
    "TOOL_POLICY_ALL",
    "TOOL_POLICY_AUTO",
    "TOOL_POLICY_VARIABLE",
    "TRUE_WORDS",
    "UPSTREAM_KEY_VARIABLE",
    "UPSTREAM_PROVIDERS",
    "LoopSettings",
    "Origin",
    "Provider",
    "ProxySettings",
    "Resolved",
    "ResolvedProxy",
    "RunSettings",
    "cache_dir",
    "check_bind",
    "clean_key",
    "environ",
    "local_model",
    "loop_settings",
    "model_dir",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_port",
    "parse_providers",
    "parse_tool_policy",
    "parse_url",
    "pick",
    "proxy_settings",
    "resolve_provider",
    "resolve_proxy",
    "run_settings",
    "show_duration",
    "split_names",
    "state_dir",
    "with_upstream",
]
