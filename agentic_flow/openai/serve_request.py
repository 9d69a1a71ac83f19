"""SERVE direction, request: a validated Chat Completions request -> the neutral `chat.Request`.

Mapping decisions (each one where the neutral request, in Anthropic's terms, has no exact counterpart):

- system and developer messages, wherever they stand, join the system turn in order;
- an assistant's `tool_calls` become its turn's calls (arguments parsed from their JSON string);
- `tool` messages become tool results, and consecutive tool/user messages merge into one user turn,
  as the Messages API requires right after a turn with calls;
- `tool_choice`: auto->auto, required->any, named->tool, none->none; `parallel_tool_calls: false`
  -> one call per turn;
- `temperature` is clamped to 0..1 (OpenAI allows up to 2; 0..1 maps exactly);
- `seed` is passed on to the engine; `stop` takes up to 4 sequences, as OpenAI;
- `response_format`: `text` is free text, `json_object` any JSON object, `json_schema` its schema
  (strict or not: serving.planning refuses a schema it cannot enforce either way);
- `n` (1..MAX_CHOICES) becomes `choices`: one generation per choice, tools, response_format and
  streaming included;
- `logprobs: true` with `top_logprobs` (0..20) becomes `logprobs`; `top_logprobs` without
  `logprobs: true`, and logprobs together with tools that may be called, are a 400: a tool call's tokens
  are no part of `content`, and there is no place in OpenAI's answer for theirs;
- images, audio and file parts are refused with a 400: silently dropping them would return something
  the client did not ask for.
"""

from __future__ import annotations

import json

