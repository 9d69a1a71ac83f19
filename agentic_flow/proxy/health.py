"""The /health contract, shared by the server (which answers it) and its clients (the launcher, the
CLI's `proxy status`, the tests): one typed record instead of a dict whose keys each side spells.

Pure data: importing this module pulls in neither aiohttp nor the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

SERVICE = "agentic-flow-proxy"


class HealthStatus(StrEnum):
    LOADING = "loading"  # the model is being verified and loaded
    OK = "ok"  # serving
    RESTARTING = "restarting"  # the inference process died and is being replaced
    ERROR = "error"  # the model could not be loaded, or the inference process is gone for good

    @property
    def http_status(self) -> int:
        # Only a proxy that can serve answers 200, so a load balancer or supervisor polls until then.
        return 200 if self is HealthStatus.OK else 503


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    version: str
    model: str
    model_path: str
    providers: tuple[str, ...]
    loaded: bool
    uptime_seconds: float
    requests_in_flight: int
    requests_waiting: int
    pid: int
    error: str | None = None
    service: str = SERVICE
    provider: str = "onnx"  # or the upstream provider (openai, openrouter, gemini)
    upstream: str | None = None  # the upstream's base URL in upstream mode (never its key)
    idle_exit_s: float | None = None  # it exits after this many seconds without a request (--idle-exit)
    # The local engine's speculative decoding, in words ("n-gram 3, up to 4 draft tokens, for a request that
    # runs alone" or "off..."); None in upstream mode and while loading.
    speculation: str | None = None

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["status"] = self.status.value
        body["providers"] = list(self.providers)
        for optional in ("error", "upstream", "idle_exit_s", "speculation"):
            if body[optional] is None:
                del body[optional]
        return body

    @classmethod
    def from_json(cls, data: object) -> Health | None:
        """The health of an agentic-flow proxy, or None when `data` is not one (another service on the
        port, or a body from a version that does not match this contract)."""
        if not isinstance(data, Mapping) or data.get("service") != SERVICE:
            return None
        try:
            return cls(
                status=HealthStatus(data["status"]), version=str(data["version"]), model=str(data["model"]),
                model_path=str(data["model_path"]), providers=tuple(data["providers"]),
                loaded=bool(data["loaded"]), uptime_seconds=float(data["uptime_seconds"]),
                requests_in_flight=int(data["requests_in_flight"]),
                requests_waiting=int(data["requests_waiting"]), pid=int(data["pid"]),
                error=data.get("error"), provider=str(data.get("provider", "onnx")),
                upstream=data.get("upstream"), speculation=data.get("speculation"),
                idle_exit_s=None if data.get("idle_exit_s") is None else float(data["idle_exit_s"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
