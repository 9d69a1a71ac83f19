"""The soak's short form (scripts/soak.py; `make soak MINUTES=N` runs the long one): a minute of mixed
use through both APIs against the real proxy and the default model, with no 5xx, no dropped
connection, no error inside a stream, and nothing left running at the end."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from scripts.soak import drive
from tests.conftest import ProxyFactory

MINUTES = 1.0


def test_a_minute_of_mixed_use(proxy_factory: ProxyFactory) -> None:
    lines: list[str] = []
    with proxy_factory() as handle:
        assert handle.pid is not None
        intervals = asyncio.run(drive(handle.url, handle.pid, MINUTES, clients=4, interval=20, seed=1,
                                      out=lines.append))
        with urllib.request.urlopen(handle.url + "/health", timeout=5) as response:
            health = json.loads(response.read())
    print("\n".join(lines))
    errors = {kind: n for i in intervals for kind, n in i.errors.items()}
    assert not errors, errors
    assert sum(i.requests for i in intervals) >= 4, lines
    assert health["requests_in_flight"] == 0 and health["requests_waiting"] == 0
    # Only a gross leak can show in a minute; the hour in docs/benchmarks.md shows the curve.
    assert intervals[-1].rss_mb < intervals[0].rss_mb + 1024, lines
