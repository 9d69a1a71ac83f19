"""The prefix cache keeps generators; it is tested here with stand-ins that hold nothing."""

from __future__ import annotations

from agentic_flow.engine.prefix_cache import PrefixCache, common_prefix


class Held:
    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.closed = False

    def close(self) -> None:
        self.closed = True


SYSTEM = list(range(1000, 1300))  # a shared system prompt of 300 tokens


def cache(entries: int = 2, budget: int = 10_000) -> PrefixCache[Held]:
    return PrefixCache(min_tokens=256, max_entries=entries, budget_tokens=budget)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_take_returns_the_longest_shared_prefix_and_removes_it() -> None:
    c = cache()
    short, long = Held(2000), Held(2000)
    c.put("greedy", [*SYSTEM, 1], short)
    c.put("greedy", [*SYSTEM, 1, 2, 3, 4], long)
    hit = c.take("greedy", [*SYSTEM, 1, 2, 3, 9, 10], 500)
    assert hit is not None and hit.generator is long and hit.shared == len(SYSTEM) + 3
    assert len(c) == 1 and c.hits == 1 and c.reused_tokens == len(SYSTEM) + 3


def test_on_a_tie_the_entry_holding_the_least_is_taken() -> None:
    c = cache()
    long, short = Held(2000), Held(2000)
    c.put("greedy", [*SYSTEM, *range(1, 200)], long)  # kept first: the older one
    c.put("greedy", [*SYSTEM, 7, 8], short)
    hit = c.take("greedy", [*SYSTEM, 500, 501], 500)  # shares SYSTEM with both
    assert hit is not None and hit.generator is short and hit.shared == len(SYSTEM)
    assert c.peek("greedy", [*SYSTEM, *range(1, 200), 9, 9], 500) == len(SYSTEM) + 199  # still there


def test_a_prefix_serves_another_conversation_that_starts_the_same_way() -> None:
    c = cache()
    c.put("greedy", [*SYSTEM, 5, 6, 7], Held(2000))  # conversation A
    hit = c.take("greedy", [*SYSTEM, 8, 9], 500)  # conversation B, same system prompt
    assert hit is not None and hit.shared == len(SYSTEM)


def test_at_least_two_tokens_are_left_to_append() -> None:
    # One would leave a token to sample from; two keep the prefill's rounding (MIN_APPEND).
    c = cache()
    c.put("greedy", SYSTEM, Held(2000))
    hit = c.take("greedy", list(SYSTEM), 500)
    assert hit is not None and hit.shared == len(SYSTEM) - 2


def test_no_hit_for_other_options_a_short_share_or_too_little_room() -> None:
    c = cache()
    c.put("greedy", SYSTEM, Held(600))
    assert c.take("sampled", [*SYSTEM, 1], 500) is None
    assert c.take("greedy", SYSTEM[:200] + [1] * 200, 500) is None  # shares 200 < 256
    assert c.take("greedy", [*SYSTEM, 1], 601) is None  # its KV room is too small
    assert len(c) == 1 and c.hits == 0


def test_short_prompts_are_not_kept() -> None:
    c, held = cache(), Held(2000)
    c.put("greedy", SYSTEM[:100], held)
    assert len(c) == 0 and held.closed


def test_the_oldest_entry_goes_beyond_the_entry_limit() -> None:
    c = cache(entries=2)
    first, second, third = Held(1000), Held(1000), Held(1000)
    for held in (first, second, third):
        c.put("greedy", SYSTEM, held)
    assert len(c) == 2 and first.closed and not second.closed and not third.closed


def test_the_kv_budget_bounds_what_is_held() -> None:
    c = cache(entries=10, budget=2500)
    first, second = Held(1500), Held(1500)
    c.put("greedy", SYSTEM, first)
    c.put("greedy", SYSTEM, second)
    assert first.closed and len(c) == 1 and c.held_tokens == 1500
    too_big = Held(3000)
    c.put("greedy", SYSTEM, too_big)
    assert too_big.closed and len(c) == 1


def test_clear_closes_everything() -> None:
    c = cache()
    held = [Held(1000), Held(1000)]
    for h in held:
        c.put("greedy", SYSTEM, h)
    c.clear()
    assert len(c) == 0 and all(h.closed for h in held)
