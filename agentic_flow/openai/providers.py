"""Where an OpenAI-compatible upstream lives: provider presets, and the one resolved configuration.

`resolve_upstream` applies flags > environment > preset defaults once; it reads the environment only
from the mapping it is given (settings passes os.environ), so no other module looks at variables.

    openai      any OpenAI-compatible server: vLLM, Ray Serve LLM, Ollama, llama.cpp, LM Studio, a
                hosted endpoint.  Base URL required (--upstream or OPENAI_BASE_URL); key optional
                (OPENAI_API_KEY).
    openrouter  https://openrouter.ai/api/v1, key OPENROUTER_API_KEY.
    gemini      https://generativelanguage.googleapis.com/v1beta/openai, key GEMINI_API_KEY or
                GOOGLE_API_KEY.  Sent no `top_k` (the endpoint refuses fields it does not know).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlunsplit

from ..errors import ConfigError
from ..urls import split_http_url


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None
    base_url_variables: tuple[str, ...]
    key_variables: tuple[str, ...]
    send_top_k: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


PROVIDERS: Mapping[str, Provider] = {
    "openai": Provider("openai", None, ("OPENAI_BASE_URL",), ("OPENAI_API_KEY",)),
    "openrouter": Provider(
        "openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_BASE_URL",), ("OPENROUTER_API_KEY",),
        # OpenRouter's optional attribution header: names the app in its dashboards.
        headers={"X-Title": "agentic-flow"},
    ),
    "gemini": Provider(
        "gemini", "https://generativelanguage.googleapis.com/v1beta/openai", ("GEMINI_BASE_URL",),
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"), send_top_k=False,
    ),
}


@dataclass(frozen=True)
class UpstreamConfig:
    """Everything the upstream client needs; `model`, when set, replaces the client's model name."""

    base_url: str
    api_key: str | None = None
    model: str | None = None
    provider: str = "openai"
    max_in_flight: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # between two reads: a long prefill on a busy cluster is slow
    retries: int = 2
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_backoff: float = 30.0  # a longer retry-after is passed on to the client instead of waited out
    send_top_k: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"


def resolve_upstream(
    provider: str,
    environ: Mapping[str, str],
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> UpstreamConfig:
    preset = PROVIDERS.get(provider)
    if preset is None:
        raise ConfigError(f"unknown upstream provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    url = base_url or _first(environ, preset.base_url_variables) or preset.base_url
    if not url:
        raise ConfigError(
            f"provider {provider!r} needs the upstream's base URL: "
            f"--upstream URL or {preset.base_url_variables[0]}"
        )
    key = api_key or _first(environ, preset.key_variables)
    if key is None and preset.base_url is not None:
        raise ConfigError(f"provider {provider!r} needs an API key: set {' or '.join(preset.key_variables)}")
    return UpstreamConfig(
        base_url=normalize_base_url(url), api_key=key, model=model, provider=provider,
        send_top_k=preset.send_top_k, headers=dict(preset.headers),
    )


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[name] for name in names if environ.get(name)), None)


def normalize_base_url(url: str) -> str:
    """The URL that `/chat/completions` is appended to.  `http://host:8000`, `http://host:8000/v1/`
    and `http://host:8000/v1/chat/completions` all give `http://host:8000/v1`; a URL with its own
    path (`/api/v1`, `/v1beta/openai`) keeps it."""
    parts = split_http_url(url.strip(), "the upstream URL (http(s)://host[:port][/path])")
    path = parts.path.rstrip("/").removesuffix("/chat/completions").rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))
