"""A spare generator, built while the inference process is idle, that has already read the chat
template's fixed preamble.

Every rendered prompt of a model starts with the same tokens when no system prompt is given (the
template's default system turn, then the user turn's header: 30 of a 40-token short prompt on
SmolLM2).  A fresh request used to pay, on its critical path, the generator's KV allocation (~12 ms)
and the prefill of those tokens (~26 ms on the 135M).  The spare pays both while nobody waits: a new
one-row request that starts with the preamble rewinds the spare to the shared length and appends only
the rest, exactly as a prefix-cache hit does (engine/prefix_cache.py), which gives the same greedy
output as a fresh generator (tests/test_engine.py checks it on the real model).

The spare is built only with the search options of the last request (a generator's options are fixed
at creation) and only while the last requests kept matching the preamble: an agent with a system
prompt of its own never matches, and building a spare for it would waste an idle prefill.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from .base import Prompt, Turn
from .prefix_cache import common_prefix, reusable

if TYPE_CHECKING:
    from .scheduler import Generator, Model
    from .search import SearchKey

log = logging.getLogger(__name__)

# KV room of the spare: short agent turns and chat requests fit; a request needing more starts fresh.
SPARE_LENGTH = 1024
# A request must share at least this many tokens with the preamble to take the spare.
SPARE_MIN_SHARED = 8


class Probe(Protocol):
    def render(self, prompt: Prompt) -> str: ...

    def encode(self, text: str) -> list[int]: ...


def preamble(model: Probe) -> list[int]:
    """The tokens every prompt without a system turn starts with: the common prefix of two renders
    whose user text differs from its first character.  One token less, because a tokenizer may merge
    the header's last token with the text that follows it."""
    a, b = (model.encode(model.render(Prompt((Turn("user", text),)))) for text in ("Hello", "7 x"))
    return a[: max(0, common_prefix(a, b) - 1)]


class Spare:
    def __init__(self, tokens: list[int], context_length: int) -> None:
        self.tokens = tokens
        self.length = min(SPARE_LENGTH, context_length)
        self.generator: Generator | None = None
        self.key: SearchKey | None = None  # the options `generator` was built with
        self.wanted = len(tokens) >= SPARE_MIN_SHARED
        self.hits = 0

    def note(self, key: SearchKey, tokens: list[int], guided: bool) -> None:
        """A request arrived: build the next spare for its options, and only while requests match."""
        if guided or key.seed is not None:
            return  # these never take the spare; they say nothing about the next request
        self.wanted = common_prefix(self.tokens, tokens) >= SPARE_MIN_SHARED
        if key != self.key:
            self.drop()
            self.key = key

    def build(self, model: Model, key: SearchKey, speculate: bool = False) -> None:
        """Allocate the spare and read the preamble (called only while idle).  `speculate`: as a
        speculative generator, as a request that runs alone would be (engine/scheduler.py)."""
        if self.generator is not None or not self.wanted:
            return
        self.key = self.key or key
        self.generator = model.start([self.tokens], self.key, self.length, speculate=speculate)
        log.debug("spare generator ready: %d preamble tokens, max_length %d", len(self.tokens), self.length)

    def shares(self, key: SearchKey, tokens: list[int], need_length: int) -> int:
        """How many tokens `take` would reuse (0: it would not)."""
        if self.generator is None or key != self.key or need_length > self.length:
            return 0
        shared = reusable(self.tokens, tokens)
        return shared if shared >= SPARE_MIN_SHARED else 0

    def take(self, key: SearchKey, tokens: list[int], need_length: int) -> Generator | None:
        """The spare continued with `tokens`, when it fits and shares enough; it is then no longer spare."""
        generator, shared = self.generator, self.shares(key, tokens, need_length)
        if generator is None or not shared:
            return None
        self.generator = None
        generator.reuse(shared, tokens)
        self.hits += 1
        return generator

    def drop(self) -> None:
        if self.generator is not None:
            self.generator.close()
            self.generator = None
