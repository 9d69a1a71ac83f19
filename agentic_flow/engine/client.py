"""The real engine as the proxy sees it: a client for the inference process (engine.worker).

Events from the process are read by event-loop reader callbacks on its pipes and routed to the
request they belong to; sending a command is a small, non-blocking-in-practice pipe write (a count's
prompt can be megabytes: it is written from a thread).

Supervision: when the process dies (kill -9, the OOM killer, a native crash), the pipes read EOF.
Every request in flight gets an InferenceDied, the engine reports "restarting" while a new process
loads after a backoff, and serves again.  A request none of whose text has been passed on yet (before
its first delta; a `buffered` one at any point; a count) is re-submitted once to the new process: its
caller sees only the restart's time in its latency.  A request that dies a second time, or whose text
was already passed on, fails with the InferenceDied (the proxy answers 500 before a stream, or an
`error` event inside one).  Requests that arrive while the new process loads are refused (Overloaded,
529: clients retry those).  If the process dies MAX_DEATHS times within DEATH_WINDOW_S, the engine
gives up, reports "fatal" and calls `on_fatal(reason)`: the proxy then exits non-zero for its
supervisor to see.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path

from ..chat import TokenLogprob
from ..errors import AgenticFlowError, EngineError, InferenceDied, Overloaded
from .base import Completion, EngineInfo, EngineState, EngineStats, GenerationRequest, Prompt
from .messages import (
    Cancel,
    Counted,
    CountTokens,
    Deltas,
    Event,
    Failed,
    Finished,
    Generate,
    GetStats,
    Started,
    StatsReply,
    WorkerStats,
)
from .process import InferenceProcess, LaunchSpec

log = logging.getLogger(__name__)

MAX_DEATHS = 5  # deaths within DEATH_WINDOW_S before the engine gives up
DEATH_WINDOW_S = 60.0
BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 4.0)  # wait before the n-th restart within the window

Item = Started | str | TokenLogprob | Completion | Exception  # what a generation's queue carries


class WorkerGeneration:
    def __init__(self, engine: WorkerEngine, rid: int, started: Started, queue: asyncio.Queue[Item],
                 request: GenerationRequest, rerun: bool) -> None:
        self._engine = engine
        self._rid = rid
        self._queue = queue
        self._request = request
        self._rerun = rerun  # re-submitted once already (before its start): never again
        self._passed_on = False  # a delta has reached the caller: a re-run would show text twice
        self.input_tokens = started.input_tokens
        self.expected_cached_tokens = started.cached_tokens
        self.completion = Completion()
        self.logprobs: list[TokenLogprob] = []
        self._finished = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        # A buffered generation holds its text until the end (its caller shows nothing before), so that
        # a death at any point re-runs it unseen.  Its cost: the proxy's own early stops (a guided
        # request's stop sequence in text, an overlong call) are seen only once the engine has finished.
        held: list[str] = []
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, TokenLogprob):
                    self.logprobs.append(item)
                elif isinstance(item, str):
                    if self._request.buffered:
                        held.append(item)
                    else:
                        self._passed_on = True
                        yield item
                elif isinstance(item, Started):  # a re-run's start: the counts of the new process
                    self.input_tokens = item.input_tokens
                    self.expected_cached_tokens = item.cached_tokens
                elif isinstance(item, Completion):
                    self.completion = item
                    self._finished = True
                    for text in held:
                        yield text
                    return
                elif isinstance(item, InferenceDied) and not self._rerun and not self._passed_on:
                    self._rerun = True
                    held.clear()
                    self.logprobs.clear()
                    self._rid, self._queue = await self._engine._rerun(self._request)
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
    """Implements engine.base.Engine over an inference process, restarting it when it dies."""

    def __init__(self, info: EngineInfo, spec: LaunchSpec, proc: InferenceProcess,
                 on_fatal: Callable[[str], None] | None = None) -> None:
        self.info = info
        self._spec = spec
        self._proc: InferenceProcess | None = None
        self._on_fatal = on_fatal
        self._ids = itertools.count(1)
        self._routes: dict[int, asyncio.Queue[Item]] = {}
        self._replies: dict[int, asyncio.Future[object]] = {}
        self._started: set[int] = set()  # generations that began and have not ended
        self._state: EngineState = "ok"
        self._fatal: str | None = None
        self._deaths: deque[float] = deque()  # times of recent deaths, within DEATH_WINDOW_S
        self._restarts = 0
        self._restarter: asyncio.Task[None] | None = None
        self._back = asyncio.Event()  # set while a process serves, or once the engine gave up or closed
        self._back.set()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        # One thread writes counts, in order: a large prompt must not block the event loop.
        self._count_writer = ThreadPoolExecutor(1, thread_name_prefix="count-writer")
        self._attach(proc)

    @classmethod
    async def start(cls, model_path: Path, name: str, providers: tuple[str, ...], threads: int,
                    max_batch: int, log_level: str = "info",
                    on_fatal: Callable[[str], None] | None = None, prefix_cache_mb: int | None = None,
                    draft_tokens: int = 0, speculate_greedy: bool = False) -> WorkerEngine:
        spec = LaunchSpec(model_path, providers, threads, max_batch, log_level, prefix_cache_mb, draft_tokens,
                          speculate_greedy)
        proc = await InferenceProcess.spawn(spec)
        info = EngineInfo(name, str(model_path), providers, proc.context_length, speculation=proc.speculation)
        return cls(info, spec, proc, on_fatal)

    # ------------------------------------------------------------ Engine interface
    async def count_tokens(self, prompt: Prompt) -> int:
        proc = self._serving()
        try:
            result = await self._count(proc, prompt)
        except InferenceDied as exc:  # nothing was answered yet: count again on the new process
            log.warning("re-running a count after %s", exc)
            result = await self._count(await self._serving_again(), prompt)
        assert isinstance(result, int)
        return result

    async def _count(self, proc: InferenceProcess, prompt: Prompt) -> object:
        rid, future = self._expect_reply()
        with suppress(BrokenPipeError, OSError):  # the process died: its death fails this future
            await self._loop.run_in_executor(self._count_writer, proc.send_count, CountTokens(rid, prompt))
        return await future

    async def worker_stats(self) -> dict[str, int]:
        """What the inference process holds right now: batches, rows, live generations, pending."""
        proc = self._serving()
        rid, future = self._expect_reply()
        self._send(proc, GetStats(rid))
        result = await future
        assert isinstance(result, WorkerStats)
        return dict(vars(result))

    async def generate(self, request: GenerationRequest) -> WorkerGeneration:
        rid, queue = self._submit(self._serving(), request)
        rerun = False
        while True:
            try:
                first = await queue.get()
            except asyncio.CancelledError:
                self._cancel(rid)
                raise
            if isinstance(first, Started):
                break
            self._routes.pop(rid, None)
            if isinstance(first, InferenceDied) and not rerun:  # it died before the start: once more
                rerun = True
                rid, queue = await self._rerun(request)
                continue
            raise first if isinstance(first, Exception) else EngineError(f"unexpected {first!r} before the start")
        self._started.add(rid)
        return WorkerGeneration(self, rid, first, queue, request, rerun)

    def stats(self) -> EngineStats:
        pid = self._proc.pid if self._proc is not None else None
        return EngineStats(running=len(self._started), error=self._fatal, state=self._state,
                           extra={"worker_pid": pid, "restarts": self._restarts})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._restarter is not None:
            self._restarter.cancel()
        proc, self._proc = self._proc, None
        if proc is not None:
            self._detach(proc)
            await proc.stop()
        self._count_writer.shutdown(wait=False, cancel_futures=True)
        self._fail_all(EngineError("the engine was shut down"))
        self._back.set()  # re-runs waiting for a new process find the engine closed

    # ------------------------------------------------------------ sending
    def _serving(self) -> InferenceProcess:
        """The live process, or an error the proxy can answer with."""
        if self._closed:
            raise EngineError("the engine is shut down")
        if self._state == "fatal":
            raise EngineError(f"inference is unavailable: {self._fatal}")
        if self._proc is None:  # restarting
            raise Overloaded("the inference process is restarting after a failure; retry in a few seconds")
        return self._proc

    async def _serving_again(self) -> InferenceProcess:
        """The new process once the one that died has been replaced (or the error of a fatal engine)."""
        await self._back.wait()
        return self._serving()

    def _submit(self, proc: InferenceProcess, request: GenerationRequest) -> tuple[int, asyncio.Queue[Item]]:
        rid = next(self._ids)
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self._routes[rid] = queue
        self._send(proc, Generate(rid, request.prompt, request.options))
        return rid, queue

    async def _rerun(self, request: GenerationRequest) -> tuple[int, asyncio.Queue[Item]]:
        """Re-submit a request the dead process took with it, once the new one serves."""
        log.warning("re-running a request the dead inference process had not answered yet")
        rid, queue = self._submit(await self._serving_again(), request)
        self._started.add(rid)
        return rid, queue

    def _send(self, proc: InferenceProcess, command: Generate | Cancel | GetStats) -> None:
        # The process died: the EOF on its pipe fails every request in flight, this one too.
        with suppress(BrokenPipeError, OSError):
            proc.send(command)

    def _expect_reply(self) -> tuple[int, asyncio.Future[object]]:
        rid = next(self._ids)
        future: asyncio.Future[object] = self._loop.create_future()
        self._replies[rid] = future
        return rid, future

    def _cancel(self, rid: int) -> None:
        self._started.discard(rid)
        if self._routes.pop(rid, None) is not None and self._proc is not None:
            self._send(self._proc, Cancel(rid))

    # ------------------------------------------------------------ receiving
    def _attach(self, proc: InferenceProcess) -> None:
        self._proc = proc
        for conn in (proc.conn, proc.count_conn):
            self._loop.add_reader(conn.fileno(), self._on_readable, proc, conn)

    def _detach(self, proc: InferenceProcess) -> None:
        for conn in (proc.conn, proc.count_conn):
            if not conn.closed:
                self._loop.remove_reader(conn.fileno())

    def _on_readable(self, proc: InferenceProcess, conn: Connection) -> None:
        # One message per callback: the reader is level-triggered, so the loop calls again while data
        # remains.  (Connection.poll() builds a selector on every call: too slow for once per token.)
        try:
            event = conn.recv()
        except (EOFError, OSError):
            self._on_death(proc)
            return
        self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Deltas):
            for scored in event.scores:  # before the text: a token's score comes before what it adds
                if (queue := self._routes.get(scored.rid)) is not None:
                    queue.put_nowait(scored.score)
            for rid, text in event.items:
                queue = self._routes.get(rid)
                if queue is not None:
                    queue.put_nowait(text)
        elif isinstance(event, Started):
            self._put(event.rid, event)
        elif isinstance(event, Finished):
            self._started.discard(event.rid)
            self._put(event.rid, event.completion, final=True)
        elif isinstance(event, Failed):  # before the start, mid-generation, or a count
            self._started.discard(event.rid)
            self._put(event.rid, event.error, final=True)
            self._reply(event.rid, event.error)
        elif isinstance(event, Counted):
            self._reply(event.rid, event.input_tokens)
        elif isinstance(event, StatsReply):
            self._reply(event.rid, event.stats)
        else:
            log.error("ignoring an unexpected event from the inference process: %r", type(event).__name__)

    def _put(self, rid: int, item: Item, final: bool = False) -> None:
        queue = self._routes.pop(rid, None) if final else self._routes.get(rid)
        if queue is not None:
            queue.put_nowait(item)

    def _reply(self, rid: int, value: object) -> None:
        future = self._replies.pop(rid, None)
        if future is None or future.done():
            return
        if isinstance(value, Exception):
            future.set_exception(value)
        else:
            future.set_result(value)

    def _fail_all(self, exc: Exception) -> None:
        for queue in self._routes.values():
            queue.put_nowait(exc)
        self._routes.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(exc)
        self._replies.clear()
        self._started.clear()

    # ------------------------------------------------------------ supervision
    def _on_death(self, proc: InferenceProcess) -> None:
        if proc is not self._proc or self._closed:
            return
        self._detach(proc)
        proc.process.join(timeout=1)  # it is gone (EOF): reap it for its exit code
        proc.close()
        self._proc = None
        self._back.clear()
        reason = f"the inference process died (exit code {proc.exitcode})"
        log.error("%s; %d requests in flight (re-run once if none of their answer was sent)", reason,
                  len(self._routes) + len(self._replies))
        self._fail_all(InferenceDied(f"{reason}; it is being restarted"))
        self._died(reason)

    def _died(self, reason: str) -> None:
        """Count a death within the window; restart after the backoff, or give up."""
        now = time.monotonic()
        self._deaths.append(now)
        while now - self._deaths[0] > DEATH_WINDOW_S:
            self._deaths.popleft()
        if len(self._deaths) >= MAX_DEATHS:
            self._give_up(f"{reason}; {len(self._deaths)} failures within {DEATH_WINDOW_S:.0f} s")
            return
        self._state = "restarting"
        delay = BACKOFF_S[min(len(self._deaths), len(BACKOFF_S)) - 1]
        self._restarter = self._loop.create_task(self._restart(delay))

    async def _restart(self, delay: float) -> None:
        await asyncio.sleep(delay)
        started = time.monotonic()
        try:
            proc = await InferenceProcess.spawn(self._spec)
        except AgenticFlowError as exc:  # loading failed: one more failure, by the same rule
            log.error("restarting the inference process failed: %s", exc)
            self._died(f"the inference process could not be restarted: {exc}")
            return
        if self._closed:
            await proc.stop()
            return
        self._attach(proc)
        self._state = "ok"
        self._back.set()
        self._restarts += 1
        log.info("the inference process is back (pid %s, loaded in %.1f s)", proc.pid, time.monotonic() - started)

    def _give_up(self, reason: str) -> None:
        self._state = "fatal"
        self._fatal = reason
        self._back.set()  # re-runs waiting for a new process get the fatal error
        log.critical("giving up: %s", reason)
        if self._on_fatal is not None:
            self._on_fatal(reason)
