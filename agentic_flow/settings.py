"""Configuration, resolved once: flags > environment variables > defaults.

This is the only module that reads `os.environ`.  Commands build a frozen settings object here and
pass it down; a child process (the proxy) receives its settings as command-line arguments.
Each resolved value remembers where it came from, so `--verbose` can explain it.

One cohesive concept, kept in one module on purpose (a little over 350 lines): every flag and variable
of the project, how it is parsed and validated, and where it came from.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError
from .openai.providers import UpstreamConfig, resolve_upstream

T = TypeVar("T")

DEFAULT_PORT = 3001
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODEL = "smollm2-135m"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_QUEUE = 64
ANTHROPIC_API_URL = "https://api.anthropic.com"
LOG_LEVELS = ("debug", "info", "warning", "error")

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class Provider(StrEnum):
    ONNX = "onnx"
    ANTHROPIC = "anthropic"
    # An OpenAI-compatible upstream behind the proxy (openai.providers): vLLM, Ray Serve, a host...
    OPENAI = "openai"
    OPENROUTER = "openrouter"
    GEMINI = "gemini"

    @property
    def upstream(self) -> bool:
        """Served through the proxy in upstream mode (the proxy translates to Chat Completions)."""
        return self.value in UPSTREAM_PROVIDERS


PROVIDERS = tuple(p.value for p in Provider)
UPSTREAM_PROVIDERS = ("openai", "openrouter", "gemini")
# The upstream's key travels to the proxy child in its environment, never in argv (`ps` shows argv).
UPSTREAM_KEY_VARIABLE = "AGENTIC_FLOW_UPSTREAM_KEY"


class Origin(Enum):
    """Where a resolved value came from, for decisions; `Resolved.source` is the words for people."""

    FLAG = "flag"
    ENV = "env"
    DEFAULT = "default"
    CHOSEN = "chosen"  # decided from other settings (the optimizer)


def environ() -> Mapping[str, str]:
    return os.environ


@dataclass(frozen=True)
class Resolved(Generic[T]):
    value: T
    source: str  # "flag --x", "env X", "default", ...
    origin: Origin = Origin.DEFAULT


def pick(flag: T | None, flag_name: str, env: Mapping[str, str], var: str, default: T) -> Resolved[T]:
    """Flag if given, else the variable if set and non-empty, else the default (strings only from env)."""
    if flag is not None:
        return Resolved(flag, f"flag {flag_name}", Origin.FLAG)
    raw = env.get(var)
    if raw is not None and raw.strip() != "":
        return Resolved(raw.strip(), f"env {var}", Origin.ENV)  # type: ignore[arg-type]
    return Resolved(default, "default")


def parse_bool(raw: str, var: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{var}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def parse_int(raw: object, what: str) -> int:
    """An int from a flag or variable: ASCII digits only (int() also reads "٣٠٠١" as 3001)."""
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise ConfigError(f"{what} {raw!r} is not a number")
    return int(text)


def parse_port(raw: object, source: str) -> int:
    try:
        port = parse_int(raw, "port")
    except ConfigError:
        raise ConfigError(f"port {raw!r} ({source}) is not a number") from None
    # Port 0 would bind a random port that nobody could then find and probe.
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} ({source}) is outside 1..65535")
    return port


def parse_url(raw: str, source: str) -> str:
    """An http(s) base URL without a trailing slash."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{raw!r} ({source}) is not an http:// or https:// URL")
    return raw.rstrip("/")


def clean_key(key: str | None) -> str | None:
    """An API key; one of only whitespace is no key (it would otherwise pass the bind check)."""
    return key.strip() or None if key is not None else None


# ---------------------------------------------------------------- directories

def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = environ() if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentic-flow"


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = environ() if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agentic-flow"


