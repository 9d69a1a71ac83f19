"""The project's exception tree.  It is translated at two edges only: the CLI (exit codes) and the
proxy's error middleware (Anthropic's error envelope)."""

from __future__ import annotations

from .anthropic.errors import error_type_for


class AgenticFlowError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = 1


class ConfigError(AgenticFlowError):
    """Bad flags, variables or files: the user can fix it by changing the input."""

    exit_code = 2


class ModelError(AgenticFlowError):
    """A model is missing, incomplete or cannot be loaded."""

    exit_code = 3


class ModelNotInstalled(ModelError):
    pass


class VerifyError(ModelError):
    """A model folder failed verification; the message names the file and the repair command."""


class EngineError(AgenticFlowError):
    """Inference failed."""

    exit_code = 4


class InferenceDied(EngineError):
    """The inference process died while a request was in it.  The engine re-runs such a request once on
    the restarted process when no text of its answer has been passed on yet (engine.client)."""


class PromptTooLong(EngineError):
    """The prompt does not fit the model's context (max_tokens beyond it is clamped, not refused)."""

    def __init__(self, prompt_tokens: int, max_tokens: int, context_length: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_length = context_length
        super().__init__(
            f"prompt is too long: {prompt_tokens} tokens > {context_length} tokens, the model's maximum "
            f"context length (the reply needs room too: max_tokens was {max_tokens})"
        )

    def __reduce__(self) -> tuple[type[PromptTooLong], tuple[int, int, int]]:
        # Pickled across the inference pipe: rebuild from the numbers, not from the message.
        return (PromptTooLong, (self.prompt_tokens, self.max_tokens, self.context_length))


class ProxyError(AgenticFlowError):
    """The proxy could not start, was not reachable, or misbehaved."""

    exit_code = 5


class PortInUse(ProxyError):
    exit_code = 6


class AgentError(AgenticFlowError):
    """The agent's API call failed (HTTP error, timeout)."""

    exit_code = 1


class TransientAgentError(AgentError):
    """The call failed in a way a later call may not: 429, 529 or another 5xx, an error event of type
    overloaded_error/api_error/rate_limit_error inside the stream, a dropped connection.  The client
    retried it already as far as it could (`attempts`); `shown` says whether part of the answer had
    reached the caller (then the client cannot retry, but a caller that discards the partial turn can).
    `error_type` is the API's error type ("overloaded_error", "api_error", ...), or "connection_error"
    when no answer came; `retry_after` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, *, error_type: str, status: int | None = None,
                 retry_after: float | None = None, shown: bool = False, attempts: int = 1) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.retry_after = retry_after
        self.shown = shown
        self.attempts = attempts


class ApiError(AgenticFlowError):
    """An error the proxy answers with Anthropic's error envelope: an HTTP status, and the error type
    that Anthropic's table (`anthropic.errors.ERROR_TYPES`) gives that status."""

    status = 500
    error_type = error_type_for(500)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.error_type = error_type_for(cls.status)


class InvalidRequestError(ApiError):
    status = 400


class AuthenticationFailed(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Overloaded(ApiError):
    status = 529


class NotReady(ApiError):
    """The model is still loading."""

    status = 503
