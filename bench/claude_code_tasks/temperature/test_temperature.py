import pytest

from temperature import to_celsius, to_fahrenheit


def test_freezing_and_boiling():
    assert to_fahrenheit(0) == 32
    assert to_fahrenheit(100) == 212


def test_back_to_celsius():
    assert to_celsius(212) == 100
    assert to_celsius(-40) == -40


def test_a_fraction():
    assert to_fahrenheit(37.5) == pytest.approx(99.5)