def model_dir(env: Mapping[str, str] | None = None) -> Path:
    """The model store: AGENTIC_FLOW_MODEL_DIR, else the user's cache directory (never the cwd)."""
    env = environ() if env is None else env
    override = env.get("AGENTIC_FLOW_MODEL_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return cache_dir(env) / "models"


def local_model(flag: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The local model: --model, else ONNX_MODEL_PATH (a catalog name or a folder), else the default."""
    env = environ() if env is None else env
    return str(pick(flag, "--model", env, "ONNX_MODEL_PATH", DEFAULT_MODEL).value)


# ---------------------------------------------------------------- proxy

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


def _count(flag: str, minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = parse_int(raw, flag)
        if value < minimum:
            raise ConfigError(f"{flag} {value} is below {minimum}")
        return value
    return parse


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
    grace_seconds: float = field(default=10.0, metadata=_option(
        "--grace", "seconds in-flight streams get to finish on shutdown", _seconds("--grace")))
    idle_timeout: float = field(default=15.0, metadata=_option(
        "--idle-timeout", "close a connection without a complete request head after this many seconds "
        "(slow headers, idle keep-alive)", _seconds("--idle-timeout", 0.1)))
    body_timeout: float = field(default=60.0, metadata=_option(
        "--body-timeout", "seconds a client has to send a request body", _seconds("--body-timeout", 0.1)))
    max_connections: int = field(default=512, metadata=_option(
        "--max-connections", "open connections at most; one more gets 529", _count("--max-connections", 1)))
    log_level: str = field(default="info", metadata=_option("--log-level", "debug, info, warning or error",
                                                            _log_level))
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
        settings = with_upstream(cls(**values), env)
        check_bind(settings.host, settings.api_key)
        return settings

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
    env: Mapping[str, str] | None = None,
) -> ResolvedProxy:
    """The proxy's settings from flags, then variables, then defaults; each with its source."""
    env = environ() if env is None else env
    port_r = pick(port, "--port", env, "ONNX_PROXY_PORT", DEFAULT_PORT)
    model_r = pick(model, "--model", env, "ONNX_MODEL_PATH", DEFAULT_MODEL)
    key_r = pick(api_key, "--api-key", env, "AGENTIC_FLOW_API_KEY", "")
    prov_r = pick(providers, "--providers", env, "ONNX_EXECUTION_PROVIDERS", "cpu")
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
    )
    settings = with_upstream(settings, env)
    check_bind(settings.host, settings.api_key)
    sources = {
        "port": port_r.source, "model": model_r.source, "providers": prov_r.source, "api_key": key_r.source,
        "model_dir": "env AGENTIC_FLOW_MODEL_DIR" if env.get("AGENTIC_FLOW_MODEL_DIR") else "default",
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


# ---------------------------------------------------------------- the main command

def resolve_provider(flag: str | None, env: Mapping[str, str]) -> Resolved[Provider]:
    """--provider, then PROVIDER, then USE_ONNX, then anthropic if ANTHROPIC_API_KEY is set, else onnx."""
    chosen = pick(flag, "--provider", env, "PROVIDER", "")
    if chosen.value:
        try:
            return Resolved(Provider(str(chosen.value).strip().lower()), chosen.source, chosen.origin)
        except ValueError:
            raise ConfigError(
                f"unknown provider {chosen.value!r} ({chosen.source}); valid providers: {', '.join(PROVIDERS)}"
            ) from None
    use_onnx = env.get("USE_ONNX")
    if use_onnx is not None and use_onnx.strip() and parse_bool(use_onnx, "USE_ONNX"):
        return Resolved(Provider.ONNX, "env USE_ONNX", Origin.ENV)
    if env.get("ANTHROPIC_API_KEY"):
        return Resolved(Provider.ANTHROPIC, "default (ANTHROPIC_API_KEY is set)")
    return Resolved(Provider.ONNX, "default (no ANTHROPIC_API_KEY: using the local model)")


@dataclass(frozen=True)
class RunSettings:
    """Everything the main command needs, each value with where it came from."""

    provider: Resolved[Provider]
    model: Resolved[str | None]
    anthropic_base_url: Resolved[str]
    anthropic_api_key: Resolved[str | None]
    proxy_url: Resolved[str | None]
    proxy: ProxySettings
    agents_dir: Resolved[str | None]
    proxy_sources: Mapping[str, str] = field(default_factory=dict)  # ProxySettings field -> source
    agents_env_dir: str | None = None  # AGENTS_DIR, searched after --agents-dir (agents_dir shows the first)

    def explain(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for --verbose; secrets are masked."""
        key = self.anthropic_api_key.value
        src = self.proxy_sources
        return [
            ("provider", self.provider.value, self.provider.source),
            ("model", str(self.model.value or "(agent or provider default)"), self.model.source),
            ("anthropic base url", self.anthropic_base_url.value, self.anthropic_base_url.source),
            ("anthropic api key", "set" if key else "not set", self.anthropic_api_key.source),
            ("proxy url", str(self.proxy_url.value or "(start or reuse a local proxy)"), self.proxy_url.source),
            ("proxy port", str(self.proxy.port), src.get("port", "default")),
            ("local model", self.proxy.model, src.get("model", "default")),
            ("model store", str(self.proxy.model_dir), src.get("model_dir", "default")),
            ("execution providers", ",".join(self.proxy.providers), src.get("providers", "default")),
            ("agents dir", str(self.agents_dir.value or "(search order)"), self.agents_dir.source),
        ]


def run_settings(
    *,
    provider: str | None = None,
    model: str | None = None,
    agents_dir: str | None = None,
    upstream: str | None = None,
    env: Mapping[str, str] | None = None,
) -> RunSettings:
    env = environ() if env is None else env
    prov = resolve_provider(provider, env)
    # --model with the onnx provider picks the local model (a catalog name or a folder); with an
    # upstream provider it names the upstream's model, and the local proxy runs in upstream mode.
    if prov.value.upstream:
        local = resolve_proxy(model=model, provider=prov.value.value, upstream=upstream, env=env)
    else:
        local = resolve_proxy(model=model if prov.value is Provider.ONNX else None, env=env)
    proxy_url: Resolved[str | None] = pick(None, "", env, "ONNX_PROXY_URL", None)
    base_url = pick(None, "", env, "ANTHROPIC_BASE_URL", ANTHROPIC_API_URL)
    env_agents = pick(None, "", env, "AGENTS_DIR", None)
    return RunSettings(
        provider=prov,
        model=Resolved(model, "flag --model", Origin.FLAG) if model is not None else Resolved(None, "default"),
        anthropic_base_url=Resolved(parse_url(str(base_url.value), base_url.source), base_url.source,
                                    base_url.origin),
        anthropic_api_key=pick(None, "", env, "ANTHROPIC_API_KEY", None),
        proxy_url=Resolved(parse_url(proxy_url.value, proxy_url.source), proxy_url.source, proxy_url.origin)
        if proxy_url.value else proxy_url,
        proxy=local.settings,
        agents_dir=pick(agents_dir, "--agents-dir", env, "AGENTS_DIR", None),
        proxy_sources=local.sources,
        agents_env_dir=env_agents.value,
    )


# ---------------------------------------------------------------- the agent loop

DEFAULT_MAX_TURNS = 20


@dataclass(frozen=True)
class LoopSettings:
    """How an agent with tools acts: where, with which permissions, for how many turns."""

    workspace: Resolved[Path]
    permission_mode: Resolved[str]
    allow_tools: Resolved[tuple[str, ...]]
    max_turns: Resolved[int]
    tools: tuple[str, ...] | None = None  # --tools: this run's tools (None: the agent's)
    tool_choice: str | None = None  # --tool-choice for the first turn: auto, any, or a tool's name

    def explain(self) -> list[tuple[str, str, str]]:
        return [
            ("workspace", str(self.workspace.value), self.workspace.source),
            ("permission mode", self.permission_mode.value, self.permission_mode.source),
            ("allowed tools", ",".join(self.allow_tools.value) or "(none)", self.allow_tools.source),
            ("max turns", str(self.max_turns.value), self.max_turns.source),
        ]


def split_names(raw: str) -> tuple[str, ...]:
    """`Bash,Write` or `Bash Write` as names, in order, without blanks."""
    return tuple(name for name in raw.replace(",", " ").split() if name)


def loop_settings(
    *,
    workspace: str | None = None,
    permission_mode: str | None = None,
    allow_tools: str | None = None,
    tools: str | None = None,
    max_turns: int | None = None,
    tool_choice: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoopSettings:
    """--workspace (default: the current folder), --permission-mode, --allow-tools and --max-turns, each
    after its AGENTIC_FLOW_* variable; --tools and --tool-choice are per run and have none."""
    from .agents.tools.permissions import PERMISSION_MODES  # here: the tools package imports this module

    env = environ() if env is None else env
    folder = pick(workspace, "--workspace", env, "AGENTIC_FLOW_WORKSPACE", "")
    root = Path(folder.value).expanduser() if folder.value else (cwd or Path.cwd())
    mode = pick(permission_mode, "--permission-mode", env, "AGENTIC_FLOW_PERMISSION_MODE", "default")
    if mode.value not in PERMISSION_MODES:
        raise ConfigError(f"unknown permission mode {mode.value!r} ({mode.source}); "
                          f"choose one of: {', '.join(PERMISSION_MODES)}")
    allowed = pick(allow_tools, "--allow-tools", env, "AGENTIC_FLOW_ALLOW_TOOLS", "")
    turns = pick(max_turns, "--max-turns", env, "AGENTIC_FLOW_MAX_TURNS", DEFAULT_MAX_TURNS)
    turn_count = parse_int(turns.value, f"max turns ({turns.source})")
    if turn_count < 1:
        raise ConfigError(f"max turns ({turns.source}) must be at least 1, got {turn_count}")
    return LoopSettings(
        workspace=Resolved(root, folder.source if folder.value else "default (the current folder)",
                           folder.origin),
        permission_mode=mode,
        allow_tools=Resolved(split_names(str(allowed.value)), allowed.source, allowed.origin),
        max_turns=Resolved(turn_count, turns.source, turns.origin),
        tools=split_names(tools) if tools is not None else None,
        tool_choice=tool_choice.strip() if tool_choice and tool_choice.strip() else None,
    )
