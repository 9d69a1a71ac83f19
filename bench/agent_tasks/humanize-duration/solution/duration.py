import re

UNITS = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]


def humanize(seconds):
    if seconds < 0:
        raise ValueError("negative duration")
    parts = []
    for unit, size in UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


def parse(text):
    parts = text.split()
    if not parts:
        raise ValueError("empty duration")
    sizes = dict(UNITS)
    total = 0
    for part in parts:
        match = re.fullmatch(r"(\d+)([dhms])", part)
        if match is None:
            raise ValueError(f"bad part {part!r}")
        total += int(match.group(1)) * sizes[match.group(2)]
    return total
