"""Benchmark: the raw onnxruntime-genai engine against the same model through the proxy, in one run.

Prints decode tokens/s and time to first token (TTFT) for one stream and four at once, then the
ratios the proxy is held to: single-stream decode >= 0.95 x raw, TTFT overhead <= 10 ms, and four
concurrent streams >= 1.6 x the aggregate tokens/s of one.  Also /health latency during a generation.

Usage: python scripts/bench.py [--model PATH_OR_NAME] [--tokens 128] [--repeat 3]
Numbers drift on a shared machine: compare the ratios of one run, never absolute times across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentic_flow.anthropic.responses import (  # noqa: E402
    ContentBlockDeltaEvent,
    MessageDeltaEvent,
    read_event,
)
from agentic_flow.anthropic.sse import iter_events  # noqa: E402
from agentic_flow.engine.base import Prompt, Turn  # noqa: E402
from agentic_flow.launcher.supervisor import free_port, launch  # noqa: E402
from agentic_flow.models import store  # noqa: E402
from agentic_flow.settings import ProxySettings, environ, local_model  # noqa: E402

PROMPTS = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe the history of the printing press at length.",
    "Write a long letter to a friend about a trip to the mountains.",
]


@dataclass
class Run:
    tokens: int
    ttft: float  # seconds from request to first token
    end: float  # seconds from request to last token

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / max(self.end - self.ttft, 1e-9)


# ------------------------------------------------------------------ raw engine

def raw_runs(model: Any, n_tokens: int, batch: int) -> list[Run]:
    from agentic_flow.engine.search import search_key

    key = search_key(0.0, None, None, None)
    started = time.perf_counter()
    # Rendering the chat template and tokenizing are part of answering a chat request: timed, as in
    # the proxy, where they happen after the request arrives.
    prompts = [model.encode(model.render(Prompt((Turn("user", PROMPTS[i % 4]),)))) for i in range(batch)]
    b = model.start(prompts, key, max(len(p) for p in prompts) + n_tokens + 1)
    # Text is what any use of the engine needs: the raw runs detokenize too, as the proxy does.
    decoders = [model.decoder() for _ in range(batch)]
    counts = [0] * batch
    first = [0.0] * batch
    last = [0.0] * batch
    done = [False] * batch
    while not all(done):
        tokens = b.step()
        now = time.perf_counter() - started
        for i, t in enumerate(tokens):
            if done[i]:
                continue
            if t in model.eos_ids:
                done[i] = True
                continue
            counts[i] += 1
            decoders[i].decode(t)
            if counts[i] == 1:
                first[i] = now
            last[i] = now
            done[i] = counts[i] >= n_tokens
    b.close()
    return [Run(counts[i], first[i], last[i]) for i in range(batch)]


# ------------------------------------------------------------------ through the proxy

async def proxy_run(session: aiohttp.ClientSession, url: str, prompt: str, n_tokens: int) -> Run:
    body = {"model": "bench", "max_tokens": n_tokens, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": prompt}]}
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async with session.post(f"{url}/v1/messages", json=body) as resp:
        resp.raise_for_status()
        async for sse_event in iter_events(resp.content.iter_any()):
            event = read_event(sse_event.event, sse_event.data)
            if isinstance(event, ContentBlockDeltaEvent):
                now = time.perf_counter() - started
                first = first or now
                last = now
            elif isinstance(event, MessageDeltaEvent):
                tokens = event.usage.output_tokens
    return Run(tokens, first, last)


async def proxy_four(session: aiohttp.ClientSession, url: str, n_tokens: int) -> tuple[list[Run], float]:
    """Four streams at once, one per prompt: their runs and the wall time for all four."""
    t0 = time.perf_counter()
    runs = list(await asyncio.gather(*[proxy_run(session, url, p, n_tokens) for p in PROMPTS]))
    return runs, time.perf_counter() - t0


async def interleaved(model: Any, url: str, n_tokens: int, repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    """Raw and proxy runs alternate, so drift in the machine's speed hits both alike."""
    raw_singles: list[Run] = []
    raw_fours: list[tuple[list[Run], float]] = []
    px_singles: list[Run] = []
    px_fours: list[tuple[list[Run], float]] = []
    async with aiohttp.ClientSession() as session:
        raw_runs(model, 8, 1)  # warm-up, both sides
        await proxy_run(session, url, PROMPTS[0], 8)
        for _ in range(repeat):
            raw_singles.append(raw_runs(model, n_tokens, 1)[0])
            px_singles.append(await proxy_run(session, url, PROMPTS[0], n_tokens))
            t0 = time.perf_counter()
            runs = raw_runs(model, n_tokens, 4)
            raw_fours.append((runs, time.perf_counter() - t0))
            px_fours.append(await proxy_four(session, url, n_tokens))
        health_ms = await health_latency(session, url, n_tokens)
        cold_ms, warm_ms = await prefix_ttft(session, url)
    extra = {"health_ms_during_generation": health_ms, "long_prompt_ttft_ms_first": cold_ms,
             "long_prompt_ttft_ms_next_turn": warm_ms}
    return summarize(raw_singles, raw_fours), summarize(px_singles, px_fours) | extra


