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
from ..models.onnx_graph import declared_dim
from ..tooluse import Guidance, ToolChoice, render_chat, template_has_tools
from .base import GrammarRefused, Prompt
from .search import SearchKey
from .sizing import HUGE_PROMPT_CHARS, pieces, prompt_chars, skeleton, splice

COUNT_PIECE_CHARS = 1 << 16  # count(): a huge prompt is encoded in pieces of about this many characters
# On a graph with one logits row per input token (convert build 3, models/tail_logits.py) the runtime's
# logits buffer for a read of T tokens is [rows, T, vocab] float32, zeros but for the last rows.  One read
# writes at most this much: a one-row generator reads its prompt in pieces of that many tokens (883 on
# Qwen's vocabulary, 2,730 on SmolLM2's; pieces of 256 cost the 135M's prefill +20% CPU), and a batch of
# several rows, which onnxruntime-genai lets append only once, is bounded by the scheduler
# (batch_prefill_tokens).
READ_LOGITS_BYTES = 512 * 2**20
# N-gram lookup over the conversation itself; 2 changed greedy output and was slower on prose.
NGRAM_SIZE = 3


class OrtModel:
    def __init__(self, path: Path, providers: tuple[str, ...], threads: int, draft_tokens: int = 0) -> None:
        self.path = path
        threads = threads or os.cpu_count() or 1
        self.model = og.Model(_config(path, providers, threads))
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
        # Whether the graph gives a logits row per input token (build 3) rather than the last only (2).
        self.full_logits = _declares_full_logits(path / str(genai["model"]["decoder"].get("filename", "model.onnx")))
        vocab = int(genai["model"].get("vocab_size", 0))
        self.batch_prefill_tokens = READ_LOGITS_BYTES // (4 * vocab) if self.full_logits and vocab else None
        # Speculative decoding (n-gram lookup over the sequence so far, one-row generators only).
        self.draft_tokens = draft_tokens if self.full_logits else 0
        self.speculation = (f"n-gram {NGRAM_SIZE}, up to {draft_tokens} draft tokens, for a request that runs alone"
                            if self.draft_tokens else "off" if not draft_tokens else
                            "off: the model's graph gives logits for the last token only (convert build 2 or "
                            "another builder's pruned head); `agentic-flow models pull` updates a catalog model")
        self._token_texts: dict[int, str] = {}

    @property
    def can_speculate(self) -> bool:
        return self.draft_tokens > 0

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
              guidance: Guidance | None = None, speculate: bool = False) -> Generator:
        draft = self.draft_tokens if speculate and len(rows) == 1 else 0
        return Generator(self, rows, key, max_length, guidance, draft)


def _declares_full_logits(graph: Path) -> bool:
    """The logits output's second dimension is not a fixed 1 (read from the graph's protobuf without
    loading it: the `onnx` package belongs to the convert extra only)."""
    return declared_dim(graph, "logits", 1) != 1


def _config(path: Path, providers: tuple[str, ...], threads: int) -> og.Config:
    config = og.Config(str(path))
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
    return config


class Generator:
    """One onnxruntime-genai generator over the rows of a batch (a static batch, right-padded).

    With `draft_tokens` it is a speculative one-row generator: the runtime drafts up to that many tokens
    from n-grams of the sequence so far, verifies them in one forward pass and hands the accepted ones out
    one per `step()`, as a plain generator does."""

    def __init__(self, owner: OrtModel, rows: list[list[int]], key: SearchKey, max_length: int,
                 guidance: Guidance | None = None, draft_tokens: int = 0) -> None:
        self.speculative = draft_tokens > 0
        self._chunk = owner.batch_prefill_tokens if len(rows) == 1 else None
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
        if self.speculative:
            # cooldown: after rejected drafts the runtime steps plainly for a while (measured on prose:
            # a rejected round costs a verification and a re-anchor pass for one token).
            params.set_speculative_options(ngram_size=NGRAM_SIZE, max_draft_tokens=draft_tokens, cooldown=True)
        self._generator = _create(owner.model, params, guidance is not None)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), owner.pad_id, dtype=np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        self._append(ids)
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
        self._append(np.asarray([tokens[keep:]], dtype=np.int32))
        self.length = len(tokens)

    def _append(self, ids: np.ndarray) -> None:
        if self._chunk is None:
            self._generator.append_tokens(ids)
            return
        for start in range(0, ids.shape[1], self._chunk):
            self._generator.append_tokens(ids[:, start: start + self._chunk])

    def draft_stats(self) -> tuple[int, int]:
        """(draft tokens verified, accepted) so far; (0, 0) for a plain generator."""
        if not self.speculative:
            return 0, 0
        stats = self._generator.get_speculative_stats()
        return int(stats.get("draft_tokens_evaluated", 0)), int(stats.get("draft_tokens_accepted", 0))

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
