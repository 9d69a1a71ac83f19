"""The main command's settings (`RunSettings`): the provider, the Anthropic API, and the local
proxy it may start, each with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError
from .core import (
    ANTHROPIC_API_URL,
    PROVIDERS,
    Origin,
    Provider,
    Resolved,
    environ,
    parse_bool,
    parse_duration,
    parse_url,
    pick,
    show_duration,
)
from .proxy import ProxySettings, resolve_proxy

KEEP_WARM_VARIABLE = "AGENTIC_FLOW_KEEP_WARM"


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
    # --keep-warm: seconds the proxy the run starts stays up after its last request (None: stopped at the end)
    keep_warm: Resolved[float | None] = field(default_factory=lambda: Resolved(None, "default"))

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
            ("keep warm", show_duration(self.keep_warm.value) if self.keep_warm.value else "no (stopped after "
             "the run)", self.keep_warm.source),
        ]


def run_settings(
    *,
    provider: str | None = None,
    model: str | None = None,
    agents_dir: str | None = None,
    upstream: str | None = None,
    keep_warm: str | None = None,
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
    warm = pick(keep_warm, "--keep-warm", env, KEEP_WARM_VARIABLE, "off")
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
        keep_warm=Resolved(parse_duration(warm.value, warm.source), warm.source, warm.origin),
    )
