"""The proxy's logging: to stderr, with repeated lines rate-limited.

A flood of bad requests or refused connections would otherwise write one line each (the log once grew
1.7 MB/s under 400 slow clients).  Lines are grouped by logger and message template (not by their
arguments): each group may write `burst` lines per `window` seconds; the rest are counted and the
count is reported on the group's next line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable


class RateLimit(logging.Filter):
    def __init__(self, burst: int = 10, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._groups: dict[tuple[str, str], list[float | int]] = {}  # key -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        group = self._groups.get(key)
        if group is None or now - group[0] >= self.window:
            dropped = int(group[2]) if group is not None else 0
            self._groups[key] = [now, 1, 0]
            if dropped:
                record.msg = f"{record.msg} [{dropped} similar lines suppressed]"
            return True
        if group[1] < self.burst:
            group[1] += 1
            return True
        group[2] += 1
        return False


def configure_logging(level: str) -> None:
    """The proxy logs to stderr, whether it runs as `python -m agentic_flow.proxy` or in the foreground
    of `agentic-flow proxy start`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RateLimit())
    logging.basicConfig(level=level.upper(), handlers=[handler])
