import re


def _suffix(n):
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def ordinal(n):
    if n < 0:
        raise ValueError("negative number")
    return f"{n}{_suffix(n)}"


def parse_ordinal(text):
    match = re.fullmatch(r"(\d+)([a-z]{2})", text.strip().lower())
    if match is None:
        raise ValueError(f"not an ordinal: {text!r}")
    n = int(match.group(1))
    if match.group(2) != _suffix(n):
        raise ValueError(f"wrong suffix: {text!r}")
    return n
