"""The proxy's settings (`ProxySettings`): its flags, variables and defaults, resolved once
(`resolve_proxy`), and written as the command line of the proxy process (`to_argv`/`from_argv`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..openai.providers import UpstreamConfig, resolve_upstream
from .core import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MODEL,
    DEFAULT_PORT,
    LOG_LEVELS,
    UPSTREAM_KEY_VARIABLE,
    UPSTREAM_PROVIDERS,
    Provider,
    Resolved,
    clean_key,
    environ,
    model_dir,
    parse_duration,
    parse_int,
    parse_port,
    pick,
)

PREFIX_CACHE_VARIABLE = "AGENTIC_FLOW_PREFIX_CACHE_MB"
DRAFT_TOKENS_VARIABLE = "AGENTIC_FLOW_DRAFT_TOKENS"
SPECULATE_GREEDY_VARIABLE = "AGENTIC_FLOW_SPECULATE_GREEDY"
# Speculative decoding's largest draft (n-gram lookup, engine/ort.py): onnxruntime-genai takes 1-16;
# 0 turns it off.  Off by default: on the 1.5B through the proxy it won 1.1-1.25x on Write/Edit turns but
# lost on guided prose (0.68x with 4 draft tokens); 4 is the measured best length (docs/benchmarks.md).
DEFAULT_DRAFT_TOKENS = 0
RECOMMENDED_DRAFT_TOKENS = 4
MAX_DRAFT_TOKENS = 16


def parse_providers(raw: str) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    valid = {"cpu", "cuda", "dml", "webgpu", "openvino", "qnn"}
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ConfigError(
            f"ONNX_EXECUTION_PROVIDERS: unknown provider {', '.join(bad) or '(empty)'}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return names


def _option(flag: str, help: str, parse: Callable[[str], Any] = str,
            show: Callable[[Any], str] = str, *, in_argv: bool = True) -> dict[str, Any]:
    """How a ProxySettings field is written as a flag of `python -m agentic_flow.proxy` and read back."""
    return {"flag": flag, "help": help, "parse": parse, "show": show, "in_argv": in_argv}


TOOL_SYNTAXES = ("auto", "code", "json")


def _tool_syntax(raw: str) -> str:
    value = raw.strip().lower()
    if value not in TOOL_SYNTAXES:
        raise ConfigError(f"tool syntax {raw!r}: choose one of {', '.join(TOOL_SYNTAXES)}")
    return value


def _on_off(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{raw!r} is not on or off")


def _count(flag: str, minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = parse_int(raw, flag)
        if value < minimum:
            raise ConfigError(f"{flag} {value} is below {minimum}")
        return value
    return parse


def parse_draft_tokens(raw: str, what: str = "--draft-tokens") -> int:
    value = _count(what, 0)(raw)
    if value > MAX_DRAFT_TOKENS:
        raise ConfigError(f"{what} {value} is above {MAX_DRAFT_TOKENS}, the runtime's largest draft (0 turns it off)")
    return value


def _seconds(flag: str, minimum: float = 0.0) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{flag} {raw!r} is not a number of seconds") from None
        if not minimum <= value < float("inf"):
            raise ConfigError(f"{flag} {raw!r} must be {minimum:g} or more seconds")
        return value
    return parse


def _proxy_provider(raw: str) -> str:
    if raw != Provider.ONNX.value and raw not in UPSTREAM_PROVIDERS:
        raise ConfigError(f"--provider {raw!r}; the proxy serves onnx or an upstream: "
                          f"{', '.join(UPSTREAM_PROVIDERS)}")
    return raw


TOOL_POLICY_AUTO = "auto"  # the catalog entry's tools for its model (proxy/tool_policy.py)
TOOL_POLICY_ALL = "all"  # every tool a request offers
TOOL_POLICY_VARIABLE = "AGENTIC_FLOW_TOOL_POLICY"


def parse_tool_policy(raw: str, what: str = "--tool-policy") -> str:
    """`auto`, `all`, or tool names joined by commas (spaces dropped)."""
    value = raw.strip()
    if value.lower() in (TOOL_POLICY_AUTO, TOOL_POLICY_ALL):
        return value.lower()
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"{what} {raw!r}: give auto, all, or tool names separated by commas")
    return ",".join(names)


def _log_level(raw: str) -> str:
    if raw not in LOG_LEVELS:
        raise ConfigError(f"--log-level {raw!r}; valid: {', '.join(LOG_LEVELS)}")
    return raw


@dataclass(frozen=True)
class ProxySettings:
    """Everything the proxy process needs.  Each field's metadata says how it travels as a flag, so
    `to_argv` and `from_argv` (the parser of `python -m agentic_flow.proxy`) follow the fields."""

    host: str = field(default=DEFAULT_HOST, metadata=_option("--host", "address to listen on"))
    port: int = field(default=DEFAULT_PORT, metadata=_option(
        "--port", "port to listen on", lambda raw: parse_port(raw, "flag --port")))
    model: str = field(default=DEFAULT_MODEL, metadata=_option("--model", "catalog name or model folder path"))
    model_dir: Path = field(
        default_factory=lambda: model_dir(), metadata=_option("--model-dir", "the model store", Path)
    )
    providers: tuple[str, ...] = field(default=("cpu",), metadata=_option(
        "--providers", "execution providers, comma-separated", parse_providers, ",".join))
    threads: int = field(default=0, metadata=_option("--threads", "inference threads (0: all cores)",
                                                     _count("--threads", 0)))
    api_key: str | None = field(default=None, metadata=_option(
        "--api-key", "require this key [env: AGENTIC_FLOW_API_KEY]", clean_key, in_argv=False))
    max_body: int = field(default=DEFAULT_MAX_BODY, metadata=_option(
        "--max-body", "largest request body in bytes", _count("--max-body", 1)))
    max_queue: int = field(default=DEFAULT_MAX_QUEUE, metadata=_option(
        "--max-queue", "requests that may wait before 529 overloaded", _count("--max-queue", 0)))
    max_batch: int = field(default=4, metadata=_option("--max-batch", "rows in one batch", _count("--max-batch", 1)))
    prefix_cache_mb: int | None = field(default=None, metadata=_option(
        "--prefix-cache-mb", f"MB of KV cache the prefix cache may keep (default: a quarter of the memory "
        f"available at start) [env: {PREFIX_CACHE_VARIABLE}]", _count("--prefix-cache-mb", 0)))
    draft_tokens: int = field(default=DEFAULT_DRAFT_TOKENS, metadata=_option(
        "--draft-tokens", "speculative decoding: the largest n-gram draft verified in one pass, for a request "
        f"that runs alone (0: off; at most {MAX_DRAFT_TOKENS}) [env: {DRAFT_TOKENS_VARIABLE}]", parse_draft_tokens))
    speculate_greedy: bool = field(default=False, metadata=_option(
        "--speculate-greedy", "speculate greedy requests too (temperature 0): on or off; their output can "
        "differ from plain decoding where two tokens nearly tie (docs/benchmarks.md) "
        f"[env: {SPECULATE_GREEDY_VARIABLE}]", _on_off, lambda v: "on" if v else "off"))
    grace_seconds: float = field(default=10.0, metadata=_option(
        "--grace", "seconds in-flight streams get to finish on shutdown", _seconds("--grace")))
    idle_timeout: float = field(default=15.0, metadata=_option(
        "--idle-timeout", "seconds an idle keep-alive connection is promised (Keep-Alive: timeout=N); one "
        "without a complete request head is closed a grace later: N + max(1, N/2)", _seconds("--idle-timeout", 0.1)))
    body_timeout: float = field(default=60.0, metadata=_option(
        "--body-timeout", "seconds a client has to send a request body", _seconds("--body-timeout", 0.1)))
    max_connections: int = field(default=512, metadata=_option(
        "--max-connections", "open connections at most; one more gets 529", _count("--max-connections", 1)))
    log_level: str = field(default="info", metadata=_option("--log-level", "debug, info, warning or error",
                                                            _log_level))
    tool_syntax: str = field(default="auto", metadata=_option(
        "--tool-syntax", "how the local model writes a Write/Edit call's code: code (fenced blocks after the "
        "call's JSON), json (inside the JSON), auto (the catalog's choice; json for other models)",
        _tool_syntax))
    repetition_guard: bool = field(default=True, metadata=_option(
        "--repetition-guard", "cut a reply that repeats itself (stop reason max_tokens): on or off",
        _on_off, lambda v: "on" if v else "off"))
    # Upstream mode: the proxy fronts an OpenAI-compatible server instead of loading a model.
    provider: str = field(default="onnx", metadata=_option(
        "--provider", f"onnx (the local model) or an upstream: {', '.join(UPSTREAM_PROVIDERS)}", _proxy_provider))
    upstream: str | None = field(default=None, metadata=_option(
        "--upstream", "upstream base URL [env: OPENAI_BASE_URL, OPENROUTER_BASE_URL, GEMINI_BASE_URL]"))
    upstream_model: str | None = field(default=None, metadata=_option(
        "--upstream-model", "the upstream's model (default: the name each client sends)"))
    upstream_key: str | None = field(default=None, metadata=_option(
        "--upstream-key", f"the upstream's API key [env: {UPSTREAM_KEY_VARIABLE}, or the provider's variable]",
        clean_key, in_argv=False))
    tool_policy: str = field(default=TOOL_POLICY_AUTO, metadata=_option(
        "--tool-policy", "the tools a model is offered: auto (its catalog entry's), all, or names separated by "
        f"commas [env: {TOOL_POLICY_VARIABLE}]", parse_tool_policy))
    # Exit after this long without a request (a proxy kept warm for the next run: `--keep-warm`).
    idle_exit: float | None = field(default=None, metadata=_option(
        "--idle-exit", "exit after this many seconds without a request (also 90s, 5m, 1h; default: never)",
        lambda raw: parse_duration(raw, "--idle-exit"), lambda v: f"{v:g}"))
    # Exit when this process dies (the CLI that started us).
    parent_pid: int | None = field(default=None, metadata=_option(
        "--parent-pid", "exit when this process dies", _count("--parent-pid", 1)))

    def to_argv(self) -> list[str]:
        """The arguments that make `python -m agentic_flow.proxy` run with these settings.  The API key
        is not among them: it travels in the child's environment, where `ps` cannot see it."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["in_argv"] and value is not None:
                argv += [f.metadata["flag"], f.metadata["show"](value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ProxySettings:
        """Parse `python -m agentic_flow.proxy`'s arguments; a field not given keeps its default, and
        the API key may come from AGENTIC_FLOW_API_KEY instead of --api-key."""
        env = environ() if env is None else env
        parser = argparse.ArgumentParser(prog="python -m agentic_flow.proxy",
                                         description="Anthropic-compatible proxy for a local ONNX model.")
        for f in fields(cls):
            parser.add_argument(f.metadata["flag"], dest=f.name, help=f.metadata["help"], default=argparse.SUPPRESS)
        given = vars(parser.parse_args(argv))
        values = {f.name: f.metadata["parse"](given[f.name]) for f in fields(cls) if f.name in given}
        values.setdefault("api_key", clean_key(env.get("AGENTIC_FLOW_API_KEY")))
        values.setdefault("model_dir", model_dir(env))
        values.setdefault("upstream_key", clean_key(env.get(UPSTREAM_KEY_VARIABLE)))
        if "prefix_cache_mb" not in values and (raw := env.get(PREFIX_CACHE_VARIABLE, "").strip()):
            values["prefix_cache_mb"] = _count(f"env {PREFIX_CACHE_VARIABLE}", 0)(raw)
        if "draft_tokens" not in values and (raw := env.get(DRAFT_TOKENS_VARIABLE, "").strip()):
            values["draft_tokens"] = parse_draft_tokens(raw, f"env {DRAFT_TOKENS_VARIABLE}")
        if "speculate_greedy" not in values and (raw := env.get(SPECULATE_GREEDY_VARIABLE, "").strip()):
            values["speculate_greedy"] = _on_off(raw)
        settings = with_upstream(cls(**values), env)
        check_bind(settings.host, settings.api_key)
        return settings

    @property
    def served_model(self) -> str:
        """The model's name as the proxy serves it (/health, /v1/models): a folder by its name."""
        return Path(self.model).name if os.sep in self.model else self.model

    @property
    def upstream_mode(self) -> bool:
        return self.provider != Provider.ONNX.value

    def upstream_config(self) -> UpstreamConfig:
        """The upstream client's configuration; the URL and key were resolved already (with_upstream)."""
        return resolve_upstream(self.provider, {}, base_url=self.upstream, api_key=self.upstream_key,
                                model=self.upstream_model)


def with_upstream(settings: ProxySettings, env: Mapping[str, str]) -> ProxySettings:
    """In upstream mode, the base URL and key from the flags, else the provider's variables
    (OPENAI_BASE_URL, OPENROUTER_API_KEY, ...), else its preset; a missing one is a ConfigError
    naming the variable to set."""
    if not settings.upstream_mode:
        return settings
    config = resolve_upstream(settings.provider, env, base_url=settings.upstream, api_key=settings.upstream_key,
                              model=settings.upstream_model)
    return replace(settings, upstream=config.base_url, upstream_key=config.api_key)


@dataclass(frozen=True)
class ResolvedProxy:
    settings: ProxySettings
    sources: Mapping[str, str]  # field name -> where its value came from


def resolve_proxy(
    *,
    host: str | None = None,
    port: int | None = None,
    model: str | None = None,
    api_key: str | None = None,
    providers: str | None = None,
    max_queue: int | None = None,
    provider: str | None = None,
    upstream: str | None = None,
    tool_policy: str | None = None,
    prefix_cache_mb: int | None = None,
    draft_tokens: int | None = None,
    speculate_greedy: str | None = None,
    idle_exit: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ResolvedProxy:
    """The proxy's settings from flags, then variables, then defaults; each with its source."""
    env = environ() if env is None else env
    port_r = pick(port, "--port", env, "ONNX_PROXY_PORT", DEFAULT_PORT)
    model_r = pick(model, "--model", env, "ONNX_MODEL_PATH", DEFAULT_MODEL)
    key_r = pick(api_key, "--api-key", env, "AGENTIC_FLOW_API_KEY", "")
    prov_r = pick(providers, "--providers", env, "ONNX_EXECUTION_PROVIDERS", "cpu")
    tools_r = pick(tool_policy, "--tool-policy", env, TOOL_POLICY_VARIABLE, TOOL_POLICY_AUTO)
    cache_r: Resolved[int | str | None] = pick(prefix_cache_mb, "--prefix-cache-mb", env, PREFIX_CACHE_VARIABLE, None)
    draft_r = pick(draft_tokens, "--draft-tokens", env, DRAFT_TOKENS_VARIABLE, DEFAULT_DRAFT_TOKENS)
    greedy_r = pick(speculate_greedy, "--speculate-greedy", env, SPECULATE_GREEDY_VARIABLE, "off")
    syntax_r = pick(None, "--tool-syntax", env, "AGENTIC_FLOW_TOOL_SYNTAX", "auto")
    guard_r = pick(None, "--repetition-guard", env, "AGENTIC_FLOW_REPETITION_GUARD", "on")
    mode = _proxy_provider(provider or Provider.ONNX.value)
    if mode != Provider.ONNX.value:  # --model names the upstream's model; the local one is unused
        model_r, upstream_model = Resolved(DEFAULT_MODEL, "default"), model
    else:
        upstream_model = None
    settings = ProxySettings(
        host=host or DEFAULT_HOST,
        port=parse_port(port_r.value, port_r.source),
        model=str(model_r.value),
        model_dir=model_dir(env),
        providers=parse_providers(str(prov_r.value)),
        api_key=clean_key(str(key_r.value)),
        max_queue=_count("--max-queue", 0)(str(max_queue)) if max_queue is not None else DEFAULT_MAX_QUEUE,
        provider=mode, upstream=upstream, upstream_model=upstream_model,
        tool_policy=parse_tool_policy(str(tools_r.value), tools_r.source),
        prefix_cache_mb=None if cache_r.value is None else _count(cache_r.source, 0)(str(cache_r.value)),
        draft_tokens=parse_draft_tokens(str(draft_r.value), draft_r.source),
        speculate_greedy=_on_off(str(greedy_r.value)),
        tool_syntax=_tool_syntax(str(syntax_r.value)), repetition_guard=_on_off(str(guard_r.value)),
        idle_exit=None if idle_exit is None else parse_duration(idle_exit, "--idle-exit"),
    )
    settings = with_upstream(settings, env)
    check_bind(settings.host, settings.api_key)
    sources = {
        "port": port_r.source, "model": model_r.source, "providers": prov_r.source, "api_key": key_r.source,
        "tool_policy": tools_r.source,
        "model_dir": "env AGENTIC_FLOW_MODEL_DIR" if env.get("AGENTIC_FLOW_MODEL_DIR") else "default",
        "prefix_cache_mb": cache_r.source, "draft_tokens": draft_r.source, "speculate_greedy": greedy_r.source,
        "tool_syntax": syntax_r.source, "repetition_guard": guard_r.source,
    }
    return ResolvedProxy(settings, sources)


def proxy_settings(**kwargs: Any) -> ProxySettings:
    return resolve_proxy(**kwargs).settings


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_bind(host: str, api_key: str | None) -> None:
    if host not in LOOPBACK and not host.startswith("127.") and not clean_key(api_key):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone on the network could use the model. "
            "Set --api-key or AGENTIC_FLOW_API_KEY, or bind to 127.0.0.1"
        )
