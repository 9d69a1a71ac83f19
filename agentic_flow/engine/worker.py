"""The inference process: owns the model, runs the scheduler's loop, and counts tokens on the side.

Why a process: onnxruntime-genai generator calls hold the GIL for the whole native call (a long
prefill stalls a thread-pool-based server for seconds, and two generators on two threads run no
faster than one).  In a process of its own, inference never blocks the server's event loop, and one
scheduler can batch concurrent requests.  The messages it speaks are in `engine.messages`.

Two pipes: the generation pipe is read by the decode loop between steps; the count pipe by a thread of
its own, so a count never waits for a step and a step never waits for a count to be read and
tokenized (a 25 MB count used to stall every stream for seconds).  Every request's failure is sent
back as a `Failed` event: nothing a client sends ends either loop.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import threading
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ..errors import AgenticFlowError, InvalidRequestError
from . import memory
from .messages import (
    Cancel,
    Command,
    Counted,
    CountTokens,
    Failed,
    Generate,
    GetStats,
    LoadFailed,
    Ready,
    Shutdown,
    StatsReply,
)
from .scheduler import PREFIX_ENTRIES, Scheduler

if TYPE_CHECKING:
    from .ort import OrtModel

log = logging.getLogger(__name__)

# From idle, how long to wait for more requests before starting a batch (adds at most this to TTFT).
GATHER_MS = 3
# How long the process must have been idle before it builds the spare generator (engine/spare.py).
SPARE_AFTER_IDLE_MS = 100


def handle(scheduler: Scheduler, conn: Connection, command: Command) -> bool:
    """Apply one command; False when the process should stop."""
    if isinstance(command, Generate):
        scheduler.submit(command)
    elif isinstance(command, Cancel):
        scheduler.cancel(command.rid)
    elif isinstance(command, GetStats):
        conn.send(StatsReply(command.rid, scheduler.stats()))
    elif isinstance(command, Shutdown):
        return False
    else:
        log.error("ignoring an unexpected command on the generation pipe: %r", type(command).__name__)
    return True


def run(scheduler: Scheduler, conn: Connection) -> None:
    """Read commands (never blocking while work is running), admit, step every batch, repeat."""
    # One poll object for the life of the loop: Connection.poll() builds a selector per call,
    # which costs more than a decode step's bookkeeping.
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    while True:
        busy = scheduler.busy
        if not busy and not scheduler.pending and not poller.poll(SPARE_AFTER_IDLE_MS):
            # Quiet for a while: pay for the next request's spare generator now.  Not at once: a
            # request (or Shutdown) that follows the last one closely would wait for the build.
            scheduler.idle()
        # Requests still waiting when the last batch ended (more search options than MAX_BATCHES at
        # once) are admitted below: do not block for a command first.
        if poller.poll(0 if busy or scheduler.pending else None):
            # From idle, wait a moment longer for company: clients that start together arrive a
            # few ms apart, and one batch for all of them beats starting one and rebuilding.
            linger = 0 if busy else GATHER_MS
            while True:
                if not handle(scheduler, conn, conn.recv()):
                    return
                if not poller.poll(linger if scheduler.pending else 0):
                    break
        scheduler.admit()
        if scheduler.busy:
            scheduler.step()


def warm_up(model: OrtModel) -> None:
    """One tiny greedy generation before `Ready`: the first runs of a session (a prefill, a decode
    step) cost more than later ones (+5% on the 135M, +24% on the 1.5B), and the first request should
    not pay that."""
    from .base import Prompt, Turn
    from .search import GREEDY

    ids = model.encode(model.render(Prompt((Turn("user", "Hi"),))))
    generator = model.start([ids], GREEDY, len(ids) + 2)
    generator.step()
    generator.close()


def count_tokens(model: OrtModel, command: CountTokens) -> Counted | Failed:
    try:
        return Counted(command.rid, model.count(command.prompt))
    except Exception as exc:  # template and tokenizer errors belong to this request only
        log.warning("count_tokens could not read a prompt: %s: %s", type(exc).__name__, exc)
        return Failed(command.rid, InvalidRequestError(f"the prompt could not be rendered or tokenized: {exc}"))


def count_loop(model: OrtModel, conn: Connection) -> None:
    """The count thread: answer CountTokens until the pipe closes or a Shutdown arrives."""
    try:
        while isinstance(command := conn.recv(), CountTokens):
            conn.send(count_tokens(model, command))
    except (EOFError, OSError):
        pass  # the server went away


def serve(conn: Connection, count_conn: Connection, model_path: str, providers: tuple[str, ...],
          threads: int, max_batch: int, log_level: str = "INFO", prefix_cache_mb: int | None = None,
          draft_tokens: int = 0, speculate_greedy: bool = False) -> None:
    """Entry point of the inference process."""
    # Ctrl-C reaches the whole process group; the server decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s worker: %(message)s")
    from .ort import OrtModel

    try:
        model = OrtModel(Path(model_path), providers, threads, draft_tokens)
    except AgenticFlowError as exc:
        conn.send(LoadFailed(str(exc)))
        return
    except Exception as exc:  # the library's own load errors: report them, not a traceback
        conn.send(LoadFailed(f"loading the model from {model_path} failed: {exc}"))
        return
    try:
        warm_up(model)
    except Exception:  # a model that cannot run a tiny prompt will fail its requests, and say why there
        log.warning("the warm-up generation failed", exc_info=True)
    scheduler = Scheduler(model, conn, max_batch, prefix_budget_tokens(Path(model_path), model, prefix_cache_mb),
                          speculate_greedy=speculate_greedy)
    scheduler.idle()  # the first request finds the spare generator ready, whenever it arrives
    threading.Thread(target=count_loop, args=(model, count_conn), name="count", daemon=True).start()
    conn.send(Ready(model.context_length, model.speculation))
    with suppress(EOFError, BrokenPipeError):  # the server went away: nothing left to serve
        run(scheduler, conn)


def prefix_budget_tokens(path: Path, model: OrtModel, override_mb: int | None) -> int:
    """The prefix cache's budget, from the memory available now (or the setting); logged."""
    per_token = memory.kv_bytes_per_token(json.loads((path / "genai_config.json").read_text()))
    budget = memory.prefix_budget(context_length=model.context_length, max_entries=PREFIX_ENTRIES,
                                  bytes_per_token=per_token, available_bytes=psutil.virtual_memory().available,
                                  override_mb=override_mb)
    log.info("prefix cache: up to %d KV tokens (%s)", budget.tokens, budget.reason)
    return budget.tokens


def main(conn: Connection, count_conn: Connection, model_path: str, providers: tuple[str, ...],
         threads: int, max_batch: int, log_level: str = "INFO", prefix_cache_mb: int | None = None,
         draft_tokens: int = 0, speculate_greedy: bool = False) -> None:
    """`serve`, then exit at once: an orderly interpreter teardown (onnxruntime's arenas and threads,
    every module) took 0.1-0.6 s that the proxy's shutdown, and so every one-shot CLI run, waited for.
    Nothing here needs it: the pipes close with the process and the log is flushed first."""
    serve(conn, count_conn, model_path, providers, threads, max_batch, log_level, prefix_cache_mb, draft_tokens,
          speculate_greedy)
    logging.shutdown()
    os._exit(0)
