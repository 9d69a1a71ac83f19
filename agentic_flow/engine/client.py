"""The real engine as the proxy sees it: a client for the inference process (engine.worker).

Messages from the worker are read by an event-loop reader callback on the pipe and routed to the
request they belong to; sending is a small, non-blocking-in-practice pipe write.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..errors import EngineError, ModelError, PromptTooLong
from .base import ChatPrompt, Completion, EngineInfo, EngineStats, GenerationRequest

log = logging.getLogger(__name__)

_DONE = object()


class WorkerGeneration:
    def __init__(self, engine: WorkerEngine, rid: int, input_tokens: int, queue: asyncio.Queue[Any]) -> None:
        self._engine = engine
        self._rid = rid
        self._queue = queue
        self.input_tokens = input_tokens
        self.completion = Completion()
        self._finished = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, str):
                    yield item
                elif isinstance(item, Completion):
                    self.completion = item
                    self._finished = True
                    return
                else:
                    self._finished = True
                    raise item
        finally:
            if not self._finished:
                await self.aclose()

    async def aclose(self) -> None:
        if not self._finished:
            self._finished = True
            self._engine._cancel(self._rid)


class WorkerEngine:
    """Implements engine.base.Engine over an inference process."""

    def __init__(self, info: EngineInfo, process: multiprocessing.process.BaseProcess, conn: Any) -> None:
        self.info = info
        self._process = process
        self._conn = conn
        self._ids = itertools.count(1)
        self._routes: dict[int, asyncio.Queue[Any]] = {}
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._started: set[int] = set()  # generations that began and have not ended
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(conn.fileno(), self._on_readable)

    @classmethod
    async def start(cls, model_path: Path, name: str, providers: tuple[str, ...], threads: int,
                    max_batch: int, log_level: str = "info") -> WorkerEngine:
        from . import worker

        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=worker.serve, args=(theirs, str(model_path), providers, threads, max_batch, log_level),
            name="agentic-flow-inference", daemon=True,
        )
        process.start()
        theirs.close()
        loop = asyncio.get_running_loop()
        # Loading takes seconds: wait in a thread so /health keeps answering "loading".
        first = await loop.run_in_executor(None, _recv_or_eof, ours)
        if first is None or first[0] != "ready":
            process.join(timeout=5)
            message = first[1] if first else f"the inference process exited with code {process.exitcode}"
            raise ModelError(message)
        info = EngineInfo(name, str(model_path), providers, int(first[1]["context_length"]))
        return cls(info, process, ours)

    # ------------------------------------------------------------ Engine interface
    async def count_tokens(self, prompt: ChatPrompt) -> int:
        return int(await self._ask("count", _turns(prompt)))

    async def worker_stats(self) -> dict[str, int]:
        """What the inference process holds right now: batches, rows, live generations, pending."""
        return dict(await self._ask("stats"))

    async def _ask(self, kind: str, *args: Any) -> Any:
        rid = next(self._ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._replies[rid] = future
        self._send((kind, rid, *args))
        return await future

    async def generate(self, request: GenerationRequest) -> WorkerGeneration:
        rid = next(self._ids)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._routes[rid] = queue
        self._send(("generate", rid, _turns(request.prompt), request.options))
        try:
            first = await queue.get()
        except asyncio.CancelledError:
            self._cancel(rid)
            raise
        if isinstance(first, BaseException):
            self._routes.pop(rid, None)
            raise first
        self._started.add(rid)
        return WorkerGeneration(self, rid, int(first), queue)

    def stats(self) -> EngineStats:
        error = None
        if not self._process.is_alive():
            error = f"the inference process exited (code {self._process.exitcode})"
        return EngineStats(running=len(self._started), error=error, extra={"worker_pid": self._process.pid})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._conn.fileno())
        try:
            self._conn.send(("shutdown",))
        except (BrokenPipeError, OSError):
            pass
        await self._loop.run_in_executor(None, self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._fail_all(EngineError("the engine was shut down"))

    # ------------------------------------------------------------ plumbing
    def _send(self, msg: tuple[Any, ...]) -> None:
        if self._closed:
            raise EngineError("the engine is shut down")
        try:
            self._conn.send(msg)
        except (BrokenPipeError, OSError) as exc:
            raise EngineError(f"the inference process is gone: {exc}") from None

    def _cancel(self, rid: int) -> None:
        self._started.discard(rid)
        if self._routes.pop(rid, None) is not None:
            if not self._closed:
                try:
                    self._conn.send(("cancel", rid))
                except (BrokenPipeError, OSError):
                    pass

    def _on_readable(self) -> None:
        # One message per callback: the reader is level-triggered, so the loop calls again while data
        # remains.  (Connection.poll() builds a selector on every call: too slow for once per token.)
        try:
            self._dispatch(self._conn.recv())
        except (EOFError, OSError):
            self._loop.remove_reader(self._conn.fileno())
            self._closed = True
            log.error("the inference process exited (code %s)", self._process.exitcode)
            self._fail_all(EngineError("the inference process exited unexpectedly"))

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "deltas":
            for rid, text in msg[1]:
                queue = self._routes.get(rid)
                if queue is not None:
                    queue.put_nowait(text)
        elif kind == "started":
            self._put(msg[1], msg[2])
        elif kind == "done":
            self._started.discard(msg[1])
            self._put(msg[1], Completion(msg[2], msg[3], msg[4]), final=True)
        elif kind == "error":  # before the start (prompt too long) or mid-generation (a failed step)
            self._started.discard(msg[1])
            self._put(msg[1], _error(msg[2], msg[3], msg[4]), final=True)
        elif kind in ("count", "stats"):
            future = self._replies.pop(msg[1], None)
            if future is not None and not future.done():
                future.set_result(msg[2])

    def _put(self, rid: int, item: Any, final: bool = False) -> None:
        queue = self._routes.pop(rid, None) if final else self._routes.get(rid)
        if queue is not None:
            queue.put_nowait(item)

    def _fail_all(self, exc: Exception) -> None:
        for queue in self._routes.values():
            queue.put_nowait(exc)
        self._routes.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(exc)
        self._replies.clear()
        self._started.clear()


def _turns(prompt: ChatPrompt) -> list[tuple[str, str]]:
    return [(t.role, t.content) for t in prompt.turns]


def _error(kind: str, message: str, data: dict[str, int]) -> Exception:
    if kind == "prompt_too_long":
        return PromptTooLong(data["prompt_tokens"], data["max_tokens"], data["context_length"])
    return EngineError(message)


def _recv_or_eof(conn: Any) -> tuple[Any, ...] | None:
    try:
        return conn.recv()  # type: ignore[no-any-return]
    except EOFError:
        return None
