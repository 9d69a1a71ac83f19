"""The scheduler's cost model: pure functions over the sizes of batch rows.

Units are one single-row decode step.  Measured on the default model on 2 cores (docs/architecture.md):
reading one prompt token costs ~0.4 of a step (prefill is compute-bound and padded to the longest row),
and each extra row of a batch adds ~0.45 of a step.  onnxruntime-genai batches statically, so changing
a running batch means re-reading every row's tokens: these functions say when that pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PREFILL_TOKEN_STEPS = 0.4
EXTRA_ROW_STEPS = 0.45


@dataclass(frozen=True)
class RowLoad:
    """What a row of a batch weighs: the tokens it holds (prompt + generated) and the tokens it may
    still generate."""

    tokens: int
    remaining: int


def prefill_steps(rows: Sequence[RowLoad]) -> float:
    """Estimated cost of reading these rows' tokens, right-padded to the longest."""
    return PREFILL_TOKEN_STEPS * len(rows) * max(r.tokens for r in rows)


def merge_pays(live: Sequence[RowLoad], newcomers: Sequence[RowLoad]) -> bool:
    """Merging newcomers into a running batch re-reads its live rows; running two batches side by side
    costs a (nearly) full step per step for as long as both run."""
    extra_prefill = prefill_steps([*live, *newcomers]) - prefill_steps(newcomers)
    overlap = min(max(r.remaining for r in live), max(r.remaining for r in newcomers))
    return extra_prefill < overlap * (1 - EXTRA_ROW_STEPS)


def shrink_pays(rows: int, live: Sequence[RowLoad]) -> bool:
    """Dropping a batch's finished rows saves their share of every later step, at the price of
    re-reading the live ones."""
    saved = (rows - len(live)) * EXTRA_ROW_STEPS * max(r.remaining for r in live)
    return prefill_steps(live) < saved


def prefill_fits(rows: Sequence[RowLoad], limit: int | None) -> bool:
    """Whether a batch of these rows may read them in one go: on a graph with a logits row per input
    token (models/tail_logits.py) the runtime's buffer is rows x longest row x vocabulary, and only a
    one-row generator can read its prompt in pieces.  `limit`: rows x longest row at most (None: no bound)."""
    return limit is None or len(rows) <= 1 or len(rows) * max(r.tokens for r in rows) <= limit


def kv_length(rows: Sequence[RowLoad]) -> int:
    """The KV cache a batch needs (onnxruntime-genai allocates it up front to max_length): the
    longest row plus the largest remaining output, plus the sampled token never fed back."""
    return max(r.tokens for r in rows) + max(r.remaining for r in rows) + 1
