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


def search_key(temperature: float, top_p: float | None, top_k: int | None, seed: int | None) -> SearchKey:
    if temperature <= 0:
        return SearchKey(False, 1.0, 1.0, 1, None)
    return SearchKey(True, float(temperature), float(top_p or 1.0), int(top_k or 0), seed)


GREEDY = search_key(0.0, None, None, None)
