"""Stop sequences on decoded text: split across tokens, never leaked, partial matches released."""

from __future__ import annotations

import pytest

from agentic_flow.engine.stops import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, str | None]:
    out = []
    for piece in pieces:
        text, stop = matcher.feed(piece)
        out.append(text)
        if stop is not None:
            return "".join(out), stop
    out.append(matcher.flush())
    return "".join(out), None


@pytest.mark.parametrize("pieces", [
    ["Hello ", "END", " more"],
    ["Hello E", "N", "D more"],
    ["Hello EN", "D"],
    ["Hello ", "xEND"[1:]],
    ["Hello", " ", "E", "ND", "!"],
])
def test_stop_split_across_tokens_never_leaks(pieces: list[str]) -> None:
    text, stop = feed_all(StopMatcher(("END",)), pieces)
    assert stop == "END"
    assert text == "Hello "


def test_partial_match_that_does_not_complete_is_released() -> None:
    m = StopMatcher(("END",))
    assert m.feed("the E") == ("the ", None)  # "E" is held: it may start "END"
    assert m.feed("N") == ("", None)
    assert m.feed("ormous") == ("ENormous", None)
    assert m.flush() == ""


def test_held_text_is_flushed_at_the_end() -> None:
    m = StopMatcher(("###",))
    assert m.feed("a ##") == ("a ", None)
    assert m.flush() == "##"


def test_earliest_of_several_stops_wins() -> None:
    m = StopMatcher(("world", "lo w"))
    assert m.feed("hello world") == ("hel", "lo w")


def test_no_stops_passes_text_through() -> None:
    m = StopMatcher(())
    assert m.feed("abc") == ("abc", None)
    assert m.flush() == ""


def test_stop_inside_one_token() -> None:
    assert StopMatcher(("\n\n",)).feed("line one\n\nline two") == ("line one", "\n\n")
