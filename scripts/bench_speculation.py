"""Speculative decoding on agent turns: the proxy with --draft-tokens N against the same proxy with 0.

Two proxies on the same model, started by the product's launcher; the turns of bench/spec_workloads.py
(a Write and an Edit that echo a file just read, a plain explanation, a story) go to one then the other,
round after round, so each ratio comes from one run.  Prints decode tok/s per turn and server, the
ratio, whether the two answers were identical, and the inference process's RSS for each.

Usage: python scripts/bench_speculation.py [--model NAME_OR_PATH] [--rounds 2] [--draft-tokens 4]
       [--turns write,edit,explain,story] [--max-tokens 400] [--sampled] [--json out.json]
Numbers drift on a shared machine: compare the ratios of one run, and report the load with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.launcher.supervisor import ProxyProcess, free_port, launch  # noqa: E402
from agentic_flow.models import store  # noqa: E402
from agentic_flow.settings import ProxySettings, environ  # noqa: E402
from agentic_flow.settings.proxy import RECOMMENDED_DRAFT_TOKENS  # noqa: E402
from bench.spec_workloads import TURNS, body, measure, stream  # noqa: E402


def tree_cpu_s(proxy: ProxyProcess) -> float:
    """CPU seconds used so far by the proxy and its inference process: on a shared machine, a turn's CPU
    time moves far less with the load than its wall time."""
    if proxy.pid is None:
        return 0.0
    root = psutil.Process(proxy.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def tree_rss_mb(proxy: ProxyProcess) -> float:
    """RSS of the proxy and its inference process, MB."""
    if proxy.pid is None:
        return 0.0
    root = psutil.Process(proxy.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


async def run(proxies: dict[str, ProxyProcess], turns: list[str], rounds: int, max_tokens: int,
              temperature: float | None) -> dict[str, Any]:
    urls = {name: p.url for name, p in proxies.items()}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {t: {name: [] for name in urls} for t in turns}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for url in urls.values():  # warm-up: the first run of a session is slower everywhere
            await stream(session, url, body("story", 4))
        for r in range(rounds):
            for turn in turns:
                order = list(urls) if r % 2 == 0 else list(reversed(urls))
                for name in order:
                    cpu = tree_cpu_s(proxies[name])
                    res = await measure(session, urls[name], body(turn, max_tokens, temperature))
                    res["tok_per_cpu_s"] = res.get("out", 0) / max(tree_cpu_s(proxies[name]) - cpu, 1e-9)
                    res["load"] = round(os.getloadavg()[0], 1)
                    results[turn][name].append(res)
                    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in res.items() if k != "text"}
                    print(f"round {r} {turn:8s} {name:5s} {shown}", flush=True)
    return results


def summary(results: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for turn, by_name in results.items():
        row: dict[str, Any] = {"turn": turn}
        for name in names:
            ok = [r for r in by_name[name] if "error" not in r]
            row[f"{name}_tok_s"] = round(statistics.median(r["decode"] for r in ok), 1) if ok else None
            row[f"{name}_tok_cpu_s"] = round(statistics.median(r["tok_per_cpu_s"] for r in ok), 1) if ok else None
            row[f"{name}_out"] = [r.get("out") for r in by_name[name]]
        a, b = (row[f"{n}_tok_s"] for n in names)
        row["ratio"] = round(b / a, 2) if a and b else None
        a, b = (row[f"{n}_tok_cpu_s"] for n in names)
        row["cpu_ratio"] = round(b / a, 2) if a and b else None
        pairs = zip(by_name[names[0]], by_name[names[1]], strict=True)
        row["identical"] = [x.get("text") == y.get("text") for x, y in pairs]
        row["load"] = [r.get("load") for r in by_name[names[1]]]
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--draft-tokens", type=int, default=RECOMMENDED_DRAFT_TOKENS)
    parser.add_argument("--turns", default=",".join(TURNS))
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--sampled", action="store_true", help="send no temperature (the model's own sampling)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model_path = store.resolve(args.model)
    turns = [t for t in args.turns.split(",") if t]
    with tempfile.TemporaryDirectory() as home, ExitStack() as stack:
        env = {**environ(), "HOME": home}
        proxies = {
            name: stack.enter_context(launch(ProxySettings(port=free_port(), model=str(model_path), draft_tokens=n,
                                                           speculate_greedy=True),
                                             deadline_s=300, env=env))
            for name, n in (("off", 0), ("spec", args.draft_tokens))
        }
        rss_before = {name: round(tree_rss_mb(p)) for name, p in proxies.items()}
        results = asyncio.run(run(proxies, turns, args.rounds, args.max_tokens, None if args.sampled else 0.0))
        rss_after = {name: round(tree_rss_mb(p)) for name, p in proxies.items()}
    rows = summary(results, ["off", "spec"])
    print(f"\nmodel {args.model}, draft tokens {args.draft_tokens}, {'sampled' if args.sampled else 'greedy'}; "
          f"RSS MB (proxy + inference) after loading {rss_before}, at the end {rss_after}")
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "rss_before": rss_before, "rss_after": rss_after,
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
