"""The head-to-head's workloads: what one round measures against one server, over POST /v1/messages.

Adapted from ../shared/bench/h2h.py (the tool behind the figures in issue 12). Every request is streamed
and greedy; both servers get byte-identical bodies.
  single   a warm-up, then 3 sequential short prompts, 128 new tokens: median decode tok/s and TTFT.
           The prompts repeat from round to round (as in issue 12), so a server that caches whole prompts
           (llama-server does, per slot) reads only the last token again.
  unique   3 short prompts that differ from their first word (a nonce), 8 new tokens: median TTFT when
           only the chat template's fixed preamble can come from a cache
  four     4 concurrent requests, 128 new tokens: aggregate tok/s over the wall time
  cc_cold  a real Claude Code first request (tools included), made unique so that no cache helps: TTFT
  cc_warm  the same conversation's next turn (one more exchange): TTFT, i.e. how well the prefix is reused
  cc_second  a second Claude Code session: the same system prompt and tools, another task: TTFT
  echo_*   agent turns after a Read (bench/spec_workloads.py): a Write and an Edit that echo the file,
           and a plain explanation; decode tok/s after a primed prefill (where speculation pays)
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentic_flow.anthropic.sse import iter_events

try:
    from . import spec_workloads
except ImportError:  # bench/h2h.py run as a script puts bench/ on the path
    import spec_workloads  # type: ignore[no-redef]

PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain, step by step and in detail, how a refrigerator works.",
    "Write a detailed travel guide for a week in Lisbon.",
    "Describe the history of the printing press in depth.",
]
HEADERS = {"x-api-key": "local", "anthropic-version": "2023-06-01"}
Result = dict[str, Any]


async def stream(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> Result:
    """One streamed request: TTFT (to the first text delta), tokens in and out, decode tok/s."""
    try:
        return await _stream(session, base, body)
    except aiohttp.ClientError as exc:
        return {"error": repr(exc)[:200]}


async def _stream(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> Result:
    t0 = time.perf_counter()
    first: float | None = None
    out = inp = 0
    async with session.post(base + "/v1/messages", json=body, headers=HEADERS) as r:
        if r.status != 200:
            return {"error": f"{r.status} {(await r.text())[:200]}"}
        # The project's one SSE decoder, for llama-server's stream as for ours.
        async for sse_event in iter_events(r.content.iter_any()):
            if not sse_event.data:
                continue
            event = json.loads(sse_event.data)
            kind = event.get("type")
            if kind == "message_start":
                inp = event["message"].get("usage", {}).get("input_tokens", 0)
            elif kind == "content_block_delta" and first is None:
                first = time.perf_counter()
            elif kind == "message_delta":
                out = event.get("usage", {}).get("output_tokens", 0)
    t1 = time.perf_counter()
    if first is None:
        return {"error": "no tokens"}
    return {"ttft": first - t0, "in": inp, "out": out, "decode": (out - 1) / max(t1 - first, 1e-9)}


def chat(i: int, max_tokens: int, nonce: int | None = None) -> dict[str, Any]:
    text = PROMPTS[i % len(PROMPTS)] if nonce is None else f"Request {nonce}. {PROMPTS[i % len(PROMPTS)]}"
    return {"model": "default", "max_tokens": max_tokens, "stream": True, "temperature": 0,
            "messages": [{"role": "user", "content": text}]}


SECOND_TASK = "Write a function add(a, b) in add.py that returns the sum of two numbers"


def cc_body(request: dict[str, Any], nonce: int, extra_turn: bool = False, task: str | None = None) -> dict[str, Any]:
    body = json.loads(json.dumps(request))  # a deep copy
    # A nonce at the start of the system prompt defeats any cache kept from an earlier round.
    body["system"][1]["text"] = f"Session {nonce}. " + body["system"][1]["text"]
    body.update(max_tokens=32, temperature=0, model="claude-sonnet-4-5")
    body.pop("thinking", None)
    if task is not None:  # another session: same system prompt and tools, the user asks for something else
        first = body["messages"][0]["content"]
        last_text = max(i for i, block in enumerate(first) if block.get("type") == "text")
        first[last_text]["text"] = task
    if extra_turn:
        body["messages"] = body["messages"] + [{"role": "assistant", "content": "I will create it."},
                                               {"role": "user", "content": "Go on."}]
    return body


async def measure(base: str, cc_request: Path | None) -> Result:
    """One round against one server."""
    res: Result = {}
    errors: list[Result] = []
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as s:
        await stream(s, base, chat(0, 8))  # warm-up: the first run of a new session is slower everywhere
        single = [await stream(s, base, chat(i, 128)) for i in range(3)]
        ok = [r for r in single if "error" not in r]
        if ok:
            res["single_decode_tok_s"] = round(statistics.median(r["decode"] for r in ok), 1)
            res["single_ttft_ms"] = round(statistics.median(r["ttft"] for r in ok) * 1000, 1)
        unique = [await stream(s, base, chat(i, 8, random.randrange(10**9))) for i in range(3)]
        ok = [r for r in unique if "error" not in r]
        if ok:
            res["unique_ttft_ms"] = round(statistics.median(r["ttft"] for r in ok) * 1000, 1)
        t0 = time.perf_counter()
        four = await asyncio.gather(*(stream(s, base, chat(i, 128)) for i in range(4)))
        wall = time.perf_counter() - t0
        res["four_aggregate_tok_s"] = round(sum(r["out"] for r in four if "error" not in r) / wall, 1)
        errors += single + unique + list(four)
        for turn in ("write", "edit", "explain"):
            echo = await spec_workloads.measure(s, base, spec_workloads.body(turn, 300))
            if "error" not in echo:
                res[f"echo_{turn}_tok_s"] = round(echo["decode"], 1)
            errors.append(echo)
        if cc_request is not None:
            errors += await _claude_code(s, base, json.loads(cc_request.read_text()), res)
    res["errors"] = [r["error"] for r in errors if "error" in r][:3]
    return res


async def _claude_code(s: aiohttp.ClientSession, base: str, request: dict[str, Any], res: Result) -> list[Result]:
    nonce = random.randrange(10**9)
    cold = await stream(s, base, cc_body(request, nonce))
    warm = await stream(s, base, cc_body(request, nonce, extra_turn=True))
    second = await stream(s, base, cc_body(request, nonce, task=SECOND_TASK))
    if "error" not in cold:
        res["cc_input_tokens"] = cold["in"]
        res["cc_cold_ttft_ms"] = round(cold["ttft"] * 1000)
        res["cc_prefill_tok_s"] = round(cold["in"] / cold["ttft"], 1) if cold["in"] else None
    if "error" not in warm:
        res["cc_warm_ttft_ms"] = round(warm["ttft"] * 1000)
    if "error" not in second:
        res["cc_second_ttft_ms"] = round(second["ttft"] * 1000)
    return [cold, warm, second]
