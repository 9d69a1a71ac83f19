"""The repetition guard: a reply that has started repeating itself is cut instead of run to max_tokens.

Small models fall into loops: the 1.5B coder repeated one sentence until its 2,048-token limit (2-3
minutes here) on 16 of 16 coding exercises, and the 135M ends code with `l,l,l,l,...`.  Once the same
text has come back several times in a row, greedy decoding will not leave the loop, so every further
token is wasted.  The guard watches the generated text and says stop when its tail is one string
repeated back to back:

- at least `MIN_REPEATS` times (3), and
- over at least `MIN_CHARS` characters (240) in all: a ruler of 79 dashes, a run of blank lines or a
  short list of zeros stays legal; a 60-character sentence is cut at its fourth copy.

Periods up to `MAX_PERIOD` characters (600, a paragraph) are checked.  Near-repeats (the same line with
another number) are not caught: that is how real tables and tests look.  The check runs every
`CHECK_EVERY` characters, on the tail only, so it costs microseconds per token.
"""

from __future__ import annotations

MIN_REPEATS = 3
MIN_CHARS = 240
MAX_PERIOD = 600
CHECK_EVERY = 16
KEEP = MAX_PERIOD * MIN_REPEATS + CHECK_EVERY


def repeating_period(text: str, min_repeats: int = MIN_REPEATS, min_chars: int = MIN_CHARS,
                     max_period: int = MAX_PERIOD) -> int | None:
    """The shortest period p such that `text` ends with a string of length p repeated back to back at
    least `min_repeats` times over at least `min_chars` characters; None when there is none."""
    n = len(text)
    last = text[-1:] if text else ""
    for p in range(1, min(max_period, n // min_repeats) + 1):
        if text[n - 1 - p] != last:  # one character first: rejects almost every period in O(1)
            continue
        unit = text[n - p:]
        if text[n - 2 * p:n - p] != unit:
            continue
        repeats = 2
        while repeats * p + p <= n and text[n - (repeats + 1) * p:n - repeats * p] == unit:
            repeats += 1
            if repeats >= min_repeats and repeats * p >= min_chars:
                return p
        if repeats >= min_repeats and repeats * p >= min_chars:
            return p
    return None


class RepetitionGuard:
    """Feed it the generated text as it comes; `feed` returns True once the reply repeats itself."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._tail = ""
        self._unchecked = 0
        self.period: int | None = None  # the repeated unit's length, once tripped

    def feed(self, delta: str) -> bool:
        if not self.enabled or self.period is not None:
            return self.period is not None
        self._tail = (self._tail + delta)[-KEEP:]
        self._unchecked += len(delta)
        if self._unchecked < CHECK_EVERY:
            return False
        self._unchecked = 0
        self.period = repeating_period(self._tail)
        return self.period is not None
