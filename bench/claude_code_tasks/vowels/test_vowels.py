from vowels import count_vowels


def test_lower_case():
    assert count_vowels("banana") == 3


def test_upper_case_counts_too():
    assert count_vowels("AEIOU xyz") == 5


def test_no_vowels():
    assert count_vowels("rhythm") == 0
    assert count_vowels("") == 0