from ..chat import OutputFormat, Prompt, Request, Sampling, ToolCall, ToolChoice, ToolResult, ToolSpec, Turn
from .types import (
    AssistantMessage,
    AudioPart,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    ImagePart,
    InvalidChatRequest,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

DEFAULT_MAX_TOKENS = 4096
MAX_STOP = 4  # OpenAI's limit on stop sequences
# OpenAI allows up to 128; here each choice is a generation of its own, and eight already take two
# batches of the default four rows.
MAX_CHOICES = 8
TURN_SEPARATOR = "\n\n"  # as the Messages route joins the text blocks of one turn
_CHOICES = {"auto": "auto", "required": "any", "none": "none", None: "auto"}


def to_chat_request(req: ChatCompletionRequest, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> Request:
    """`default_max_tokens` applies when the client names no limit; the proxy passes the model's
    context room here."""
    _refuse_unsupported(req)
    tools = tuple(ToolSpec(t.function.name, t.function.description or "",
                           t.function.parameters or {"type": "object", "properties": {}}) for t in req.tools or ())
    choice = _tool_choice(req)
    if choice is not None and choice.mode == "tool" and choice.name not in {t.name for t in tools}:
        raise InvalidChatRequest(f"tool_choice: {choice.name!r} is not among the tools", "tool_choice")
    stops = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    if "" in stops:
        raise InvalidChatRequest("stop: an empty stop sequence would match before the first token", "stop")
    if len(stops) > MAX_STOP:
        raise InvalidChatRequest(f"stop: at most {MAX_STOP} sequences (got {len(stops)})", "stop")
    sampling = Sampling(
        max_tokens=req.max_completion_tokens or req.max_tokens or default_max_tokens,
        temperature=None if req.temperature is None else min(req.temperature, 1.0),
        top_p=req.top_p, stop_sequences=stops, seed=req.seed,
    )
    return Request(req.model, Prompt(_turns(req), tools, choice), sampling, bool(req.stream), _output(req),
                   choices=req.n or 1, logprobs=_logprobs(req, choice))


def _refuse_unsupported(req: ChatCompletionRequest) -> None:
    if req.n is not None and req.n > MAX_CHOICES:
        raise InvalidChatRequest(f"n: at most {MAX_CHOICES} choices per request here (got {req.n})", "n")


def _logprobs(req: ChatCompletionRequest, choice: ToolChoice | None) -> int | None:
    """How many alternatives per token the reply's log probabilities list; None: none asked."""
    if not req.logprobs:
        if req.top_logprobs is not None:
            raise InvalidChatRequest("top_logprobs: requires logprobs: true", "top_logprobs")
        return None
    if req.tools and (choice is None or choice.mode != "none"):
        raise InvalidChatRequest("logprobs: not supported together with tools the model may call (a tool "
                                 "call's tokens are no part of content); send tool_choice none or no tools",
                                 "logprobs")
    return req.top_logprobs or 0


def _output(req: ChatCompletionRequest) -> OutputFormat | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputFormat(None, "response_format")
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise InvalidChatRequest("response_format.json_schema.schema: required for type json_schema",
                                 "response_format.json_schema.schema")
    spec = fmt.json_schema
    return OutputFormat(spec.schema_, "response_format.json_schema.schema", spec.name, bool(spec.strict))


# --- messages -----------------------------------------------------------------------------------


def _turns(req: ChatCompletionRequest) -> tuple[Turn, ...]:
    system: list[str] = []
    turns: list[Turn] = []
    for i, message in enumerate(req.messages):
        path = f"messages.{i}"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_texts(message.content))
            continue
        if isinstance(message, AssistantMessage):
            turn = _assistant(message, path)
        elif isinstance(message, ToolMessage):
            turn = Turn("user", results=(_tool_result(message),))
        else:
            turn = Turn("user", _user_text(message, path))
        if turn.content or turn.calls or turn.results:  # nothing a text model can read: left out
            _append_merged(turns, turn)
    head = (Turn("system", TURN_SEPARATOR.join(system)),) if system else ()
    return head + tuple(turns)


def _append_merged(turns: list[Turn], turn: Turn) -> None:
    """Consecutive turns of one role become one turn (tool results, then a user's text)."""
    if not turns or turns[-1].role != turn.role:
        turns.append(turn)
        return
    last = turns[-1]
    content = TURN_SEPARATOR.join(part for part in (last.content, turn.content) if part)
    turns[-1] = Turn(turn.role, content, last.calls + turn.calls, last.results + turn.results)


def _texts(content: str | list[TextPart]) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    return [part.text for part in content if part.text]


def _user_text(message: UserMessage, path: str) -> str:
    if isinstance(message.content, str):
        return message.content
    texts: list[str] = []
    for j, part in enumerate(message.content):
        part_path = f"{path}.content.{j}"
        if isinstance(part, TextPart):
            texts += [part.text] if part.text else []
        elif isinstance(part, ImagePart):
            raise InvalidChatRequest(f"{part_path}: this model cannot read images; send text only", part_path)
        elif isinstance(part, AudioPart | FilePart):
            raise InvalidChatRequest(f"{part_path}: {part.type!r} content is not supported", part_path)
    return TURN_SEPARATOR.join(texts)


def _assistant(message: AssistantMessage, path: str) -> Turn:
    texts: list[str] = []
    if isinstance(message.content, str):
        texts.extend(_texts(message.content))
    elif message.content:
        parts = (part.text if isinstance(part, TextPart) else part.refusal for part in message.content)
        texts.extend(part for part in parts if part)
    calls = tuple(
        ToolCall(call.id, call.function.name,
                 _arguments(call.function.arguments, f"{path}.tool_calls.{j}.function.arguments"))
        for j, call in enumerate(message.tool_calls or [])
    )
    return Turn("assistant", TURN_SEPARATOR.join(texts), calls)


def _arguments(arguments: str, path: str) -> dict[str, object]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InvalidChatRequest(f"{path}: not valid JSON ({exc})", path) from None
    if not isinstance(value, dict):
        raise InvalidChatRequest(f"{path}: must encode a JSON object", path)
    return value


def _tool_result(message: ToolMessage) -> ToolResult:
    text = message.content if isinstance(message.content, str) else "".join(p.text for p in message.content)
    return ToolResult(message.tool_call_id, text)


# --- tools --------------------------------------------------------------------------------------


def _tool_choice(req: ChatCompletionRequest) -> ToolChoice | None:
    choice = req.tool_choice
    if not req.tools:
        if choice in (None, "auto", "none"):
            return None  # nothing to choose from
        raise InvalidChatRequest("tool_choice: requires tools", "tool_choice")
    if choice is None and req.parallel_tool_calls is not False:
        return None
    parallel = req.parallel_tool_calls is not False
    if isinstance(choice, NamedToolChoice):
        return ToolChoice("tool", choice.function.name, parallel=parallel)
    mode = _CHOICES[choice]
    return ToolChoice(mode, parallel=parallel or mode == "none")  # type: ignore[arg-type]
