"""What answers the proxy's routes: a `Backend`, the local engine (local_backend) or an upstream server
(upstream_backend).  The views cannot tell which one serves them (after vLLM's EngineClient).

Each request method validates what it can at once (raising the project's errors, which the middleware
turns into an HTTP status) and returns a `Job`: the view runs it inside an admission slot, and it
returns the answer, a JSON body or a `Stream` that `streaming.write_stream` writes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..anthropic.types import CountTokensRequest, MessagesRequest
from ..openai.types import ChatCompletionRequest
from .health import HealthStatus


@dataclass(frozen=True)
class Stream:
    """A streamed answer: its frames, and how an error is framed once the stream has started
    ((Anthropic error type, message) -> bytes, in the route's own API)."""

    frames: AsyncGenerator[bytes, None]
    error_frame: Callable[[str, str], bytes]


Answer = dict[str, Any] | Stream
Job = Callable[[], Awaitable[Answer]]


@dataclass(frozen=True)
class TokenCount:
    input_tokens: int
    estimate: bool = False  # no tokenizer for the model: a character-based estimate


@dataclass(frozen=True)
class BackendHealth:
    """The backend's part of /health (the proxy adds its version, uptime, admission and pid)."""

    status: HealthStatus
    model: str
    model_path: str = ""
    providers: tuple[str, ...] = ()
    loaded: bool = True
    error: str | None = None
    provider: str = "onnx"
    upstream: str | None = None
    speculation: str | None = None  # the local engine's (engine/ort.py OrtModel.speculation)


class Backend(Protocol):
    @property
    def capacity(self) -> int:
        """Generations it serves at once; the admission queues the rest."""
        ...

    def messages(self, body: Mapping[str, Any], req: MessagesRequest) -> Job: ...

    def chat_completions(self, req: ChatCompletionRequest) -> Job: ...

    def check_chat_completions(self) -> None:
        """Raises NotFound when this backend does not serve Chat Completions at all, before the body is
        read: such a request is a 404 whatever it holds."""
        ...

    async def count_tokens(self, body: Mapping[str, Any], req: CountTokensRequest) -> TokenCount: ...

    def model_entry(self) -> dict[str, Any]:
        """The served model in Anthropic's /v1/models shape (id, display_name, created_at, and for a local
        model max_input_tokens and max_tokens)."""
        ...

    def health(self) -> BackendHealth: ...

    async def close(self) -> None: ...