async def prefix_ttft(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    """An agent-style conversation: a ~1,500-token system prompt, then a second turn that resends it.
    The second request reuses the first one's KV cache for the shared prefix."""
    system = "You are a careful coding agent. Follow the project's rules exactly. " * 100

    async def ask(messages: list[dict[str, str]]) -> float:
        body = {"model": "bench", "max_tokens": 8, "temperature": 0, "stream": True, "system": system,
                "messages": messages}
        started = time.perf_counter()
        async with session.post(f"{url}/v1/messages", json=body) as resp:
            async for sse_event in iter_events(resp.content.iter_any()):
                if isinstance(read_event(sse_event.event, sse_event.data), ContentBlockDeltaEvent):
                    return (time.perf_counter() - started) * 1000
        return float("nan")

    first = [{"role": "user", "content": "List the files."}]
    cold = await ask(first)
    warm = await ask([*first, {"role": "assistant", "content": "Here they are."},
                      {"role": "user", "content": "Now read the README."}])
    return cold, warm


async def health_latency(session: aiohttp.ClientSession, url: str, n_tokens: int) -> float:
    gen = asyncio.create_task(proxy_run(session, url, PROMPTS[1], n_tokens * 2))
    await asyncio.sleep(0.2)
    samples = []
    for _ in range(10):
        t0 = time.perf_counter()
        async with session.get(f"{url}/health") as resp:
            await resp.read()
        samples.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.02)
    await gen
    return statistics.median(samples)


def summarize(singles: list[Run], fours: list[tuple[list[Run], float]]) -> dict[str, float]:
    agg = [sum(r.tokens for r in runs) / wall for runs, wall in fours]
    single_wall = [r.tokens / r.end for r in singles]
    return {
        "single_decode_tps": statistics.median(r.decode_tps for r in singles),
        "single_ttft_ms": statistics.median(r.ttft for r in singles) * 1000,
        "single_total_tps": statistics.median(single_wall),
        "four_aggregate_tps": statistics.median(agg),
        "four_ttft_ms": statistics.median(statistics.mean(r.ttft for r in runs) for runs, _ in fours) * 1000,
    }


def bench_args(doc: str) -> tuple[argparse.Namespace, Path]:
    """The options this script and bench_hop.py share, parsed; the model resolved; the header printed."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument(
        "--model", default=None, help="catalog name or folder [default: ONNX_MODEL_PATH, else smollm2-135m]"
    )
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    model_path = store.resolve(local_model(args.model))
    print(f"model: {model_path}\ntokens per stream: {args.tokens}, repeats: {args.repeat} (medians)\n")
    return args, model_path


def main() -> int:
    args, model_path = bench_args(__doc__)

    from agentic_flow.engine.ort import OrtModel

    model = OrtModel(model_path, ("cpu",), 0)
    with tempfile.TemporaryDirectory() as home:
        # The product's launcher, on a free port, with its state (the log) in a throwaway home.
        env = {**environ(), "XDG_STATE_HOME": home}
        proxy_settings = ProxySettings(port=free_port(), model=str(model_path))
        with launch(proxy_settings, deadline_s=120, env=env) as proxy:
            raw, proxied = asyncio.run(interleaved(model, proxy.url, args.tokens, args.repeat))

    print(f"{'figure':32} {'raw engine':>12} {'proxy':>12}")
    for key in ("single_decode_tps", "single_ttft_ms", "single_total_tps", "four_aggregate_tps", "four_ttft_ms"):
        print(f"{key:32} {raw[key]:12.1f} {proxied[key]:12.1f}")
    for key in ("health_ms_during_generation", "long_prompt_ttft_ms_first", "long_prompt_ttft_ms_next_turn"):
        print(f"{key:32} {'':>12} {proxied[key]:12.1f}")
    print()
    decode_ratio = proxied["single_decode_tps"] / raw["single_decode_tps"]
    ttft_added = proxied["single_ttft_ms"] - raw["single_ttft_ms"]
    concurrency = proxied["four_aggregate_tps"] / proxied["single_total_tps"]
    raw_concurrency = raw["four_aggregate_tps"] / raw["single_total_tps"]
    print(f"proxy/raw single-stream decode:     {decode_ratio:.3f}  (target >= 0.95)")
    print(f"TTFT added by the proxy:            {ttft_added:+.1f} ms  (target <= 10 ms)")
    print(
        f"proxy 4 concurrent / 1 stream:      {concurrency:.2f}x  (target >= 1.6x; raw batch-4: {raw_concurrency:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
