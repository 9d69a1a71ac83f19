from initials import initials


def test_two_words():
    assert initials("ada lovelace") == "A.L."


def test_three_words_and_extra_spaces():
    assert initials("  grace  brewster hopper ") == "G.B.H."


def test_one_word():
    assert initials("Linus") == "L."
