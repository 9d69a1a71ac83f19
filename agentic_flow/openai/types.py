"""OpenAI Chat Completions wire types (pydantic v2), validated at the two trust boundaries:

- a request an OpenAI client sends us (`parse_chat_request`), strict on the fields we use, with
  unknown fields ignored because real clients send many we have no use for;
- a response or stream chunk an upstream engine sends us (`ChatCompletion`, `ChatCompletionChunk`),
  lenient, because the hosts differ: Gemini sends tool calls without `index` and with `id: ""`, vLLM
  sends `arguments` only after the name, some hosts put usage on the last content chunk.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidRequestError


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InvalidChatRequest(InvalidRequestError):
    """A request body we refuse (HTTP 400).  `param` names the offending field as OpenAI does."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# --- request content parts --------------------------------------------------------------------


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    url: str
    detail: str | None = None


class ImagePart(_Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class AudioPart(_Wire):
    """Accepted by the schema so the translator can refuse it with a clear message."""

    type: Literal["input_audio"]


class FilePart(_Wire):
    type: Literal["file"]


UserPart: TypeAlias = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart: TypeAlias = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


# --- messages: a discriminated union on "role" ------------------------------------------------


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Wire):
    role: Literal["system"]
    content: str | list[TextPart]


class DeveloperMessage(_Wire):
    role: Literal["developer"]
    content: str | list[TextPart]


class UserMessage(_Wire):
    role: Literal["user"]
    content: str | list[UserPart]


class AssistantMessage(_Wire):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class ToolMessage(_Wire):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


ChatMessage: TypeAlias = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


# --- tools --------------------------------------------------------------------------------------


class FunctionDefinition(_Wire):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, object] | None = None
    strict: bool | None = None


class ToolDefinition(_Wire):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: FunctionName


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedToolChoice


class StreamOptions(_Wire):
    include_usage: bool = False


class JsonSchemaFormat(_Wire):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    # The SDK sends the key "schema"; pydantic's BaseModel has a `schema` attribute, hence the alias.
    schema_: dict[str, object] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None  # up to MAX_STOP (OpenAI's limit), checked in serve_request
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)  # at most serve_request.MAX_CHOICES
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def parse_chat_request(body: object) -> ChatCompletionRequest:
    """Validate a decoded JSON body; a failure names its field the way OpenAI's `param` does."""
    if not isinstance(body, dict):
        raise InvalidChatRequest("the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        # Of a union's failed alternatives, the one that got furthest names the real problem.
        first = max(exc.errors(), key=lambda error: len(_location(error["loc"])))
        loc = _location(first["loc"])
        param = ".".join(loc) or None
        raise InvalidChatRequest(f"{param}: {first['msg']}" if param else first["msg"], param) from None


def _location(loc: tuple[int | str, ...]) -> list[str]:
    """The field path without pydantic's union bookkeeping: the member it tried ("str",
    "list[...]") and, right after a list index, the tag of a discriminated union ("user", "text")."""
    parts: list[str] = []
    previous: int | str | None = None
    for part in loc:
        skip = isinstance(part, str) and (
            part.startswith(_UNION_MARKERS) or (isinstance(previous, int) and part in _TAGS)
        )
        if not skip:
            parts.append(str(part))
        if not (isinstance(part, str) and part.startswith(_UNION_MARKERS)):
            previous = part
    return parts


_UNION_MARKERS = ("str", "list[", "literal[", "function-", "NamedToolChoice", "tagged-union")
_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool"}  # message roles
    | {"text", "image_url", "input_audio", "file", "refusal"}  # content part types
)


# --- what an upstream sends back: lenient on purpose --------------------------------------------


class PromptTokensDetails(_Wire):
    cached_tokens: int | None = None


class Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        details = self.prompt_tokens_details
        return (details.cached_tokens or 0) if details is not None else 0


class ResponseFunction(_Wire):
    name: str | None = None
    arguments: str | dict[str, object] | None = None  # a few hosts send an object, not a string


class ResponseToolCall(_Wire):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: ResponseFunction | None = None


class ResponseMessage(_Wire):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None


class Choice(_Wire):
    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None


class ChatCompletion(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[Choice] = []
    usage: Usage | None = None


class ChunkChoice(_Wire):
    index: int = 0
    delta: ResponseMessage = ResponseMessage()
    finish_reason: str | None = None


class ChatCompletionChunk(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[ChunkChoice] = []
    usage: Usage | None = None
    error: dict[str, object] | None = None  # OpenRouter reports a mid-stream failure in a data event
