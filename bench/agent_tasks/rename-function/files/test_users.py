from report import greeting
from users import get_user


def test_get_user():
    assert get_user(1) == "ada"


def test_unknown_user():
    assert get_user(99) == "unknown"


def test_greeting():
    assert greeting(2) == "Hello, linus!"
