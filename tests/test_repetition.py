"""The repetition guard (engine/repetition.py): loops are caught within a few copies, real text is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentic_flow.engine.repetition import MIN_CHARS, RepetitionGuard, repeating_period


def fed(text: str, piece: int = 3) -> RepetitionGuard:
    guard = RepetitionGuard()
    for i in range(0, len(text), piece):
        if guard.feed(text[i:i + piece]):
            break
    return guard


def test_a_repeated_sentence_is_cut_at_its_fourth_copy() -> None:
    sentence = "The function reads the input file and prints each line. "
    guard = RepetitionGuard()
    copies = 0
    while not guard.feed(sentence):
        copies += 1
        assert copies < 10
    assert copies + 1 <= 5 and guard.period == len(sentence)


def test_the_135m_garble_is_caught() -> None:
    assert fed('print(reverse_string("Hello, World"))  # Output: "Lloyd, World, Llo' + ",l" * 200).period == 2


@pytest.mark.parametrize("text", [
    "# " + "-" * 78 + "\n",
    "\n" * 60,
    "x = [0, 0, 0, 0, 0, 0, 0, 0]\n",
    "".join(f"    def test_{i}(self):\n        self.assertEqual(f({i}), {i * i})\n\n" for i in range(40)),
    "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * 2} |\n" for i in range(60)),
])
def test_real_text_is_not_cut(text: str) -> None:
    assert not fed(text).period


def test_this_project_s_own_sources_are_not_cut() -> None:
    root = Path(__file__).resolve().parents[1] / "agentic_flow"
    largest = sorted(root.rglob("*.py"), key=lambda p: p.stat().st_size)[-12:]
    for path in largest:
        assert fed(path.read_text(), piece=7).period is None, path


def test_the_threshold_is_copies_and_length() -> None:
    unit = "abcd"
    assert repeating_period(unit * (MIN_CHARS // 4)) == 4
    assert repeating_period(unit * (MIN_CHARS // 4 - 1)) is None  # long enough copies, too few chars
    long_unit = "y" * 99 + "\n"
    assert repeating_period(long_unit * 2) is None  # two copies of a long line: not yet
    assert repeating_period("z" + long_unit * 3) == 100


def test_a_disabled_guard_never_trips() -> None:
    guard = RepetitionGuard(enabled=False)
    assert not any(guard.feed("same same ") for _ in range(200))
