"""A generated token's score, from the logits of the step that chose it: pure numpy.

It runs in the inference process, and only for the rows of a batch whose request asked
(SamplingOptions.logprobs): the other rows' steps read no logits at all.  The log-softmax is taken in
float64 over the model's raw logits, the distribution before temperature, top_p/top_k and any grammar
mask (vLLM's default, "raw logprobs"): what the model itself made of the step.  Measured on the 135M
(a 49,152-token vocabulary), CPU time per scored token: 0.08 ms alone, 0.17 ms with 20 alternatives
(a decode step of that model takes 7-10 ms on 2 free cores).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..chat import Candidate, TokenLogprob

MAX_TOP = 20  # OpenAI's limit on top_logprobs
# What OpenAI itself reports for a token of no probability: JSON has no -Infinity.
FLOOR = -9999.0


def log_softmax_at(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """log p(id) for each of `ids` under softmax(`logits`), in float64: every value is in FLOOR..0."""
    peak = float(logits.max())
    # exp in float32 (half the time of float64 here), summed in float64: relative error ~1e-7.
    total = float(np.exp(logits - peak).sum(dtype=np.float64))
    values = logits[ids].astype(np.float64) - (peak + np.log(total))
    return np.clip(np.nan_to_num(values, nan=FLOOR, neginf=FLOOR), FLOOR, 0.0)


def top_ids(logits: np.ndarray, k: int) -> np.ndarray:
    """The `k` most likely token ids, most likely first (ties: the lower id first)."""
    k = min(k, logits.shape[-1])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(logits, -k)[-k:]
    # lexsort sorts by its last key first: by logit (descending), then by id.
    return part[np.lexsort((part, -logits[part]))]


def score(logits: np.ndarray, token: int, text: str, top: int, text_of: Callable[[int], str]) -> TokenLogprob:
    """The score of `token`, chosen from `logits` (one row, the vocabulary), whose text in the reply
    is `text`; with the `top` most likely tokens, each as its own decoded text (`text_of`)."""
    alternatives = top_ids(logits, min(top, MAX_TOP))
    values = log_softmax_at(logits, np.concatenate(([token], alternatives)))
    candidates = tuple(Candidate(text_of(int(i)), float(v)) for i, v in zip(alternatives, values[1:], strict=True))
    return TokenLogprob(text, float(values[0]), candidates)
