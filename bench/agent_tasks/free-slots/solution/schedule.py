import re


def _minutes(text):
    match = re.fullmatch(r"(\d\d):(\d\d)", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"bad time {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _text(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def free_slots(busy, start="09:00", end="17:00"):
    day_start, day_end = _minutes(start), _minutes(end)
    meetings = []
    for begin, finish in busy:
        b, f = _minutes(begin), _minutes(finish)
        if f < b:
            raise ValueError(f"meeting ends before it begins: {begin}-{finish}")
        meetings.append((b, f))
    free = []
    cursor = day_start
    for b, f in sorted(meetings):
        b, f = max(b, day_start), min(f, day_end)
        if b > cursor:
            free.append((_text(cursor), _text(min(b, day_end))))
        cursor = max(cursor, f)
        if cursor >= day_end:
            break
    if cursor < day_end:
        free.append((_text(cursor), _text(day_end)))
    return [slot for slot in free if slot[0] < slot[1]]
