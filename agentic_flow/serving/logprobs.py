"""The tokens' scores matched to the text the client is shown: pure, no I/O.

The engine scores every token it generates (engine.logprobs), and each score's `token` is the text that
token added (its streaming detokenizer's output, "" for a token that ends inside a multi-byte
character).  What the client is shown is a prefix of those texts joined: a stop sequence cuts the
reply where it begins (in the engine, or here for a guided request), and text the stop matcher holds
back is released a step or more later.  `Aligner` releases each score with the text event that
completes its text, and at the end cuts the score list where the text ends: a token wholly after the
cut is dropped, one that straddles it keeps its score with its text cut.  So the released tokens join
to the reply's text exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..chat import TokenLogprob


@dataclass
class Aligner:
    shown: int = 0  # characters of text shown so far
    released: int = 0  # scores released so far
    start: int = 0  # where the next score's text begins, in characters

    def text(self, text: str, scores: Sequence[TokenLogprob]) -> tuple[TokenLogprob, ...]:
        """`text` is shown next; `scores`: every score the engine has sent so far.  Returns the scores
        whose text this completes."""
        self.shown += len(text)
        out: list[TokenLogprob] = []
        while self.released < len(scores):
            score = scores[self.released]
            end = self.start + len(score.token)
            if end > self.shown:
                break
            out.append(score)
            self.start, self.released = end, self.released + 1
        return tuple(out)

    def finish(self, scores: Sequence[TokenLogprob], cut: bool) -> tuple[TokenLogprob, ...]:
        """The scores left once the text has ended.  `cut`: the text was cut short of what the engine
        generated (a stop sequence): a score is kept only if its text begins before the end.  Otherwise
        the trailing tokens with no text (a character the reply never finished) are kept too."""
        out: list[TokenLogprob] = []
        for score in scores[self.released:]:
            if self.start < self.shown:
                kept = score.token[: self.shown - self.start]
                out.append(score if kept == score.token else replace(score, token=kept))
            elif not cut and not score.token:
                out.append(score)
            else:
                break
            self.start += len(score.token)
        self.released = len(scores)
        return tuple(out)
