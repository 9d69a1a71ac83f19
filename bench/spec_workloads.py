"""Agent turns for the speculative-decoding benchmark (scripts/bench_speculation.py), over POST /v1/messages.

Agents echo text all the time: a whole-file Write after a Read rewrites the file with a few changes, and
Edit's old_string copies lines the conversation just read.  Each turn here follows a Read of a real file
of this repository, returned as Claude Code returns it (`cat -n` numbering), then asks for:
  write    the whole file again with one rename (Write, forced)
  edit     one method changed (Edit, forced: old_string echoes the file)
  explain  a plain explanation of the file (no tools): prose with some echoed names
  story    a story from a one-line prompt: nothing to echo
Every body is streamed; `temperature` 0 (greedy) unless the caller passes another.  A Write or Edit call
in the code-block syntax (the Qwen models') reaches the client only once complete, so decode speed is
not read from the stream: `measure` first sends the turn with max_tokens 1 (the prefill, kept by the
prefix cache), then the turn itself, whose prompt is then read in two tokens, and divides its output
tokens by its wall time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentic_flow.anthropic.sse import iter_events

HEADERS = {"x-api-key": "local", "anthropic-version": "2023-06-01"}
ROOT = Path(__file__).resolve().parents[1]
SOURCE = "agentic_flow/engine/stops.py"
TOOLS = [
    {"name": "Read", "description": "Read a file from the local filesystem.",
     "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
    {"name": "Write", "description": "Write a file to the local filesystem, replacing its content.",
     "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                      "required": ["file_path", "content"]}},
    {"name": "Edit", "description": "Replace old_string with new_string in a file (old_string must match exactly).",
     "input_schema": {"type": "object",
                      "properties": {"file_path": {"type": "string"}, "old_string": {"type": "string"},
                                     "new_string": {"type": "string"}},
                      "required": ["file_path", "old_string", "new_string"]}},
]
TURNS = ("write", "edit", "explain", "story")


def numbered(text: str) -> str:
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(text.splitlines(), 1))


def body(turn: str, max_tokens: int, temperature: float | None = 0.0) -> dict[str, Any]:
    path = f"/repo/{Path(SOURCE).name}"
    read = [
        {"role": "user", "content": f"Read {path}."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                           "input": {"file_path": path}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": numbered((ROOT / SOURCE).read_text())}]},
    ]
    asks = {
        "write": ("Rename the class StopMatcher to StopFinder: write the whole file again with the Write tool.",
                  "Write"),
        "edit": ("Make StopMatcher.flush return the held text stripped of trailing spaces; use the Edit tool.", "Edit"),
        "explain": ("Explain in plain words what this file does, method by method.", None),
    }
    out: dict[str, Any] = {"model": "default", "max_tokens": max_tokens, "stream": True}
    if temperature is not None:
        out["temperature"] = temperature
    if turn == "story":
        out["messages"] = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds "
                                                       "a message in a bottle."}]
        return out
    text, tool = asks[turn]
    out["messages"] = [*read, {"role": "user", "content": text}]
    out["tools"] = TOOLS
    if tool is not None:
        out["tool_choice"] = {"type": "tool", "name": tool}
    return out


async def measure(session: aiohttp.ClientSession, base: str, request: dict[str, Any]) -> dict[str, Any]:
    """Prefill first (max_tokens 1), then the turn: its output tokens over its wall time."""
    primed = await stream(session, base, {**request, "max_tokens": 1})
    t0 = time.perf_counter()
    result = await stream(session, base, request)
    wall = time.perf_counter() - t0
    if "error" in result and result["error"] != "no tokens":
        return result
    result.pop("error", None)
    result["prefill_s"] = primed.get("ttft")
    result["decode"] = result.get("out", 0) / max(wall, 1e-9)
    return result


async def stream(session: aiohttp.ClientSession, base: str, request: dict[str, Any]) -> dict[str, Any]:
    """One streamed request: TTFT, output tokens, decode tok/s, and everything it streamed (for identity)."""
    t0 = time.perf_counter()
    first: float | None = None
    out = 0
    pieces: list[str] = []
    async with session.post(base + "/v1/messages", json=request, headers=HEADERS) as r:
        if r.status != 200:
            return {"error": f"{r.status} {(await r.text())[:200]}"}
        async for sse_event in iter_events(r.content.iter_any()):
            if not sse_event.data:
                continue
            event = json.loads(sse_event.data)
            kind = event.get("type")
            if kind == "content_block_start":
                pieces.append(json.dumps(event["content_block"].get("name", "")))
            elif kind == "content_block_delta":
                first = first or time.perf_counter()
                delta = event["delta"]
                pieces.append(delta.get("text") or delta.get("partial_json") or "")
            elif kind == "message_delta":
                out = event.get("usage", {}).get("output_tokens", 0)
            elif kind == "error":
                return {"error": json.dumps(event)[:200]}
    t1 = time.perf_counter()
    if first is None:
        return {"error": "no tokens", "out": out, "text": "".join(pieces)}
    return {"ttft": first - t0, "out": out, "decode": (out - 1) / max(t1 - first, 1e-9), "text": "".join(pieces)}
