"""A soak: the real proxy under hours of mixed use, through both APIs, with a line per interval.

    make soak MINUTES=60 MODEL=qwen2.5-coder-1.5b
    python scripts/soak.py --minutes 15 --model smollm2-135m --json soak.json

`--clients` workers loop over a weighted mix: Messages streams, streams the client cancels after the first
delta, non-streaming answers, forced tool calls (streamed and not), count_tokens, Chat Completions
(streamed and not), and long conversations that grow turn by turn (each resend hits the prefix cache).
Every interval it prints the RSS of the proxy and its inference process together, the requests done,
the errors by kind (an HTTP status, `stream` for an error event inside a 200, `conn` for a dropped
connection), and the TTFT percentiles of the streams (to the first content delta).  The summary at the
end (and `--json`) holds every interval.  It starts the proxy through the product's launcher, on a
free port, and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentic_flow import settings
from agentic_flow.launcher import supervisor

CLOCK = {"name": "get_time", "description": "The current time in a city.",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TOPICS = ["a lighthouse", "a dragon", "the sea", "a robot", "Paris", "a garden", "the moon", "a train"]
SYSTEM = ("You are a helpful assistant in a long conversation. Answer briefly. " * 20).strip()


@dataclass
class Interval:
    minute: float  # minutes since the start, at the end of this interval
    rss_mb: int
    requests: int
    errors: dict[str, int]
    ttft_ms: dict[str, float]  # p50, p90, p99 of this interval's streams
    kinds: dict[str, int]


@dataclass
class Tally:
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    ttfts: list[float] = field(default_factory=list)

    def take(self) -> Tally:
        out, self.requests, self.errors, self.kinds, self.ttfts = Tally(
            self.requests, self.errors, self.kinds, self.ttfts), 0, Counter(), Counter(), []
        return out


class Failed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Soak:
    def __init__(self, base: str, session: aiohttp.ClientSession, seed: int) -> None:
        self.base = base
        self.session = session
        self.rand = random.Random(seed)
        self.tally = Tally()

    def message(self, **extra: Any) -> dict[str, Any]:
        topic = self.rand.choice(TOPICS)
        return {"model": "m", "max_tokens": self.rand.choice([8, 16, 32]), "temperature": 0,
                "messages": [{"role": "user", "content": f"Say one sentence about {topic}."}], **extra}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.base + path, json=body) as resp:
            if resp.status != 200:
                raise Failed(str(resp.status))
            data: dict[str, Any] = await resp.json()
            return data

    async def stream(self, path: str, body: dict[str, Any], cancel: bool = False) -> str:
        """A stream to its end (or to its first delta, then dropped); the text of its deltas."""
        started = time.monotonic()
        text: list[str] = []
        async with self.session.post(self.base + path, json={**body, "stream": True}) as resp:
            if resp.status != 200:
                raise Failed(str(resp.status))
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("event: error") or '"error"' in line[:40]:
                    raise Failed("stream")
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                piece = _delta_text(json.loads(line[5:]))
                if piece is None:
                    continue
                if not text:
                    self.tally.ttfts.append(time.monotonic() - started)
                text.append(piece)
                if cancel:
                    resp.close()  # the client goes away mid-answer
                    return "".join(text)
        return "".join(text)

    # the mix ----------------------------------------------------------------------------------------
    async def messages_stream(self) -> None:
        await self.stream("/v1/messages", self.message())

    async def cancelled_stream(self) -> None:
        await self.stream("/v1/messages", {**self.message(), "max_tokens": 400}, cancel=True)

    async def messages_whole(self) -> None:
        await self.post("/v1/messages", self.message())

    async def tool_call(self) -> None:
        body = self.message(tools=[CLOCK], tool_choice={"type": "any"}, max_tokens=30)
        body["messages"] = [{"role": "user", "content": f"What time is it in {self.rand.choice(TOPICS)}?"}]
        if self.rand.random() < 0.5:
            await self.stream("/v1/messages", body)
        else:
            reply = await self.post("/v1/messages", body)
            if reply["stop_reason"] == "tool_use" and not any(b["type"] == "tool_use" for b in reply["content"]):
                raise Failed("tool_use without a call")

    async def count_tokens(self) -> None:
        body = self.message(tools=[CLOCK])
        body.pop("max_tokens")
        body.pop("temperature")
        await self.post("/v1/messages/count_tokens", body)

    async def chat_completion(self) -> None:
        body = {"model": "m", "max_tokens": 16, "temperature": 0, "messages": [
            {"role": "user", "content": f"Name a colour of {self.rand.choice(TOPICS)}."}]}
        if self.rand.random() < 0.5:
            await self.stream("/v1/chat/completions", body)
        else:
            await self.post("/v1/chat/completions", body)

    async def conversation(self) -> None:
        """A conversation of up to 8 turns, each resending the whole history (a prefix-cache hit)."""
        history: list[dict[str, Any]] = []
        for turn in range(self.rand.randint(3, 8)):
            history.append({"role": "user", "content": f"Turn {turn}: tell me more about {self.rand.choice(TOPICS)}."})
            answer = await self.stream("/v1/messages", {"model": "m", "max_tokens": 24, "temperature": 0,
                                                        "system": SYSTEM, "messages": history})
            history.append({"role": "assistant", "content": answer or "..."})
            self.tally.requests += 1
            self.tally.kinds["conversation turn"] += 1

    MIX: tuple[tuple[str, int], ...] = (
        ("messages_stream", 4), ("cancelled_stream", 2), ("messages_whole", 2), ("tool_call", 1),
        ("count_tokens", 2), ("chat_completion", 2), ("conversation", 1),
    )

    async def worker(self, until: float) -> None:
        names, weights = zip(*self.MIX, strict=True)
        while time.monotonic() < until:
            name = self.rand.choices(names, weights)[0]
            action: Callable[[], Awaitable[None]] = getattr(self, name)
            try:
                await action()
            except Failed as exc:
                self.tally.errors[exc.kind] += 1
            except (TimeoutError, aiohttp.ClientError):
                self.tally.errors["conn"] += 1
            if name != "conversation":
                self.tally.requests += 1
                self.tally.kinds[name] += 1


def _delta_text(event: dict[str, Any]) -> str | None:
    if event.get("type") == "content_block_delta":
        delta = event.get("delta", {})
        return str(delta.get("text") or delta.get("partial_json") or "")
    choices = event.get("choices")
    if choices and (content := choices[0].get("delta", {}).get("content")):
        return str(content)
    return None


def tree_rss_mb(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total >> 20


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": round(values[0] * 1000, 1)} if values else {}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(q[49] * 1000, 1), "p90": round(q[89] * 1000, 1), "p99": round(q[98] * 1000, 1)}


async def drive(base: str, pid: int, minutes: float, clients: int, interval: float, seed: int,
                out: Callable[[str], None] = print) -> list[Interval]:
    started = time.monotonic()
    until = started + minutes * 60
    intervals: list[Interval] = []
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        soaks = [Soak(base, session, seed + i) for i in range(clients)]
        workers = [asyncio.create_task(s.worker(until)) for s in soaks]
        out(f"{'min':>6} {'RSS MB':>7} {'reqs':>5} {'errors':<24} {'TTFT p50/p90/p99 ms':<22}")
        while not all(w.done() for w in workers):
            await asyncio.wait(workers, timeout=interval)
            taken = [s.tally.take() for s in soaks]
            done = Tally(sum(t.requests for t in taken), sum((t.errors for t in taken), Counter()),
                         sum((t.kinds for t in taken), Counter()), [x for t in taken for x in t.ttfts])
            row = Interval(round((time.monotonic() - started) / 60, 2), tree_rss_mb(pid), done.requests,
                           dict(done.errors), percentiles(done.ttfts), dict(done.kinds))
            intervals.append(row)
            ttft = "/".join(str(row.ttft_ms.get(k, "-")) for k in ("p50", "p90", "p99"))
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(row.errors.items())) or "0"
            out(f"{row.minute:>6.2f} {row.rss_mb:>7} {row.requests:>5} {errors:<24} {ttft:<22}")
        for w in workers:
            w.result()  # a bug in the soak itself surfaces here
    return intervals


def run(model: str, minutes: float, clients: int, interval: float, seed: int = 0,
        extra: dict[str, Any] | None = None) -> list[Interval]:
    """Start the proxy through the product's launcher, drive it, stop it."""
    proxy = settings.ProxySettings(port=supervisor.free_port(), model=model, **(extra or {}))
    with supervisor.launch(proxy, deadline_s=600) as handle:
        assert handle.pid is not None
        print(f"soak: {model}, {clients} clients, {minutes:g} min, proxy pid {handle.pid} at {handle.url}",
              flush=True)
        return asyncio.run(drive(handle.url, handle.pid, minutes, clients, interval, seed,
                                 out=lambda line: print(line, flush=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default=settings.DEFAULT_MODEL)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per line")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every interval here")
    args = parser.parse_args()
    load = psutil.getloadavg()
    intervals = run(args.model, args.minutes, args.clients, args.interval, args.seed)
    total = sum(i.requests for i in intervals)
    errors = sum((Counter(i.errors) for i in intervals), Counter())
    print(f"soak done: {total} requests, errors {dict(errors) or 0}; RSS {intervals[0].rss_mb} -> "
          f"{intervals[-1].rss_mb} MB; load average at start {load[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(i) for i in intervals], indent=1))
    if any(k.isdigit() and int(k) >= 500 for k in errors) or errors.get("conn") or errors.get("stream"):
        sys.exit(1)


if __name__ == "__main__":
    main()
