"""Every message that crosses the pipe between the server and the inference process, as code.

Commands go in (server -> inference process), events come out.  They are frozen dataclasses that
pickle carries as they are: a `Prompt`, a `Completion` or a `PromptTooLong` travels as itself, and
both ends match on the class, never on a position in a tuple.  (After vLLM's v1/engine/__init__.py:
EngineCoreRequest in, EngineCoreOutputs out.)

Two pipes join the processes: the generation pipe, read by the scheduler's loop between decode steps,
and the count pipe, read by a thread of its own, so a huge `count_tokens` never stalls a stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chat import TokenLogprob
from ..errors import AgenticFlowError
from .base import Completion, Prompt, SamplingOptions

# ------------------------------------------------------------------ commands (in)


@dataclass(frozen=True)
class Generate:
    rid: int
    prompt: Prompt
    options: SamplingOptions


@dataclass(frozen=True)
class Cancel:
    rid: int


@dataclass(frozen=True)
class CountTokens:
    """Sent on the count pipe only."""

    rid: int
    prompt: Prompt


@dataclass(frozen=True)
class GetStats:
    rid: int


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Generate | Cancel | CountTokens | GetStats | Shutdown

# ------------------------------------------------------------------ events (out)


@dataclass(frozen=True)
class Ready:
    """The model is loaded; the process serves from now on."""

    context_length: int
    speculation: str = "off"  # engine/ort.py OrtModel.speculation


@dataclass(frozen=True)
class LoadFailed:
    """The model could not be loaded; the process exits after sending this."""

    message: str


@dataclass(frozen=True)
class Started:
    """The prompt was read and the generation is queued: from now on text can arrive."""

    rid: int
    input_tokens: int
    # Prompt tokens a kept generator covers right now (the reuse expected; Completion says what was).
    cached_tokens: int = 0


@dataclass(frozen=True)
class Scored:
    """A generated token's score, for a request that asked (SamplingOptions.logprobs)."""

    rid: int
    score: TokenLogprob


@dataclass(frozen=True)
class Deltas:
    """The text every generation produced in one decode step, sent as one message per step, and the
    scores of that step's tokens (empty unless a request asked: most steps carry none)."""

    items: tuple[tuple[int, str], ...]
    scores: tuple[Scored, ...] = ()


@dataclass(frozen=True)
class Finished:
    rid: int
    completion: Completion


@dataclass(frozen=True)
class Failed:
    """A request ended in error: before its start (PromptTooLong, a prompt that cannot be rendered)
    or during it (a failed step).  The error is raised as it is in the server."""

    rid: int
    error: AgenticFlowError


@dataclass(frozen=True)
class Counted:
    rid: int
    input_tokens: int


@dataclass(frozen=True)
class WorkerStats:
    """What the inference process holds right now."""

    batches: int
    rows: int
    generations: int
    pending: int
    prefix_entries: int
    prefix_hits: int
    prefix_tokens: int
    spare_hits: int = 0  # requests that continued the idle-built spare generator (engine/spare.py)
    # Speculative decoding (engine/scheduler.py): batches speculating now, batches that did, and their
    # draft tokens verified and accepted.
    speculating: int = 0
    speculated: int = 0
    draft_tokens: int = 0
    draft_accepted: int = 0


@dataclass(frozen=True)
class StatsReply:
    rid: int
    stats: WorkerStats


Event = Ready | LoadFailed | Started | Deltas | Finished | Failed | Counted | StatsReply
