"""Benchmark: the cost of the extra hop.  Proxy A serves the local model; proxy B runs in upstream mode
(`--provider openai --upstream A`), so a request to B is translated to Chat Completions, served by A's
/v1/chat/completions, and translated back.  One run, requests alternating A, B, A, B, ... (the same
greedy prompt), so both see the same machine load; medians of TTFT and decode tokens/s, one stream
and four at once.

Usage: python scripts/bench_hop.py [--model PATH_OR_NAME] [--tokens 128] [--repeat 5]
Numbers drift on a shared machine: compare the two columns of one run, never absolute times across runs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripts folder itself is sys.path[0]

from agentic_flow.launcher.supervisor import free_port, launch
from agentic_flow.settings import ProxySettings, environ
from bench import PROMPTS, Run, bench_args, proxy_four, proxy_run


async def four(session: aiohttp.ClientSession, url: str, n_tokens: int) -> float:
    """Aggregate decode tokens/s of four streams at once."""
    runs, wall = await proxy_four(session, url, n_tokens)
    return sum(r.tokens for r in runs) / wall


async def alternate(a: str, b: str, n_tokens: int, repeat: int) -> dict[str, dict[str, float]]:
    singles: dict[str, list[Run]] = {a: [], b: []}
    fours: dict[str, list[float]] = {a: [], b: []}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await proxy_run(session, b, PROMPTS[0], 8)  # warm both (B's pooled connection, A's first batch)
        for i in range(repeat):
            order = (a, b) if i % 2 == 0 else (b, a)
            for url in order:
                singles[url].append(await proxy_run(session, url, PROMPTS[0], n_tokens))
            for url in order:
                fours[url].append(await four(session, url, n_tokens))
    return {url: {
        "ttft_ms": statistics.median(r.ttft for r in singles[url]) * 1000,
        "decode_tps": statistics.median(r.decode_tps for r in singles[url]),
        "tokens": statistics.median(r.tokens for r in singles[url]),
        "four_aggregate_tps": statistics.median(fours[url]),
    } for url in (a, b)}


def main() -> int:
    args, model_path = bench_args(__doc__)
    with tempfile.TemporaryDirectory() as home:
        env = {**environ(), "XDG_STATE_HOME": home}
        with launch(ProxySettings(port=free_port(), model=str(model_path)), deadline_s=120, env=env) as a:
            hop = ProxySettings(port=free_port(), provider="openai", upstream=a.url + "/v1")
            with launch(hop, deadline_s=60, env=env) as b:
                figures = asyncio.run(alternate(a.url, b.url, args.tokens, args.repeat))
    direct, hopped = figures[a.url], figures[b.url]
    print(f"{'figure':24} {'A direct':>12} {'B -> A':>12}")
    for key in ("ttft_ms", "decode_tps", "tokens", "four_aggregate_tps"):
        print(f"{key:24} {direct[key]:12.1f} {hopped[key]:12.1f}")
    print()
    print(f"TTFT added by the hop:        {hopped['ttft_ms'] - direct['ttft_ms']:+.1f} ms")
    print(f"decode through B / direct:    {hopped['decode_tps'] / direct['decode_tps']:.3f}")
    print(f"4 streams through B / direct: {hopped['four_aggregate_tps'] / direct['four_aggregate_tps']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
