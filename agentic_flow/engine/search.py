"""Generator-wide search options, pure (no onnxruntime-genai): which requests can share a batch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchKey:
    """Generator-wide search options: requests can share a batch only when these agree."""

    do_sample: bool
    temperature: float
    top_p: float
    top_k: int
    seed: int | None


# onnxruntime-genai's random_seed is a 32-bit integer, and -1 asks it for a random one; OpenAI's seed is
# any 64-bit integer.  A client's seed is folded into 0..2**31-1 (the same seed, the same sample).
SEED_RANGE = 2**31


def search_key(temperature: float, top_p: float | None, top_k: int | None, seed: int | None) -> SearchKey:
    if temperature <= 0:
        return SearchKey(False, 1.0, 1.0, 1, None)
    return SearchKey(True, float(temperature), float(top_p or 1.0), int(top_k or 0),
                     None if seed is None else seed % SEED_RANGE)


GREEDY = search_key(0.0, None, None, None)
