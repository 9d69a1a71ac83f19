"""Why inference runs in its own process: measure how long the server's event loop stalls while a
long prompt is prefilled, (a) with the generator in a thread of the server process (run_in_executor),
(b) with the inference process (engine.client.WorkerEngine).  Prints the worst loop delay of each.

Usage: python scripts/measure_concurrency.py [--model smollm2-135m] [--prompt-words 2500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentic_flow.engine.base import GenerationRequest, Prompt, SamplingOptions, Turn
from agentic_flow.models import store
from agentic_flow.settings import local_model


async def loop_monitor(stop: asyncio.Event) -> float:
    """The worst lateness of a 5 ms tick while `stop` is unset: what /health would wait."""
    worst = 0.0
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - t0 - 0.005)
    return worst


def thread_generate(model_path: Path, prompt: Prompt, tokens: int) -> None:
    from agentic_flow.engine.ort import OrtModel
    from agentic_flow.engine.search import search_key

    model = OrtModel(model_path, ("cpu",), 0)
    ids = model.encode(model.render(prompt))
    batch = model.start([ids], search_key(0, None, None, None), len(ids) + tokens + 1)
    for _ in range(tokens):
        batch.step()
    batch.close()


async def in_thread(model_path: Path, prompt: Prompt, tokens: int) -> float:
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_monitor(stop))
    await asyncio.get_running_loop().run_in_executor(None, thread_generate, model_path, prompt, tokens)
    stop.set()
    return await monitor


async def in_process(model_path: Path, prompt: Prompt, tokens: int) -> float:
    from agentic_flow.engine.client import WorkerEngine

    engine = await WorkerEngine.start(model_path, "m", ("cpu",), 0, 4)
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_monitor(stop))
    gen = await engine.generate(GenerationRequest(prompt, SamplingOptions(max_tokens=tokens, temperature=0)))
    async for _ in gen:
        pass
    stop.set()
    worst = await monitor
    await engine.close()
    return worst


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--prompt-words", type=int, default=2500)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    path = store.resolve(local_model(args.model))
    words = " ".join(f"word{i % 97}" for i in range(args.prompt_words))
    prompt = Prompt((Turn("user", f"Summarize: {words}"),))
    thread = asyncio.run(in_thread(path, prompt, args.tokens))
    process = asyncio.run(in_process(path, prompt, args.tokens))
    print(f"worst event-loop stall, generator in a thread (run_in_executor): {thread * 1000:8.1f} ms")
    print(f"worst event-loop stall, inference process (WorkerEngine):        {process * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
