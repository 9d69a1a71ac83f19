"""The scheduler's cost model: pure functions, priced in single-row decode steps."""

from __future__ import annotations

from agentic_flow.engine.costs import (
    EXTRA_ROW_STEPS,
    PREFILL_TOKEN_STEPS,
    RowLoad,
    kv_length,
    merge_pays,
    prefill_steps,
    shrink_pays,
)


def test_prefill_is_padded_to_the_longest_row() -> None:
    assert prefill_steps([RowLoad(10, 0), RowLoad(100, 0)]) == PREFILL_TOKEN_STEPS * 2 * 100


def test_a_short_newcomer_joins_a_batch_with_a_long_way_to_go() -> None:
    # re-reading 50 live tokens (plus padding) costs 28 steps; running side by side would cost ~55
    assert merge_pays([RowLoad(50, 500)], [RowLoad(30, 100)])


def test_no_merge_when_the_live_rows_are_long_and_nearly_done() -> None:
    # re-reading 2,000 tokens to share 20 steps does not pay
    assert not merge_pays([RowLoad(2000, 20)], [RowLoad(30, 100)])


def test_the_merge_threshold_follows_the_overlap() -> None:
    live, new = [RowLoad(100, 1000)], [RowLoad(100, 1000)]
    extra = prefill_steps([*live, *new]) - prefill_steps(new)  # 40 steps
    assert merge_pays(live, [RowLoad(100, int(extra / (1 - EXTRA_ROW_STEPS)) + 1)])
    assert not merge_pays(live, [RowLoad(100, int(extra / (1 - EXTRA_ROW_STEPS)) - 1)])


def test_shrinking_pays_for_many_dead_rows_and_a_long_remainder() -> None:
    assert shrink_pays(4, [RowLoad(40, 500)])


def test_shrinking_does_not_pay_near_the_end_of_a_long_row() -> None:
    # the failure seen before the cost model: a 4->3 shrink re-read everything near the end
    assert not shrink_pays(4, [RowLoad(1500, 30)] * 3)


def test_kv_length_is_longest_row_plus_largest_remainder_plus_one() -> None:
    assert kv_length([RowLoad(100, 5), RowLoad(20, 300)]) == 100 + 300 + 1
