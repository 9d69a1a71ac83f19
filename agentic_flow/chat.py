"""The neutral vocabulary every layer shares: a conversation, its tools, and what a generation yields.

No API's wire format and no engine: `anthropic/` and `openai/` decode their requests into these and
encode these events into their responses; `tooluse/` renders and parses them; `engine/` generates from
a `Prompt`; `serving/` turns a running generation into the `Event` stream.  This module imports
nothing of the project.

A generation, as `serving.generation` yields it:

    Start, then Text / ToolCallStart, ToolInputDelta..., ToolCallDone / Ping in the order generated,
    then Stop (with the final usage) or Failure (the engine failed mid-stream; nothing follows).

A request for several choices (OpenAI's `n`) runs one generation per choice; their events arrive
interleaved, each wrapped in a `ChoiceEvent` that names its choice (serving.choices).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]
# The reasons a reply ends, in Anthropic's words (the proxy's native API); OpenAI's encoder maps them.
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]
ChoiceMode = Literal["auto", "any", "tool", "none"]

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24


def new_id(prefix: str) -> str:
    """`prefix` + 24 random letters and digits: message, request and tool-call ids."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


# ------------------------------------------------------------------ the request


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    input_schema: Mapping[str, object] | None = None  # None: any JSON object
    # Fields written as fenced code blocks after the call's JSON (tooluse/codeblocks.py); () for none.
    code_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolChoice:
    mode: ChoiceMode = "auto"
    name: str | None = None  # the forced tool when mode is "tool"
    parallel: bool = True  # False: one call per turn (Anthropic's disable_parallel_tool_use)

    @property
    def forced(self) -> bool:
        return self.mode in ("any", "tool")


@dataclass(frozen=True)
class ToolCall:
    """A call the model made (parsed from its text) or made earlier in the conversation."""

    id: str
    name: str
    input: Mapping[str, object]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    content: str  # the result's text blocks, joined
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    """One conversation turn.  Tool use as the model's chat template renders it (tooluse.render): a user
    turn's tool results come before its text; an assistant turn's text comes before its calls."""

    role: Role
    content: str = ""
    calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class Prompt:
    """What the model's chat template renders.  A final assistant turn is a prefill: the reply
    continues it (the template gets the turns before it plus a generation prompt, then its text)."""

    turns: tuple[Turn, ...]
    tools: tuple[ToolSpec, ...] = ()  # rendered into the prompt the way the template lists tools
    choice: ToolChoice | None = None  # None: auto

    @property
    def prefill(self) -> str:
        if self.turns and self.turns[-1].role == "assistant" and not self.turns[-1].calls:
            return self.turns[-1].content
        return ""


@dataclass(frozen=True)
class Sampling:
    """The sampling a client asked for, in neutral terms (None: not set by the client)."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class OutputFormat:
    """Structured output: the reply is one JSON value, enforced by the grammar (serving.planning).
    `schema` None: any JSON object (OpenAI's json_object).  `path` names the request field that
    carried the schema, for the 400 that refuses it."""

    schema: Mapping[str, object] | None
    path: str
    name: str = ""
    strict: bool = True


@dataclass(frozen=True)
class Request:
    """A validated request of either API: what to answer and how."""

    model: str  # echoed back as the client sent it
    prompt: Prompt
    sampling: Sampling
    stream: bool = False
    output: OutputFormat | None = None  # None: free text
    choices: int = 1  # independent replies to the same prompt (OpenAI's n)
    # Log probabilities of the reply's tokens, with this many alternatives per token (OpenAI's
    # top_logprobs, 0..20); None: not asked, and the engine computes none.
    logprobs: int | None = None


# ------------------------------------------------------------------ what a generation yields


@dataclass(frozen=True)
class Usage:
    """Prompt tokens (all of them, cached ones included), those read from the prefix cache, output."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Start:
    """The prompt is read.  `usage`: the prefix-cache reuse expected; `guided`: tools may be called,
    so content opens as the parser finds text or a call (a reply without tools is text from the start)."""

    usage: Usage
    guided: bool


@dataclass(frozen=True)
class Candidate:
    """A token the model could have written at one step, with its log probability (natural log)."""

    token: str
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    """One written token: its text, its log probability under the model's own distribution (before
    temperature, top_p/top_k and any grammar mask), and the `top` most likely tokens of that step,
    most likely first.  `token` is the text this token added to the reply, so that the tokens of a
    reply join to its text exactly: a token that ends inside a multi-byte character has "" and the
    character is the text of the token that completes it."""

    token: str
    logprob: float
    top: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class Text:
    text: str
    # The tokens whose text this event completes (only when the request asked for logprobs).
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(frozen=True)
class ToolInputDelta:
    partial_json: str  # pieces that joined parse as the call's input


@dataclass(frozen=True)
class ToolCallDone:
    """`call` is None when the call was cut short (max_tokens): its input is unknown."""

    call: ToolCall | None


@dataclass(frozen=True)
class Ping:
    """The engine has been silent for a while (a long prefill): keep the client's watchdog calm."""


@dataclass(frozen=True)
class Stop:
    reason: StopReason
    sequence: str | None
    usage: Usage  # final; its cached_tokens may differ from Start's expectation


@dataclass(frozen=True)
class Failure:
    """The generation failed after the stream started; it ends here."""

    message: str


@dataclass(frozen=True)
class Answer:
    """A whole reply (non-streaming): text and tool calls in the order generated, then its stop."""

    content: tuple[str | ToolCall, ...]
    stop: Stop
    logprobs: tuple[TokenLogprob, ...] = ()  # the text's tokens, when the request asked


Event = Start | Text | ToolCallStart | ToolInputDelta | ToolCallDone | Ping | Stop | Failure


@dataclass(frozen=True)
class ChoiceEvent:
    """An event of choice `index` (0..n-1) of a request for several choices."""

    index: int
    event: Event
