"""Configuration, resolved once: flags > environment variables > defaults.

This is the only module that reads `os.environ`.  Commands build a frozen settings object here and
pass it down; a child process (the proxy) receives its settings as command-line arguments.
Each resolved value remembers where it came from, so `--verbose` can explain it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")

DEFAULT_PORT = 3001
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODEL = "smollm2-135m"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_QUEUE = 64
PROVIDERS = ("onnx", "anthropic")
ANTHROPIC_API_URL = "https://api.anthropic.com"

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def environ() -> Mapping[str, str]:
    return os.environ


@dataclass(frozen=True)
class Resolved(Generic[T]):
    value: T
    source: str  # "flag --x", "env X", "default", ...


def pick(flag: T | None, flag_name: str, env: Mapping[str, str], var: str, default: T) -> Resolved[T]:
    """Flag if given, else the variable if set and non-empty, else the default (strings only from env)."""
    if flag is not None:
        return Resolved(flag, f"flag {flag_name}")
    raw = env.get(var)
    if raw is not None and raw.strip() != "":
        return Resolved(raw.strip(), f"env {var}")  # type: ignore[arg-type]
    return Resolved(default, "default")


def parse_bool(raw: str, var: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{var}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def parse_port(raw: object, source: str) -> int:
    try:
        port = int(str(raw))
    except ValueError:
        raise ConfigError(f"port {raw!r} ({source}) is not a number") from None
    # Port 0 would bind a random port that nobody could then find and probe.
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} ({source}) is outside 1..65535")
    return port


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

@dataclass(frozen=True)
class ProxySettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    model: str = DEFAULT_MODEL  # a catalog name or a model folder path
    model_dir: Path = field(default_factory=model_dir)
    providers: tuple[str, ...] = ("cpu",)
    threads: int = 0  # 0: all cores
    api_key: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    max_queue: int = DEFAULT_MAX_QUEUE
    max_batch: int = 4
    grace_seconds: float = 10.0
    log_level: str = "info"
    parent_pid: int | None = None  # exit when this process dies (the CLI that started us)

    def to_argv(self) -> list[str]:
        """The arguments that make `python -m agentic_flow.proxy` run with these settings."""
        argv = [
            "--host", self.host, "--port", str(self.port), "--model", self.model,
            "--model-dir", str(self.model_dir), "--providers", ",".join(self.providers),
            "--threads", str(self.threads), "--max-body", str(self.max_body),
            "--max-queue", str(self.max_queue), "--max-batch", str(self.max_batch),
            "--grace", str(self.grace_seconds), "--log-level", self.log_level,
        ]
        # The API key is not here: it travels in the child's environment, where `ps` cannot see it.
        if self.parent_pid is not None:
            argv += ["--parent-pid", str(self.parent_pid)]
        return argv


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


def proxy_settings(
    *,
    host: str | None = None,
    port: int | None = None,
    model: str | None = None,
    api_key: str | None = None,
    providers: str | None = None,
    max_queue: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ProxySettings:
    env = environ() if env is None else env
    port_r = pick(port, "--port", env, "ONNX_PROXY_PORT", DEFAULT_PORT)
    model_r = pick(model, "--model", env, "ONNX_MODEL_PATH", DEFAULT_MODEL)
    key_r = pick(api_key, "--api-key", env, "AGENTIC_FLOW_API_KEY", "")
    prov_r = pick(providers, "--providers", env, "ONNX_EXECUTION_PROVIDERS", "cpu")
    settings = ProxySettings(
        host=host or DEFAULT_HOST,
        port=parse_port(port_r.value, port_r.source),
        model=str(model_r.value),
        model_dir=model_dir(env),
        providers=parse_providers(str(prov_r.value)),
        api_key=str(key_r.value) or None,
        max_queue=max_queue if max_queue is not None else DEFAULT_MAX_QUEUE,
    )
    check_bind(settings.host, settings.api_key)
    return settings


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_bind(host: str, api_key: str | None) -> None:
    if host not in LOOPBACK and not host.startswith("127.") and not api_key:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone on the network could use the model. "
            "Set --api-key or AGENTIC_FLOW_API_KEY, or bind to 127.0.0.1"
        )


# ---------------------------------------------------------------- the main command

def resolve_provider(flag: str | None, env: Mapping[str, str]) -> Resolved[str]:
    """--provider, then PROVIDER, then USE_ONNX, then anthropic if ANTHROPIC_API_KEY is set, else onnx."""
    chosen = pick(flag, "--provider", env, "PROVIDER", "")
    if chosen.value:
        name = str(chosen.value).strip().lower()
        if name not in PROVIDERS:
            raise ConfigError(
                f"unknown provider {chosen.value!r} ({chosen.source}); valid providers: {', '.join(PROVIDERS)}"
            )
        return Resolved(name, chosen.source)
    use_onnx = env.get("USE_ONNX")
    if use_onnx is not None and use_onnx.strip() and parse_bool(use_onnx, "USE_ONNX"):
        return Resolved("onnx", "env USE_ONNX")
    if env.get("ANTHROPIC_API_KEY"):
        return Resolved("anthropic", "default (ANTHROPIC_API_KEY is set)")
    return Resolved("onnx", "default (no ANTHROPIC_API_KEY: using the local model)")


@dataclass(frozen=True)
class RunSettings:
    """Everything the main command needs, each value with where it came from."""

    provider: Resolved[str]
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
    env: Mapping[str, str] | None = None,
) -> RunSettings:
    env = environ() if env is None else env
    prov = resolve_provider(provider, env)
    proxy = proxy_settings(env=env)
    sources = {
        "port": pick(None, "", env, "ONNX_PROXY_PORT", None).source,
        "model": pick(None, "", env, "ONNX_MODEL_PATH", None).source,
        "model_dir": "env AGENTIC_FLOW_MODEL_DIR" if env.get("AGENTIC_FLOW_MODEL_DIR") else "default",
        "providers": pick(None, "", env, "ONNX_EXECUTION_PROVIDERS", None).source,
    }
    if prov.value == "onnx" and model is not None:
        # --model with the onnx provider picks the local model (a catalog name or a folder).
        proxy = replace(proxy, model=model)
        sources["model"] = "flag --model"
    return RunSettings(
        provider=prov,
        model=Resolved(model, "flag --model") if model is not None else Resolved(None, "default"),
        anthropic_base_url=pick(None, "", env, "ANTHROPIC_BASE_URL", ANTHROPIC_API_URL),  # type: ignore[arg-type]
        anthropic_api_key=pick(None, "", env, "ANTHROPIC_API_KEY", None),
        proxy_url=pick(None, "", env, "ONNX_PROXY_URL", None),
        proxy=proxy,
        agents_dir=pick(agents_dir, "--agents-dir", env, "AGENTS_DIR", None),
        proxy_sources=sources,
        agents_env_dir=pick(None, "", env, "AGENTS_DIR", None).value,
    )
