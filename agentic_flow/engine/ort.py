"""The one module that imports onnxruntime-genai.

It wraps a loaded model: chat-template rendering, tokenization, streaming detokenization, and the
generator that steps a batch.  It is used only inside the inference process (engine.worker), never in the
server's event-loop process: generator calls hold the GIL for the whole native call.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime_genai as og

from ..errors import EngineError
from ..tooluse import Guidance, ToolChoice, render_chat, template_has_tools
from .base import ChatPrompt

# count(): prompts of more characters than this are counted in pieces (see OrtModel.count).
HUGE_PROMPT_CHARS = 1 << 20
COUNT_PIECE_CHARS = 1 << 16


@dataclass(frozen=True)
class SearchKey:
    """Generator-wide search options: requests can share a batch only when these agree."""

    do_sample: bool
    temperature: float
    top_p: float
    top_k: int
    seed: int | None


def search_key(temperature: float, top_p: float | None, top_k: int | None, seed: int | None) -> SearchKey:
    if temperature <= 0:
        return SearchKey(False, 1.0, 1.0, 1, None)
    return SearchKey(True, float(temperature), float(top_p or 1.0), int(top_k or 0), seed)


class OrtModel:
    def __init__(self, path: Path, providers: tuple[str, ...], threads: int) -> None:
        self.path = path
        config = og.Config(str(path))
        threads = threads or os.cpu_count() or 1
        # The library defaults intra_op_num_threads to half the cores, measured 35% slower here.
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        config.clear_providers()
        for provider in providers:
            if provider == "cpu":
                continue
            if provider == "cuda" and not og.is_cuda_available():
                raise EngineError(
                    "ONNX_EXECUTION_PROVIDERS asks for cuda, but this onnxruntime-genai build has no CUDA "
                    "support: install onnxruntime-genai-cuda (and uninstall onnxruntime-genai) or use cpu"
                )
            config.append_provider(provider)
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)
        self.eos_ids = frozenset(int(t) for t in self.tokenizer.eos_token_ids)
        self.pad_id = int(self.tokenizer.pad_token_id)
        genai = json.loads((path / "genai_config.json").read_text())
        self.context_length = int(genai["model"].get("context_length", 4096))
        template = path / "chat_template.jinja"
        self._template = template.read_text() if template.is_file() else None
        # Qwen2.5's template lists tools and renders tool_calls / the tool role itself; SmolLM2's has
        # no tools format, so tooluse.render writes the same Hermes-style markup into the turns.
        self.native_tools = self._template is not None and template_has_tools(self._template)

    def render(self, prompt: ChatPrompt) -> str:
        """The prompt text, tools included, exactly as generation and count_tokens read it."""
        chat = render_chat(tuple(t.turn() for t in prompt.turns), prompt.tools, prompt.choice or ToolChoice(),
                           native=self.native_tools)
        text = self.tokenizer.apply_chat_template(
            json.dumps(list(chat.messages)), template_str=self._template, tools=chat.tools,
            add_generation_prompt=True,
        )
        return str(text) + chat.prefill

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]

    def decoder(self) -> og.TokenizerStream:
        return self.tokenizer.create_stream()

    def count(self, prompt: ChatPrompt) -> int:
        """Tokens in the rendered prompt, counted on the inference process's count thread.

        The tokenizer and the template hold the GIL for their whole native call, which would stall
        the decode loop beside it (11 MB: 0.3 s to render, 1.1 s to encode).  So a huge prompt is
        rendered with short placeholders spliced back afterwards, and encoded in ~64 KB pieces cut
        before a space: the decode loop gets the GIL between pieces (worst stall measured: 23 ms).
        Below HUGE_PROMPT_CHARS this is the exact path `generate` uses; above it (hundreds of
        thousands of tokens, far beyond any context here) the count can differ by a token per piece."""
        if sum(len(t.content) for t in prompt.turns) < HUGE_PROMPT_CHARS:
            return len(self.tokenizer.encode(self.render(prompt)))
        text = self._render_spliced(prompt)
        return sum(len(self.tokenizer.encode(piece)) for piece in pieces(text, COUNT_PIECE_CHARS))

    def _render_spliced(self, prompt: ChatPrompt) -> str:
        # Markers are searched in the rendered skeleton only, never in the spliced-in content.
        marks = [f"@@agentic-flow-turn-{i}@@" for i in range(len(prompt.turns))]
        skeleton = ChatPrompt(tuple(replace(t, content=m) for t, m in zip(prompt.turns, marks, strict=True)))
        rest = self.render(skeleton)
        out: list[str] = []
        for mark, turn in zip(marks, prompt.turns, strict=True):
            before, found, after = rest.partition(mark)
            if not found:  # the template dropped or changed this turn: render it all, whatever it costs
                return self.render(prompt)
            out += [before, turn.content]
            rest = after
        return "".join([*out, rest])

    def start(self, rows: list[list[int]], key: SearchKey, max_length: int,
              guidance: Guidance | None = None) -> Generator:
        return Generator(self, rows, key, max_length, guidance)


class Generator:
    """One onnxruntime-genai generator over the rows of a batch (a static batch, right-padded)."""

    def __init__(self, owner: OrtModel, rows: list[list[int]], key: SearchKey, max_length: int,
                 guidance: Guidance | None = None) -> None:
        params = og.GeneratorParams(owner.model)
        options: dict[str, object] = {
            "max_length": max_length,
            "batch_size": len(rows),
            "do_sample": key.do_sample,
        }
        if key.do_sample:
            options.update(temperature=key.temperature, top_p=key.top_p, top_k=key.top_k)
            if key.seed is not None:
                options["random_seed"] = key.seed
        params.set_search_options(**options)
        if guidance is not None:
            # A grammar llguidance refuses raises RuntimeError("Error creating grammar...") at
            # og.Generator below, not here; the scheduler retries with a looser one.
            params.set_guidance(guidance.kind, guidance.text)
        self._generator = og.Generator(owner.model, params)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), owner.pad_id, dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        self._generator.append_tokens(ids)
        self.max_length = max_length
        # Counted here rather than asked of the generator: is_done() is one more native call per token.
        self.length = width

    def step(self) -> list[int]:
        """Generate one token for every row."""
        self._generator.generate_next_token()
        self.length += 1
        return [int(t) for t in self._generator.get_next_tokens()]

    def done(self) -> bool:
        """True when the batch has reached its max_length (rows ending at EOS are tracked by the caller)."""
        return self.length >= self.max_length

    def reuse(self, keep: int, tokens: list[int]) -> None:
        """Continue a one-row generator with a new prompt that shares its first `keep` tokens: the KV
        cache of those is kept (measured: 0.04 s instead of 4.7 s for a 1,800-token shared prefix)."""
        self._generator.rewind_to(keep)
        self._generator.append_tokens(np.asarray([tokens[keep:]], dtype=np.int32))
        self.length = len(tokens)

    def close(self) -> None:
        # Dropping the generator frees its KV cache now rather than at the next GC.
        del self._generator


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
