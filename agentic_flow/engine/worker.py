"""The inference process: owns the model and schedules every generation.

Why a process: onnxruntime-genai generator calls hold the GIL for the whole native call (a long
prefill stalls a thread-pool-based server for seconds, and two generators on two threads run no
faster than one).  In a process of its own, inference never blocks the server's event loop, and one
scheduler can batch concurrent requests.

Scheduling: requests with the same generator-wide search options share one batched generator
(up to `max_batch` rows).  onnxruntime-genai batches statically, so when a request arrives while a
batch is running we may rebuild the batch from every live row's tokens so far (prompt + generated)
plus the newcomer.  Re-reading tokens is not free, so a small cost model decides: merge when the
extra prefill costs less than the steps saved by not running two batches side by side; otherwise the
newcomer starts a batch of its own (up to `MAX_GROUPS`, stepped in turn) or waits.  The same model
decides whether to rebuild a batch without its finished or cancelled rows.

Wire protocol (tuples over a multiprocessing Connection):
  in:  ("generate", rid, turns, options) | ("count", rid, turns) | ("cancel", rid) | ("stats", rid)
       | ("shutdown",)
  out: ("ready", info) | ("fatal", message) | ("started", rid, input_tokens)
       | ("error", rid, kind, message, data) | ("deltas", [(rid, text), ...])
       | ("done", rid, stop_reason, stop_sequence, output_tokens) | ("count", rid, n)
       | ("stats", rid, {batches, rows, generations, pending})
"""

from __future__ import annotations

import logging
import select
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import AgenticFlowError
from .base import ChatPrompt, ChatTurn, SamplingOptions
from .stops import StopMatcher

log = logging.getLogger(__name__)

MAX_GROUPS = 2
# The cost model, in units of one single-row decode step, measured on the default model on 2 cores
# (docs/architecture.md): reading one prompt token costs ~0.4 of a step (prefill is compute-bound and
# padded to the longest row), and each extra row of a batch adds ~0.45 of a step.
PREFILL_TOKEN_STEPS = 0.4
EXTRA_ROW_STEPS = 0.45
# Prefix reuse: agents and Claude Code resend the same long system prompt and history with every
# turn, so a finished one-row generator is kept (up to PREFIX_ENTRIES) and the next request that
# shares a long enough prefix continues it after rewinding, instead of reading it all again.
# Only prompts this long are worth it, and they get HEADROOM more KV room so a longer next turn fits
# (allocating KV costs TTFT: measured +10-30 ms for 2k tokens, +100-190 ms for 8k).
# From idle, how long to wait for more requests before starting a batch (adds at most this to TTFT).
GATHER_MS = 3
PREFIX_MIN_TOKENS = 256
PREFIX_HEADROOM = 1024
PREFIX_ENTRIES = 2


@dataclass
class Job:
    rid: int
    prompt_ids: list[int]
    options: SamplingOptions
    key: Any  # ort.SearchKey
    decoder: Any  # og.TokenizerStream
    stops: StopMatcher
    generated: list[int] = field(default_factory=list)
    finished: bool = False

    @property
    def tokens(self) -> list[int]:
        return self.prompt_ids + self.generated

    @property
    def remaining(self) -> int:
        return self.options.max_tokens - len(self.generated)


@dataclass
class CachedPrefix:
    tokens: list[int]  # what the generator's KV cache holds
    batch: Any  # ort.Batch, one row
    key: Any  # ort.SearchKey


@dataclass
class Group:
    batch: Any  # ort.Batch
    rows: list[Job]

    @property
    def live(self) -> list[Job]:
        return [j for j in self.rows if not j.finished]


