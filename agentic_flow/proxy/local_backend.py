"""The local backend: the model on onnxruntime-genai, through the engine's narrow interface.

Both APIs take one path: the request is decoded into the neutral `chat.Request` (anthropic.convert,
openai.serve_request), planned (serving.planning: sampling and the tool-use grammars), generated, and
read as neutral events (serving.generation); only the last step, the encoder, belongs to the route's
API (anthropic.sse, openai.serve_response).  A request for several choices (OpenAI's n) runs one
generation per choice (serving.choices); the Messages API always asks for one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import chat
from ..anthropic import sse
from ..anthropic.convert import to_prompt, to_request
from ..anthropic.types import CountTokensRequest, MessagesRequest
from ..engine.base import MAX_BATCHES, Engine, Generation, GrammarRefused
from ..errors import InvalidRequestError, NotFound, NotReady
from ..models.catalog import Sampling, output_limit
from ..openai import serve_request, serve_response
from ..openai import types as oai
from ..openai.errors import openai_error_body, openai_error_from_anthropic
from ..openai.sse import data_frame
from ..serving.choices import choice_request, collected, merged, started
from ..serving.generation import PING_INTERVAL_S, GenerationStream, engine_options, peeked
from ..serving.planning import generation_request, tool_syntax
from .backend import Answer, BackendHealth, Job, Stream, TokenCount
from .health import HealthStatus
from .tool_policy import OFF, ToolPolicy

Events = AsyncGenerator[chat.Event, None]


@dataclass(frozen=True)
class Encoder:
    """One API's last step: whole answers (one per choice) as its body, the choices' events as its
    frames, an in-stream error."""

    message: Callable[[Sequence[chat.Answer]], dict[str, Any]]
    frames: Callable[[Sequence[Events]], AsyncGenerator[bytes, None]]
    error_frame: Callable[[str, str], bytes]


def anthropic_encoder(model: str) -> Encoder:
    """The Messages API has one choice per request (to_request never asks for more)."""
    message_id = sse.new_message_id()
    return Encoder(message=lambda answers: sse.message_json(message_id, model, answers[0]),
                   frames=lambda streams: sse.message_events(message_id, model, streams[0]),
                   error_frame=sse.error_event)


def openai_encoder(req: oai.ChatCompletionRequest, fingerprint: str | None = None) -> Encoder:
    completion_id = serve_response.new_completion_id()

    def message(answers: Sequence[chat.Answer]) -> dict[str, Any]:
        return serve_response.to_chat_completion(answers, completion_id=completion_id, model=req.model,
                                                 system_fingerprint=fingerprint, logprobs=bool(req.logprobs))

    def frames(streams: Sequence[Events]) -> AsyncGenerator[bytes, None]:
        return serve_response.chat_stream(merged(streams), model=req.model, include_usage=req.include_usage,
                                          completion_id=completion_id, system_fingerprint=fingerprint,
                                          choices=len(streams))

    def error_frame(error_type: str, text: str) -> bytes:
        return data_frame(openai_error_body(text, openai_error_from_anthropic(error_type)))

    return Encoder(message, frames, error_frame)


@functools.cache
def build_id(model_path: str) -> str:
    """What identifies a model build: its folder and each file's name, size and modification time
    (read once; a rebuilt model is served by a new proxy)."""
    folder = Path(model_path)
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    stamps = (f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file())
    return "|".join([str(folder), *stamps])


@dataclass
class LocalBackend:
    model_name: str
    model_path: str
    providers: tuple[str, ...]
    max_batch: int = 1
    # Installed models this proxy does not serve: asking for one by name is an error, while any
    # other name (claude-sonnet-4-5, ...) is served by the loaded model and echoed back.
    other_models: frozenset[str] = frozenset()
    engine: Engine | None = None  # None while the model loads
    # The loaded model's published sampling, for requests that set none (catalog models only).
    default_sampling: Sampling | None = None
    # A stream whose engine has been silent this long (a long prefill) gets a ping event, so no
    # client's first-byte or idle watchdog gives up on it.
    ping_interval: float = PING_INTERVAL_S
    code_blocks: bool = False  # tools' code fields are written as fenced blocks (tooluse/codeblocks.py)
    repetition_guard: bool = True  # a reply that repeats itself is cut (engine/repetition.py)
    # Which of a request's tools the loaded model is offered (proxy/tool_policy.py; catalog models: their
    # entry's list).  Applied in `prompt`, for generation and count_tokens alike.
    tool_policy: ToolPolicy = OFF
    load_error: str | None = None

    @property
    def capacity(self) -> int:
        return self.max_batch * MAX_BATCHES  # as many as the inference process steps at once

    def ready(self) -> Engine:
        if self.engine is None:
            raise NotReady("the model is still loading; retry in a moment")
        return self.engine

    def check_model_name(self, requested: str) -> None:
        if requested in self.other_models:
            raise NotFound(
                f"model: {requested} is installed but this proxy serves {self.model_name}; "
                f"start it with --model {requested} to use it"
            )

    def messages(self, body: Mapping[str, Any], req: MessagesRequest) -> Job:
        self.check_model_name(req.model)
        return self._job(to_request(req), anthropic_encoder(req.model))

    def check_chat_completions(self) -> None:
        pass  # served

    def chat_completions(self, req: oai.ChatCompletionRequest) -> Job:
        # Chat Completions may leave the length open: the engine clamps a limit beyond the context,
        # so the whole context is the honest "no limit" (while loading, the answer is 503 anyway).
        room = self.engine.info.context_length if self.engine is not None else serve_request.DEFAULT_MAX_TOKENS
        neutral = serve_request.to_chat_request(req, default_max_tokens=room)
        self.check_model_name(neutral.model)
        info = self.engine.info if self.engine is not None else None
        fingerprint = None if info is None else serve_response.fingerprint(info.model_name, build_id(info.model_path))
        return self._job(neutral, openai_encoder(req, fingerprint))

    def prompt(self, prompt: chat.Prompt) -> chat.Prompt:
        """What the model reads of a request: its tools narrowed by the policy, in the tool syntax."""
        return tool_syntax(self.tool_policy.apply(prompt), self.code_blocks)

    def _job(self, req: chat.Request, encoder: Encoder) -> Job:
        req = replace(req, prompt=self.prompt(req.prompt))
        planned = generation_request(req, self.default_sampling)  # a 400 for a tool_choice naming no tool
        engine = self.ready()

        async def run() -> Answer:
            first = replace(planned, options=engine_options(planned.options))
            generations = await started(engine, [choice_request(first, i) for i in range(req.choices)])
            try:
                if req.output is not None:
                    generations = await self._peeked(generations, req.output)
                replies = [GenerationStream(g, req.prompt.tools, planned.options, self.ping_interval,
                                            self.repetition_guard) for g in generations]
                if req.stream:
                    # Closing the frames closes the events, which cancels the generations.
                    return Stream(encoder.frames([r.events() for r in replies]), encoder.error_frame)
                return encoder.message(await collected([r.events(catch=False) for r in replies]))
            finally:
                if not req.stream:
                    for generation in generations:
                        await generation.aclose()

        return run

    @staticmethod
    async def _peeked(generations: list[Generation], output: chat.OutputFormat) -> list[Generation]:
        try:
            return [await peeked(g) for g in generations]
        except GrammarRefused as exc:
            for generation in generations:
                await generation.aclose()
            # No looser grammar for a structured reply: free text would be passed off as conforming.
            raise InvalidRequestError(f"{output.path}: the grammar engine (llguidance) refused "
                                      f"this schema: {str(exc)[:500]}") from None

    async def count_tokens(self, body: Mapping[str, Any], req: CountTokensRequest) -> TokenCount:
        self.check_model_name(req.model)
        engine = self.ready()
        return TokenCount(await engine.count_tokens(self.prompt(to_prompt(req))))

    def model_entry(self) -> dict[str, Any]:
        info = self.ready().info
        return {
            "type": "model",
            "id": info.model_name,
            "display_name": f"{info.model_name} (local, onnxruntime-genai)",
            "created_at": info.created_at,
            # The window and output limit, in the fields of Anthropic's model entries (gateway clients read
            # them): the loaded model's context, and the output limit agents are told (catalog.output_limit).
            "max_input_tokens": info.context_length,
            "max_tokens": output_limit(info.context_length),
        }

    def health(self) -> BackendHealth:
        stats = self.engine.stats() if self.engine is not None else None
        error = self.load_error or (stats.error if stats is not None else None)
        if error:
            status = HealthStatus.ERROR
        elif stats is None:
            status = HealthStatus.LOADING
        elif stats.state == "fatal":  # it kept dying: the proxy is exiting
            status = HealthStatus.ERROR
        else:  # the engine says whether its inference process is up or being restarted
            status = HealthStatus(stats.state)
        return BackendHealth(status=status, model=self.model_name, model_path=self.model_path,
                             providers=self.providers, loaded=self.engine is not None, error=error,
                             speculation=self.engine.info.speculation if self.engine is not None else None)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
