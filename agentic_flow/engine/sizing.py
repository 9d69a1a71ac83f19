"""Sizing a prompt for counting, pure (no onnxruntime-genai): how big it is, and how a huge one is
rendered cheaply and cut into pieces (engine.ort.OrtModel.count)."""

from __future__ import annotations

import json
from dataclasses import replace

from .base import Prompt, Turn

# count(): prompts of more characters than this are counted in pieces.
HUGE_PROMPT_CHARS = 1 << 20


def prompt_chars(prompt: Prompt) -> int:
    """Characters the prompt brings to its rendering: turns' text, tool calls and results, and the
    tool definitions (a huge tool_result or schema is as costly to encode as a huge message)."""
    turns = sum(len(t.content) + sum(len(r.content) for r in t.results)
                + sum(len(json.dumps(c.input, ensure_ascii=False)) for c in t.calls) for t in prompt.turns)
    tools = sum(len(t.name) + len(t.description) + len(json.dumps(t.input_schema or {}, ensure_ascii=False))
                for t in prompt.tools)
    return turns + tools


def skeleton(prompt: Prompt) -> tuple[Prompt, list[tuple[str, str]]]:
    """The prompt with every turn's text and every tool result's content replaced by a short marker
    (tools and tool choice kept, so their rendering is counted), and the (marker, content) pairs."""
    marks: list[tuple[str, str]] = []

    def mark(content: str) -> str:
        marks.append((f"@@agentic-flow-part-{len(marks)}@@", content))
        return marks[-1][0]

    turns: list[Turn] = []
    for turn in prompt.turns:
        results = tuple(replace(r, content=mark(r.content)) for r in turn.results)
        turns.append(replace(turn, content=mark(turn.content), results=results))
    return replace(prompt, turns=tuple(turns)), marks


def splice(rendered: str, marks: list[tuple[str, str]]) -> str | None:
    """The rendered skeleton with each marker replaced by its content; None when the template dropped
    or changed a marker.  Markers are searched in the skeleton only, never in the spliced-in content."""
    found = sorted((rendered.find(m), m, content) for m, content in marks)
    if any(at < 0 for at, _, _ in found):
        return None
    out: list[str] = []
    cursor = 0
    for at, m, content in found:
        out += [rendered[cursor:at], content]
        cursor = at + len(m)
    return "".join([*out, rendered[cursor:]])


def pieces(text: str, size: int) -> list[str]:
    """Cut text into pieces of about `size` characters, each cut just before a space that follows a
    non-space (a word boundary that byte-level BPE pre-tokenizers never merge across); a run with no
    such space is cut hard at 4 x size."""
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        limit = min(len(text), start + 4 * size)
        while end < limit and not (text[end] == " " and text[end - 1] != " "):
            end += 1
        out.append(text[start:end])
        start = end
    return out