class Scheduler:
    def __init__(self, model: Any, conn: Connection, max_batch: int) -> None:
        self.model = model
        self.conn = conn
        self.max_batch = max_batch
        self.pending: deque[Job] = deque()
        self.groups: list[Group] = []
        self.jobs: dict[int, Job] = {}
        self.deltas: list[tuple[int, str]] = []
        self.prefixes: list[CachedPrefix] = []
        self.prefix_hits = 0
        self.prefix_tokens = 0

    # ------------------------------------------------------------ messages
    def handle(self, msg: tuple[Any, ...]) -> bool:
        kind = msg[0]
        if kind == "generate":
            self.submit(msg[1], msg[2], msg[3])
        elif kind == "count":
            ids = self.model.encode(self.model.render(_prompt(msg[2])))
            self.conn.send(("count", msg[1], len(ids)))
        elif kind == "cancel":
            self.cancel(msg[1])
        elif kind == "stats":
            stats = {"batches": len(self.groups), "rows": sum(len(g.rows) for g in self.groups),
                     "generations": len(self.jobs), "pending": len(self.pending),
                     "prefix_entries": len(self.prefixes), "prefix_hits": self.prefix_hits,
                     "prefix_tokens": self.prefix_tokens}
            self.conn.send(("stats", msg[1], stats))
        elif kind == "shutdown":
            return False
        return True

    def submit(self, rid: int, turns: list[tuple[str, str]], options: SamplingOptions) -> None:
        from .ort import search_key

        try:
            ids = self.model.encode(self.model.render(_prompt(turns)))
        except Exception as exc:  # a template or tokenizer failure belongs to this request only
            log.exception("rendering the prompt failed")
            self.conn.send(("error", rid, "engine", f"could not render the prompt: {exc}", {}))
            return
        context = self.model.context_length
        if len(ids) >= context:
            data = {"prompt_tokens": len(ids), "max_tokens": options.max_tokens, "context_length": context}
            self.conn.send(("error", rid, "prompt_too_long", "", data))
            return
        if len(ids) + options.max_tokens > context:
            # Clients size max_tokens for large cloud models (Claude Code asks for 32000): rather than
            # refuse, generate up to the end of the context and report max_tokens if it is reached.
            options = replace(options, max_tokens=context - len(ids))
        key = search_key(options.temperature, options.top_p, options.top_k, options.seed)
        job = Job(rid, ids, options, key, self.model.decoder(), StopMatcher(options.stop_sequences))
        self.jobs[rid] = job
        self.pending.append(job)
        self.conn.send(("started", rid, len(ids)))

    def cancel(self, rid: int) -> None:
        job = self.jobs.pop(rid, None)
        if job is None:
            return
        job.finished = True
        if job in self.pending:
            self.pending.remove(job)
        self.reap()

    # ------------------------------------------------------------ scheduling
    def admit(self) -> None:
        while self.pending:
            job = self.pending[0]
            mates = [j for j in self.pending if j.key == job.key][: self.max_batch]
            group = next((g for g in self.groups if g.rows[0].key == job.key), None)
            room = len(self.groups) < MAX_GROUPS
            merge = group is not None and self._fits(group.live + mates) and (
                not room or self._worth_merging(group, mates))
            if not merge and not room:
                return  # wait for a batch to finish
            for j in mates:
                self.pending.remove(j)
            if merge and group is not None:
                merged = group.live + mates
                self._guarded(group, merged, self._rebuild, group, merged)
            else:
                self._guarded(None, mates, self._add_group, mates)

    def _add_group(self, jobs: list[Job]) -> None:
        self.groups.append(self._start(jobs))

    def _guarded(self, group: Group | None, jobs: list[Job], action: Callable[..., None], *args: Any) -> None:
        """Start or rebuild a batch; if the runtime fails (out of memory, ...), fail only these jobs."""
        try:
            action(*args)
        except Exception as exc:
            log.exception("starting a batch failed")
            self._fail(jobs, exc)
            if group is not None and group in self.groups:
                self.groups.remove(group)

    def _fits(self, jobs: list[Job]) -> bool:
        return len(jobs) <= self.max_batch and self._max_length(jobs) <= self.model.context_length

    def _worth_merging(self, group: Group, mates: list[Job]) -> bool:
        """Merging re-reads the live rows; running two batches side by side costs a step per step."""
        live = group.live
        extra_prefill = _prefill_steps(live + mates) - _prefill_steps(mates)
        overlap = min(max(j.remaining for j in live), max(j.remaining for j in mates))
        return extra_prefill < overlap * (1 - EXTRA_ROW_STEPS)

    def _worth_shrinking(self, group: Group, live: list[Job]) -> bool:
        """Dropping finished rows saves their share of every later step, at the price of a re-read."""
        saved = (len(group.rows) - len(live)) * EXTRA_ROW_STEPS * max(j.remaining for j in live)
        return _prefill_steps(live) < saved

    def _max_length(self, jobs: list[Job]) -> int:
        return max(len(j.tokens) for j in jobs) + max(j.remaining for j in jobs) + 1

    def _start(self, jobs: list[Job]) -> Group:
        if len(jobs) == 1:
            reused = self._from_prefix(jobs[0])
            if reused is not None:
                return Group(reused, list(jobs))
        max_length = self._max_length(jobs)
        if len(jobs) == 1 and len(jobs[0].tokens) >= PREFIX_MIN_TOKENS:
            max_length += PREFIX_HEADROOM
        max_length = min(max_length, self.model.context_length)
        log.debug("batch of %d rows %s, max_length %d, %d batches running",
                  len(jobs), [j.rid for j in jobs], max_length, len(self.groups))
        batch = self.model.start([j.tokens for j in jobs], jobs[0].key, max_length)
        return Group(batch, list(jobs))

    def _from_prefix(self, job: Job) -> Any:
        """A kept generator whose KV cache covers a long prefix of this job's tokens, rewound to it."""
        if job.key.seed is not None:
            return None  # a seeded request must start from a fresh random state
        tokens = job.tokens
        need = len(tokens) + job.remaining + 1
        best: tuple[int, CachedPrefix] | None = None
        for entry in self.prefixes:
            if entry.key != job.key or entry.batch.max_length < need:
                continue
            keep = min(_common_prefix(entry.tokens, tokens), len(tokens) - 1)  # append at least one
            if keep >= PREFIX_MIN_TOKENS and (best is None or keep > best[0]):
                best = (keep, entry)
        if best is None:
            return None
        keep, entry = best
        self.prefixes.remove(entry)
        entry.batch.reuse(keep, tokens)
        self.prefix_hits += 1
        self.prefix_tokens += keep
        log.debug("request %d reuses %d of %d prompt tokens", job.rid, keep, len(tokens))
        return entry.batch

    def _keep_prefix(self, group: Group) -> None:
        """Keep a finished one-row generator for the next request with the same prefix, or free it."""
        job = group.rows[0]
        # The last sampled token was never fed back, so the KV cache ends one token earlier.
        held = job.tokens[:-1] if job.generated else job.tokens
        if len(group.rows) > 1 or len(held) < PREFIX_MIN_TOKENS or job.key.seed is not None:
            group.batch.close()
            return
        self.prefixes.append(CachedPrefix(held, group.batch, job.key))
        while len(self.prefixes) > PREFIX_ENTRIES:
            self.prefixes.pop(0).batch.close()

    def _rebuild(self, group: Group, jobs: list[Job]) -> None:
        group.batch.close()
        fresh = self._start(jobs)
        group.batch, group.rows = fresh.batch, fresh.rows

    def reap(self) -> None:
        """Drop finished groups at once; shrink a batch whose finished rows still cost compute."""
        for group in list(self.groups):
            live = group.live
            if not live:
                self._keep_prefix(group)
                self.groups.remove(group)
            elif len(live) < len(group.rows) and self._worth_shrinking(group, live):
                self._rebuild(group, live)

    def _fail(self, jobs: list[Job], exc: Exception) -> None:
        """End these generations with an error the proxy reports (mid-stream: an error event)."""
        for job in jobs:
            if not job.finished:
                job.finished = True
                self.jobs.pop(job.rid, None)
                self.conn.send(("error", job.rid, "engine", f"inference failed: {exc}", {}))

    def step(self) -> None:
        for group in list(self.groups):
            try:
                tokens = group.batch.step()
            except Exception as exc:  # a failed step ends this batch's generations, not the process
                log.exception("a decode step failed")
                self._fail(group.live, exc)
                group.batch.close()
                self.groups.remove(group)
                continue
            exhausted = group.batch.done()
            for job, token in zip(group.rows, tokens, strict=True):
                if not job.finished:
                    self._advance(job, token, exhausted)
        if self.deltas:
            self.conn.send(("deltas", self.deltas))
            self.deltas = []
        self.reap()

    def _advance(self, job: Job, token: int, exhausted: bool) -> None:
        if token in self.model.eos_ids:
            self._finish(job, "end_turn")
            return
        job.generated.append(token)
        text, stop = job.stops.feed(job.decoder.decode(token))
        if text:
            self.deltas.append((job.rid, text))
        if stop is not None:
            self._finish(job, "stop_sequence", stop)
        elif job.remaining <= 0 or exhausted:
            self._finish(job, "max_tokens")

    def _finish(self, job: Job, reason: str, stop: str | None = None) -> None:
        if reason != "stop_sequence":
            tail = job.stops.flush()
            if tail:
                self.deltas.append((job.rid, tail))
        if self.deltas:  # deltas must arrive before "done"
            self.conn.send(("deltas", self.deltas))
            self.deltas = []
        job.finished = True
        self.jobs.pop(job.rid, None)
        self.conn.send(("done", job.rid, reason, stop, len(job.generated)))

    # ------------------------------------------------------------ main loop
    def run(self) -> None:
        # One poll object for the life of the loop: Connection.poll() builds a selector per call,
        # which costs more than a decode step's bookkeeping.
        poller = select.poll()
        poller.register(self.conn.fileno(), select.POLLIN)
        while True:
            busy = bool(self.groups)
            if poller.poll(0 if busy else None):
                # From idle, wait a moment longer for company: clients that start together arrive a
                # few ms apart, and one batch for all of them beats starting one and rebuilding.
                linger = 0 if busy else GATHER_MS
                while True:
                    if not self.handle(self.conn.recv()):
                        return
                    if not poller.poll(linger if self.pending else 0):
                        break
            self.admit()
            if self.groups:
                self.step()


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _prefill_steps(jobs: list[Job]) -> float:
    """Estimated cost of reading these rows' tokens, right-padded to the longest."""
    return PREFILL_TOKEN_STEPS * len(jobs) * max(len(j.tokens) for j in jobs)


def _prompt(turns: list[tuple[str, str]]) -> ChatPrompt:
    return ChatPrompt(tuple(ChatTurn(role, content) for role, content in turns))  # type: ignore[arg-type]


def serve(conn: Connection, model_path: str, providers: tuple[str, ...], threads: int, max_batch: int,
          log_level: str = "INFO") -> None:
    """Entry point of the inference process."""
    # Ctrl-C reaches the whole process group; the server decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s worker: %(message)s")
    from .ort import OrtModel

    try:
        model = OrtModel(Path(model_path), providers, threads)
    except AgenticFlowError as exc:
        conn.send(("fatal", str(exc)))
        return
    except Exception as exc:  # the library's own load errors: report them, not a traceback
        conn.send(("fatal", f"loading the model from {model_path} failed: {exc}"))
        return
    conn.send(("ready", {"context_length": model.context_length}))
    try:
        Scheduler(model, conn, max_batch).run()
    except (EOFError, BrokenPipeError):
        pass  # the server went away: nothing left to serve
