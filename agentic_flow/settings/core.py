"""The settings' vocabulary: defaults, the providers, where a value came from (`Resolved`, `pick`),
the parsers every setting shares, and the user's folders.  `environ()` is the one read of `os.environ`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Generic, TypeVar

from ..errors import ConfigError
from ..urls import split_http_url

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


DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
OFF_WORDS = {"0", "off", "no", "false"}


def parse_duration(raw: str, what: str) -> float | None:
    """Seconds from `300`, `90s`, `5m`, `1.5h`; `0` or `off` is None (off).  Anything else, a negative
    or endless one included, is a ConfigError naming `what`."""
    text = raw.strip().lower()
    if text in OFF_WORDS:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text)
    seconds = float(match.group(1)) * DURATION_UNITS[match.group(2)] if match and text.isascii() else 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{what} {raw!r}: give a duration such as 300, 90s, 5m or 1h (0 or off: none)")
    return seconds


def show_duration(seconds: float) -> str:
    """The shortest of `1h`, `5m`, `90s` that reads `seconds` back exactly."""
    for unit in ("h", "m"):
        if seconds % DURATION_UNITS[unit] == 0:
            return f"{seconds / DURATION_UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def parse_url(raw: str, source: str) -> str:
    """An http(s) base URL without a trailing slash."""
    split_http_url(raw, source)
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
