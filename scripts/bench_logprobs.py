"""Benchmark: what logprobs cost, and that requests without them cost what they did.

One streamed, greedy Chat Completion at a time (single stream), in alternating rounds: without
logprobs, with `logprobs: true`, with `top_logprobs: 20`; and, with `--baseline ROOT` (another
checkout of the project, e.g. main), the same request without logprobs against a proxy running that
checkout's code, started beside this one (an idle proxy costs no CPU).  Prints decode tokens/s
(from the first content chunk to the last) per mode, median over the rounds, and the ratios.

`--engine` measures in-process instead, on the inference process's own classes (engine.ort,
engine.logprobs): greedy decode tok/s with and without scoring, alternating, and the time of the
scoring itself per token (reading the logits and the numpy log-softmax/top-k), which a loaded
machine disturbs far less than whole requests.

Usage: python scripts/bench_logprobs.py [--model PATH_OR_NAME] [--tokens 200] [--rounds 5] [--baseline /path/to/main]
       python scripts/bench_logprobs.py --engine [--threads 2]
Numbers drift on a shared machine: compare the ratios of one run, never absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.launcher.supervisor import free_port, launch  # noqa: E402
from agentic_flow.models import store  # noqa: E402
from agentic_flow.settings import ProxySettings, environ, local_model  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
MODES = {"plain": {}, "logprobs": {"logprobs": True}, "top20": {"logprobs": True, "top_logprobs": 20}}


def decode_tps(url: str, tokens: int, extra: dict[str, object]) -> float:
    body = {"model": "bench", "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": PROMPT}], **extra}
    request = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    first = last = 0.0
    generated = 0
    with urllib.request.urlopen(request, timeout=600) as response:
        for line in response:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                generated = chunk["usage"]["completion_tokens"]
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
    return (generated - 1) / max(last - first, 1e-9)


def engine_cost(path: Path, tokens: int, rounds: int, threads: int) -> None:
    from agentic_flow.engine.base import Prompt, Turn
    from agentic_flow.engine.logprobs import score
    from agentic_flow.engine.ort import OrtModel
    from agentic_flow.engine.search import GREEDY

    model = OrtModel(path, ("cpu",), threads)
    ids = model.encode(model.render(Prompt((Turn("user", PROMPT),))))

    def run(top: int | None) -> float:
        """Greedy decode tok/s; `top` None: no scoring (as a request without logprobs)."""
        generator = model.start([ids], GREEDY, len(ids) + tokens + 1)
        decoder = model.decoder()
        started = time.perf_counter()
        for _ in range(tokens):
            logits = generator.logits() if top is not None else None
            [token] = generator.step()
            piece = decoder.decode(token)
            if logits is not None and top is not None:
                score(logits[0], token, piece, top, model.token_text)
        elapsed = time.perf_counter() - started
        generator.close()
        return tokens / elapsed

    run(None)  # warm-up
    speeds: dict[str, list[float]] = {"plain": [], "logprobs": [], "top20": []}
    for _ in range(rounds):
        for mode, top in (("plain", None), ("logprobs", 0), ("top20", 20)):
            speeds[mode].append(run(top))
    # The scoring alone, with the forward pass outside the timer.
    generator = model.start([ids], GREEDY, len(ids) + tokens + 1)
    costs = {0: 0.0, 20: 0.0}
    for _ in range(tokens):
        logits = generator.logits()  # the forward pass
        [token] = generator.step()
        for top in costs:
            t0 = time.perf_counter()
            score(logits[0], token, "x", top, model.token_text)
            costs[top] += time.perf_counter() - t0
    print(f"load average: {os.getloadavg()}  (engine in-process, {tokens} tokens, greedy, {threads} threads, "
          f"{rounds} rounds)")
    for mode, values in speeds.items():
        print(f"{mode:10s} {statistics.median(values):7.1f} tok/s   ({', '.join(f'{v:.0f}' for v in values)})")
    plain = statistics.median(speeds["plain"])
    for mode in ("logprobs", "top20"):
        print(f"{mode} / plain = {statistics.median(speeds[mode]) / plain:.3f}")
    for top, total in costs.items():
        print(f"scoring, top_logprobs {top}: {1000 * total / tokens:.3f} ms per token")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, run without logprobs")
    parser.add_argument("--engine", action="store_true", help="measure in-process, without the proxy")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    path = store.resolve(local_model(args.model))
    if args.engine:
        engine_cost(path, args.tokens, args.rounds, args.threads)
        return
    base_env = {**environ(), "XDG_STATE_HOME": tempfile.mkdtemp(prefix="bench-logprobs-")}
    proxies = {"this": base_env}
    if args.baseline is not None:
        proxies["baseline"] = {**base_env, "PYTHONPATH": str(args.baseline.resolve())}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(launch(ProxySettings(port=free_port(), model=str(path)),
                                                 env=proxy_env)).url
                for name, proxy_env in proxies.items()}
        runs: list[tuple[str, str, dict[str, object]]] = [("this", mode, extra) for mode, extra in MODES.items()]
        if "baseline" in urls:
            runs.append(("baseline", "plain", {}))
        for name, _mode, extra in runs:  # one warm-up each: the first run of a process costs more
            decode_tps(urls[name], 16, extra)
        results: dict[str, list[float]] = {f"{name}:{mode}": [] for name, mode, _ in runs}
        for _ in range(args.rounds):
            for name, mode, extra in runs:
                results[f"{name}:{mode}"].append(decode_tps(urls[name], args.tokens, extra))
    print(f"load average: {os.getloadavg()}  ({args.tokens} tokens, greedy, single stream, {args.rounds} rounds)")
    medians = {key: statistics.median(values) for key, values in results.items()}
    for key, value in medians.items():
        print(f"{key:16s} {value:7.1f} tok/s   ({', '.join(f'{v:.0f}' for v in results[key])})")
    plain = medians["this:plain"]
    for key, value in medians.items():
        if key != "this:plain":
            print(f"{key} / this:plain = {value / plain:.3f}")


if __name__ == "__main__":
    main()
