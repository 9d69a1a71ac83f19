"""One inference process as the server holds it: spawn it, wait until it has loaded the model, talk
to it over its two pipes, stop it.  Restarting a dead one is the engine client's policy."""

from __future__ import annotations

import asyncio
import multiprocessing
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import ModelError
from .messages import Command, CountTokens, Event, LoadFailed, Ready, Shutdown


@dataclass(frozen=True)
class LaunchSpec:
    """Everything the inference process is started with (its settings travel as arguments)."""

    model_path: Path
    providers: tuple[str, ...]
    threads: int
    max_batch: int
    log_level: str = "info"
    prefix_cache_mb: int | None = None  # None: sized from the memory available (engine/memory.py)
    draft_tokens: int = 0  # speculative decoding's largest draft (engine/ort.py); 0: off
    speculate_greedy: bool = False  # greedy requests too (engine/scheduler.py Job.speculable)


class InferenceProcess:
    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection,
                 count_conn: Connection, context_length: int, speculation: str = "off") -> None:
        self.process = process
        self.conn = conn  # generation pipe: commands to the scheduler, every event back
        self.count_conn = count_conn  # count pipe: CountTokens to the count thread, its answers back
        self.context_length = context_length
        self.speculation = speculation

    @classmethod
    async def spawn(cls, spec: LaunchSpec) -> InferenceProcess:
        from . import worker

        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        count_ours, count_theirs = ctx.Pipe()
        process = ctx.Process(
            target=worker.main,
            args=(theirs, count_theirs, str(spec.model_path), spec.providers, spec.threads, spec.max_batch,
                  spec.log_level, spec.prefix_cache_mb, spec.draft_tokens, spec.speculate_greedy),
            name="agentic-flow-inference", daemon=True,
        )
        process.start()
        theirs.close()  # ours alone now: the pipe reads EOF when the process dies
        count_theirs.close()
        loop = asyncio.get_running_loop()
        # Loading takes seconds: wait in a thread so /health keeps answering.
        first = await loop.run_in_executor(None, _recv_or_eof, ours)
        if not isinstance(first, Ready):
            await loop.run_in_executor(None, process.join, 5)
            ours.close()
            count_ours.close()
            if isinstance(first, LoadFailed):
                raise ModelError(first.message)
            raise ModelError(f"the inference process exited with code {process.exitcode} while loading")
        return cls(process, ours, count_ours, first.context_length, first.speculation)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def send(self, command: Command) -> None:
        self.conn.send(command)

    def send_count(self, command: CountTokens) -> None:
        """Blocks until the count thread has read it all: call from a thread, not the event loop."""
        self.count_conn.send(command)

    async def stop(self, timeout: float = 10) -> None:
        """Ask it to stop, wait, then kill it; close our pipe ends."""
        for conn in (self.conn, self.count_conn):
            with suppress(BrokenPipeError, OSError):  # already gone
                conn.send(Shutdown())
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.close()

    def close(self) -> None:
        self.conn.close()
        self.count_conn.close()


def _recv_or_eof(conn: Connection) -> Event | None:
    try:
        event: Event = conn.recv()
        return event
    except EOFError:
        return None
