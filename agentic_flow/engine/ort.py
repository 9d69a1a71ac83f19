"""The one module that imports onnxruntime-genai.

It wraps a loaded model: chat-template rendering, tokenization, streaming detokenization, and the
generator that steps a batch.  It is used only inside the inference process (engine.worker), never in the
server's event-loop process: generator calls hold the GIL for the whole native call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime_genai as og

from ..errors import EngineError
from ..tooluse import Guidance, ToolChoice, render_chat, template_has_tools
from .base import GrammarRefused, Prompt
from .search import SearchKey
from .sizing import HUGE_PROMPT_CHARS, pieces, prompt_chars, skeleton, splice

COUNT_PIECE_CHARS = 1 << 16  # count(): a huge prompt is encoded in pieces of about this many characters


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
        self._token_texts: dict[int, str] = {}

    def render(self, prompt: Prompt) -> str:
        """The prompt text, tools included, exactly as generation and count_tokens read it."""
        chat = render_chat(prompt.turns, prompt.tools, prompt.choice or ToolChoice(),
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

    def token_text(self, token: int) -> str:
        """One token decoded alone (a logprobs alternative); cached, at most one entry per vocabulary id."""
        text = self._token_texts.get(token)
        if text is None:
            text = self._token_texts[token] = str(self.tokenizer.decode(np.asarray([token], dtype=np.int32)))
        return text

    def count(self, prompt: Prompt) -> int:
        """Tokens in the rendered prompt, counted on the inference process's count thread.

        The tokenizer and the template hold the GIL for their whole native call, which would stall
        the decode loop beside it (11 MB: 0.3 s to render, 1.1 s to encode).  So a huge prompt is
        rendered with short placeholders spliced back afterwards, and encoded in ~64 KB pieces cut
        before a space: the decode loop gets the GIL between pieces (worst stall measured: 23 ms).
        Below HUGE_PROMPT_CHARS this is the exact path `generate` uses; above it (hundreds of
        thousands of tokens, far beyond any context here) the count can differ by a token per piece."""
        if prompt_chars(prompt) < HUGE_PROMPT_CHARS:
            return len(self.tokenizer.encode(self.render(prompt)))
        bare, marks = skeleton(prompt)
        # None: the template dropped or changed a marker: render it all, whatever it costs.
        text = splice(self.render(bare), marks) or self.render(prompt)
        return sum(len(self.tokenizer.encode(piece)) for piece in pieces(text, COUNT_PIECE_CHARS))

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
            params.set_guidance(guidance.kind, guidance.text)
        self._generator = _create(owner.model, params, guidance is not None)
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

    def logits(self) -> np.ndarray:
        """The logits the next `step()` chooses from, [rows, vocabulary] float32; call it just before
        that step (which then runs no forward pass of its own).  They are the model's own: under
        guidance the grammar's mask is applied inside the step, after this.  Only a batch with a row
        that asked for logprobs calls it (a copy of rows x vocabulary floats per step)."""
        logits = np.asarray(self._generator.get_logits())
        return logits.reshape(logits.shape[0], -1, logits.shape[-1])[:, -1, :]

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


def _create(model: og.Model, params: og.GeneratorParams, guided: bool) -> og.Generator:
    """A grammar llguidance refuses raises RuntimeError("Error creating grammar ...") here, at the
    generator's creation (not at set_guidance): raised as GrammarRefused, so the scheduler can take the
    request's fallback grammar."""
    try:
        return og.Generator(model, params)
    except RuntimeError as exc:
        if guided and "grammar" in str(exc).lower():
            raise GrammarRefused(str(exc)) from exc
        raise
