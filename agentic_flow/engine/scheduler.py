"""The scheduler of the inference process: which requests share a batch, when a batch is rebuilt,
which finished generator is kept for reuse.  It decides; `costs` prices, `prefix_cache` keeps, and
`ort` runs.  It reads no pipe: the loop in `worker` hands it commands and it sends events to `out`.

A batch is one onnxruntime-genai generator stepping several requests (rows) at once.  Requests with
the same generator-wide search options can share a batch (up to `max_batch` rows); a guided request
(tool use) always runs alone and is never rebuilt (onnxruntime-genai 0.18 raises "compute_mask() called
after stop" at the next step once one row of a guided batch has finished, and tokens re-appended at a
rebuild are not fed to the grammar).  onnxruntime-genai
batches statically, so when a request arrives while a batch runs we may rebuild the batch from every
live row's tokens so far (prompt + generated) plus the newcomer, when the cost model says it pays;
otherwise the newcomer starts a batch of its own (up to MAX_BATCHES, stepped in turn) or waits.

Speculative decoding (n-gram drafts verified in one pass, engine/ort.py) works on one-row generators
only, so it is decided each time a batch is made: a batch of one row speculates (when the model's graph
allows it, convert build 3, and the request does, `speculable`), a batch of several does not.  A request that
runs alone speculates; one that arrives while it runs is merged with it into a plain batch when the
cost model says so (or when there is no room for another batch), exactly as into any batch; when the
batch shrinks back to one row it speculates again.

Over 450 lines on purpose: admission, stepping, the rebuild and speculation decisions act on the same batches; the
pure parts already live apart (costs, prefix_cache, spare).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

import numpy as np

from ..errors import EngineError, InvalidRequestError, PromptTooLong
from ..tooluse import Guidance
from . import costs, logprobs
from .base import MAX_BATCHES, Completion, GrammarRefused, Prompt, SamplingOptions, StopReason
from .messages import Deltas, Event, Failed, Finished, Generate, Scored, Started, WorkerStats
from .prefix_cache import PrefixCache
from .search import GREEDY, SearchKey, search_key
from .spare import Spare, preamble
from .stops import StopMatcher

log = logging.getLogger(__name__)

# Prefix reuse (engine/prefix_cache.py).  Every finished one-row generator is kept: sharing only the
# chat template's preamble with the next prompt (23 tokens on Qwen) saves a prefill of those and the
# generator's creation, and a repeated prompt reads two tokens (MIN_APPEND; llama-server's per-slot cache).
# A hit must share REUSE_MIN_TOKENS; the entries are bounded by count and by KV tokens held.
REUSE_MIN_TOKENS = 8
PREFIX_ENTRIES = 8
# A one-row batch of a prompt this long gets HEADROOM more KV room so a longer next turn fits
# (allocating KV costs TTFT: measured +10-30 ms for 2k tokens, +100-190 ms for 8k).
PREFIX_MIN_TOKENS = 64
PREFIX_HEADROOM = 1024
# A fresh one-row generator's KV room is rounded up to this, so that the next short request (another
# max_tokens, a few more prompt tokens) still fits in it when it is reused (~3 ms per 256 on the 1.5B).
KV_BUCKET = 256


class Decoder(Protocol):
    def decode(self, token: int) -> str: ...


class Generator(Protocol):
    """One runtime generator over a batch's rows (engine.ort.Generator)."""

    @property
    def max_length(self) -> int: ...

    def step(self) -> list[int]: ...

    def logits(self) -> np.ndarray: ...

    def done(self) -> bool: ...

    def reuse(self, keep: int, tokens: list[int]) -> None: ...

    def close(self) -> None: ...

    @property
    def speculative(self) -> bool: ...

    def draft_stats(self) -> tuple[int, int]: ...


class Model(Protocol):
    """What the scheduler needs of a loaded model (engine.ort.OrtModel)."""

    context_length: int
    eos_ids: frozenset[int]
    # Rows x longest row a batch of several rows may read at once (costs.prefill_fits); None: no bound.
    batch_prefill_tokens: int | None

    @property
    def can_speculate(self) -> bool: ...

    def render(self, prompt: Prompt) -> str: ...

    def encode(self, text: str) -> list[int]: ...

    def decoder(self) -> Decoder: ...

    def token_text(self, token: int) -> str: ...

    def start(self, rows: list[list[int]], key: SearchKey, max_length: int,
              guidance: Guidance | None = None, speculate: bool = False) -> Generator: ...


class EventSink(Protocol):
    def send(self, event: Event) -> None: ...


@dataclass
class Job:
    rid: int
    prompt_ids: list[int]
    options: SamplingOptions
    key: SearchKey
    decoder: Decoder
    stops: StopMatcher
    generated: list[int] = field(default_factory=list)
    cached_tokens: int = 0  # prompt tokens whose KV came from the prefix cache
    finished: bool = False

    @property
    def guidance(self) -> Guidance | None:
        return self.options.guidance

    @property
    def group(self) -> tuple[SearchKey, Guidance | None]:
        """Jobs of one group may share a batch (guided ones still run alone) and a kept generator."""
        return self.key, self.options.guidance

    @property
    def tokens(self) -> list[int]:
        return self.prompt_ids + self.generated

    @property
    def remaining(self) -> int:
        return self.options.max_tokens - len(self.generated)

    @property
    def load(self) -> costs.RowLoad:
        return costs.RowLoad(len(self.prompt_ids) + len(self.generated), self.remaining)

    def speculable(self, greedy_too: bool) -> bool:
        """May run on a speculative generator when alone.  Not a seeded sample, whose exact tokens must be
        reproducible (verification draws its random numbers differently), nor one that asked for logprobs
        (each step's scores are read from the logits of the one-token step before it).  A greedy request
        only when `greedy_too`: verifying several tokens in one pass rounds differently from one-token
        steps, and where two tokens' logits nearly tie the argmax can flip (docs/benchmarks.md); an
        unseeded sample keeps its distribution either way."""
        return (self.key.seed is None and self.options.logprobs is None
                and (self.key.do_sample or greedy_too))


@dataclass
class Batch:
    generator: Generator
    rows: list[Job]
    # The generator's (verified, accepted) draft counts when this batch took it: the difference at the
    # end is this batch's share (a kept generator carries its counts into the next request).
    drafts_at_start: tuple[int, int] = (0, 0)

    @property
    def live(self) -> list[Job]:
        return [j for j in self.rows if not j.finished]

    @property
    def scored(self) -> bool:
        """A live row asked for logprobs: this batch's steps read the logits."""
        return any(j.options.logprobs is not None and not j.finished for j in self.rows)


def loads(jobs: list[Job]) -> list[costs.RowLoad]:
    return [j.load for j in jobs]


def _preamble(model: Model) -> list[int]:
    try:
        return preamble(model)
    except Exception:  # a template that cannot render a bare user turn: no spare, nothing else lost
        log.warning("no template preamble: the spare generator is off", exc_info=True)
        return []


def read_prompt(model: Model, prompt: Prompt) -> list[int]:
    """Render and tokenize; a failure (a template error, text the tokenizer refuses such as a lone
    surrogate) is this request's fault only, reported as an invalid request."""
    try:
        return model.encode(model.render(prompt))
    except Exception as exc:  # the template and tokenizer are third-party code: any error is possible
        log.warning("could not read a prompt: %s: %s", type(exc).__name__, exc)
        raise InvalidRequestError(f"the prompt could not be rendered or tokenized: {exc}") from None


class Scheduler:
    def __init__(self, model: Model, out: EventSink, max_batch: int, prefix_budget: int | None = None,
                 speculate_greedy: bool = False) -> None:
        self.model = model
        self.speculate_greedy = speculate_greedy
        self.out = out
        self.max_batch = max_batch
        self.pending: deque[Job] = deque()
        self.batches: list[Batch] = []
        self.jobs: dict[int, Job] = {}
        self.deltas: list[tuple[int, str]] = []
        self.scores: list[Scored] = []
        # The budget in KV tokens: sized from the memory available by the inference process
        # (engine/memory.py); two full contexts when not given (the scheduler's own tests).
        self.prefixes: PrefixCache[Generator] = PrefixCache(
            REUSE_MIN_TOKENS, PREFIX_ENTRIES, 2 * model.context_length if prefix_budget is None else prefix_budget)
        self.spare = Spare(_preamble(model), model.context_length)
        self.speculated = 0  # batches that ran on a speculative generator
        self.drafted = self.accepted = 0  # their draft tokens verified / accepted

    @property
    def busy(self) -> bool:
        return bool(self.batches)

    def stats(self) -> WorkerStats:
        return WorkerStats(batches=len(self.batches), rows=sum(len(b.rows) for b in self.batches),
                           generations=len(self.jobs), pending=len(self.pending),
                           prefix_entries=len(self.prefixes), prefix_hits=self.prefixes.hits,
                           prefix_tokens=self.prefixes.reused_tokens, spare_hits=self.spare.hits,
                           speculating=sum(b.generator.speculative for b in self.batches),
                           speculated=self.speculated, draft_tokens=self.drafted, draft_accepted=self.accepted)

    def idle(self) -> None:
        """Nothing runs or waits: prepare the spare generator for the next request (engine/spare.py)."""
        try:
            key = self.spare.key or GREEDY
            speculate = self.model.can_speculate and (key.do_sample or self.speculate_greedy)
            self.spare.build(self.model, key, speculate=speculate)
        except Exception:  # the runtime's errors (out of memory, ...): serve without a spare
            log.exception("building the spare generator failed")
            self.spare.wanted = False

    # ------------------------------------------------------------ requests
    def submit(self, command: Generate) -> None:
        rid, options = command.rid, command.options
        try:
            ids = read_prompt(self.model, command.prompt)
        except InvalidRequestError as exc:
            self.out.send(Failed(rid, exc))
            return
        context = self.model.context_length
        if len(ids) >= context:
            self.out.send(Failed(rid, PromptTooLong(len(ids), options.max_tokens, context)))
            return
        if len(ids) + options.max_tokens > context:
            # Clients size max_tokens for large cloud models (Claude Code asks for 32000): rather than
            # refuse, generate up to the end of the context and report max_tokens if it is reached.
            options = replace(options, max_tokens=context - len(ids))
        key = search_key(options.temperature, options.top_p, options.top_k, options.seed)
        job = Job(rid, ids, options, key, self.model.decoder(), StopMatcher(options.stop_sequences))
        self.jobs[rid] = job
        self.pending.append(job)
        self.spare.note(key, ids, options.guidance is not None)
        expected = 0 if key.seed is not None else self.prefixes.peek(job.group, ids, costs.kv_length([job.load]))
        self.out.send(Started(rid, len(ids), self._reported(expected)))

    def cancel(self, rid: int) -> None:
        job = self.jobs.pop(rid, None)
        if job is None:
            return
        job.finished = True
        if job in self.pending:
            self.pending.remove(job)
        self.reap()

    # ------------------------------------------------------------ batching
    def admit(self) -> None:
        """Place pending requests, oldest first, with the later ones that share its search options.
        Each round ends one of three ways: the newcomers are merged into the running batch of their
        options (it fits and the cost model says the re-read pays, or there is no room for another
        batch), or they start a batch of their own (there is room), or they wait (no room, and
        merging does not fit) until a batch finishes."""
        while self.pending:
            job = self.pending[0]
            guided = job.guidance is not None
            mates = [job] if guided else self._mates(job)
            batch = None if guided else next((b for b in self.batches if b.rows[0].group == job.group), None)
            room = len(self.batches) < MAX_BATCHES
            merge = batch is not None and self._fits(batch.live + mates) and (
                not room or costs.merge_pays(loads(batch.live), loads(mates)))
            if not merge and not room:
                return
            for j in mates:
                self.pending.remove(j)
            if merge and batch is not None:
                merged = batch.live + mates
                self._guarded(batch, merged, partial(self._rebuild, batch, merged))
            else:
                self._guarded(None, mates, partial(self._add, mates))

    def _mates(self, job: Job) -> list[Job]:
        """The pending jobs that start a batch with `job`: its group, oldest first, as many as fit."""
        mates: list[Job] = []
        for other in (j for j in self.pending if j.group == job.group):
            if len(mates) == self.max_batch or not costs.prefill_fits(loads([*mates, other]),
                                                                       self.model.batch_prefill_tokens):
                break
            mates.append(other)
        return mates

    def _add(self, jobs: list[Job]) -> None:
        self.batches.append(self._start(jobs))

    def _guarded(self, batch: Batch | None, jobs: list[Job], action: Callable[[], None]) -> None:
        """Start or rebuild a batch; if the runtime fails (out of memory, ...), fail only these jobs."""
        try:
            action()
        except Exception as exc:  # the runtime's errors are not ours to enumerate
            log.exception("starting a batch failed")
            self._fail(jobs, exc)
            if batch is not None and batch in self.batches:
                self.batches.remove(batch)

    def _fits(self, jobs: list[Job]) -> bool:
        return (len(jobs) <= self.max_batch and costs.kv_length(loads(jobs)) <= self.model.context_length
                and costs.prefill_fits(loads(jobs), self.model.batch_prefill_tokens))

    def _start(self, jobs: list[Job]) -> Batch:
        if len(jobs) == 1:
            reused = self._reuse(jobs[0])
            if reused is not None:
                return self._batch(reused, jobs)
        max_length = costs.kv_length(loads(jobs))
        if len(jobs) == 1 and jobs[0].key.seed is None:  # it will be kept for reuse: leave room
            if len(jobs[0].tokens) >= PREFIX_MIN_TOKENS:
                max_length += PREFIX_HEADROOM
            max_length = -(-max_length // KV_BUCKET) * KV_BUCKET
        max_length = min(max_length, self.model.context_length)
        log.debug("batch of %d rows %s, max_length %d, %d batches running",
                  len(jobs), [j.rid for j in jobs], max_length, len(self.batches))
        rows, first = [j.tokens for j in jobs], jobs[0]
        speculate = self._speculates(jobs)
        try:
            return self._batch(self.model.start(rows, first.key, max_length, first.guidance, speculate), jobs)
        except GrammarRefused as exc:
            fallback = first.options.fallback
            if fallback is None:
                raise
            # Any JSON object per tool: the proxy still validates every call against its schema.
            log.warning("request %d: the tool grammar was refused (%s); falling back to any JSON object",
                        first.rid, exc)
            first.options = replace(first.options, guidance=fallback, fallback=None)
            return self._batch(self.model.start(rows, first.key, max_length, fallback, speculate), jobs)

    def _speculates(self, jobs: list[Job]) -> bool:
        """The runtime speculates on one row only: a batch of one speculable request does."""
        return self.model.can_speculate and len(jobs) == 1 and jobs[0].speculable(self.speculate_greedy)

    @staticmethod
    def _batch(generator: Generator, jobs: list[Job]) -> Batch:
        return Batch(generator, list(jobs), generator.draft_stats())

    def _account(self, batch: Batch) -> None:
        """Add a batch's draft counts to the totals (before its generator is kept, replaced or closed)."""
        if batch.generator.speculative:
            drafted, accepted = batch.generator.draft_stats()
            self.speculated += 1
            self.drafted += drafted - batch.drafts_at_start[0]
            self.accepted += accepted - batch.drafts_at_start[1]

    def _reuse(self, job: Job) -> Generator | None:
        """A kept generator or the spare, whichever shares more of this job's tokens, continued with
        them; None when neither does (or a seeded request, which must start from a fresh state)."""
        if job.key.seed is not None:
            return None
        tokens, need = job.tokens, costs.kv_length([job.load])
        # A grammar is fixed at a generator's creation: the spare has none.  On a tie the spare goes
        # first: it holds nothing else, while a kept generator continued from the preamble loses the
        # rest of its prompt (a repeated prompt would miss it later).  A kept generator is taken whether
        # it speculates or not: the prefill it saves is worth more than the drafts.
        spare = 0 if job.guidance is not None else self.spare.shares(job.key, tokens, need)
        hit = self.prefixes.take(job.group, tokens, need, beat=spare)
        if hit is None:
            return self.spare.take(job.key, tokens, need) if spare else None
        hit.generator.reuse(hit.shared, tokens)
        job.cached_tokens = self._reported(hit.shared)
        log.debug("request %d reuses %d of %d prompt tokens", job.rid, hit.shared, len(tokens))
        return hit.generator

    def _reported(self, shared: int) -> int:
        """Reused tokens as the usage reports them (cache_read_input_tokens): none when only the chat
        template's own preamble was reused, which is no part of what the client sent (as the spare)."""
        return shared if shared > len(self.spare.tokens) else 0

    def _keep_prefix(self, batch: Batch) -> None:
        """Keep a finished one-row generator for the next request with the same prefix, or free it."""
        job = batch.rows[0]
        if len(batch.rows) > 1 or job.key.seed is not None:
            batch.generator.close()
            return
        # The last sampled token was never fed back, so the KV cache ends one token earlier.
        held = job.tokens[:-1] if job.generated else job.tokens
        # Keyed by the guidance too: a kept generator's params carry its grammar.
        self.prefixes.put(job.group, held, batch.generator)

    def _rebuild(self, batch: Batch, jobs: list[Job]) -> None:
        self._account(batch)
        batch.generator.close()
        fresh = self._start(jobs)
        batch.generator, batch.rows, batch.drafts_at_start = fresh.generator, fresh.rows, fresh.drafts_at_start

    def reap(self) -> None:
        """Drop finished batches at once; shrink a batch whose finished rows still cost compute."""
        for batch in list(self.batches):
            live = batch.live
            if not live:
                self._account(batch)
                self._keep_prefix(batch)
                self.batches.remove(batch)
            elif (len(live) < len(batch.rows) and live[0].guidance is None
                  and costs.shrink_pays(len(batch.rows), loads(live))):
                self._rebuild(batch, live)

    def _fail(self, jobs: list[Job], exc: Exception) -> None:
        """End these generations with an error the proxy reports (mid-stream: an error event).  A refused
        grammar keeps its type: the proxy answers a structured-output request's with a 400."""
        kind = GrammarRefused if isinstance(exc, GrammarRefused) else EngineError
        for job in jobs:
            if not job.finished:
                job.finished = True
                self.jobs.pop(job.rid, None)
                self.out.send(Failed(job.rid, kind(f"inference failed: {exc}")))

    # ------------------------------------------------------------ decoding
    def step(self) -> None:
        for batch in list(self.batches):
            try:
                # Read before the step, which then samples from these very logits.
                logits = batch.generator.logits() if batch.scored else None
                tokens = batch.generator.step()
            except Exception as exc:  # a failed step ends this batch's generations, not the process
                log.exception("a decode step failed")
                self._fail(batch.live, exc)
                batch.generator.close()
                self.batches.remove(batch)
                continue
            exhausted = batch.generator.done()
            for row, (job, token) in enumerate(zip(batch.rows, tokens, strict=True)):
                if not job.finished:
                    asked = logits is not None and job.options.logprobs is not None
                    self._advance(job, token, exhausted, logits[row] if asked and logits is not None else None)
        self._flush_deltas()
        self.reap()

    def _advance(self, job: Job, token: int, exhausted: bool, logits: np.ndarray | None = None) -> None:
        if token in self.model.eos_ids:
            self._finish(job, "end_turn")  # the end token is no part of the reply: no score either
            return
        job.generated.append(token)
        piece = job.decoder.decode(token)
        if logits is not None:
            top = job.options.logprobs or 0
            self.scores.append(Scored(job.rid, logprobs.score(logits, token, piece, top, self.model.token_text)))
        text, stop = job.stops.feed(piece)
        if text:
            self.deltas.append((job.rid, text))
        if stop is not None:
            self._finish(job, "stop_sequence", stop)
        elif job.remaining <= 0 or exhausted:
            self._finish(job, "max_tokens")

    def _finish(self, job: Job, reason: StopReason, stop: str | None = None) -> None:
        if reason != "stop_sequence":
            tail = job.stops.flush()
            if tail:
                self.deltas.append((job.rid, tail))
        self._flush_deltas()  # text must arrive before the end
        job.finished = True
        self.jobs.pop(job.rid, None)
        self.out.send(Finished(job.rid, Completion(reason, stop, len(job.generated), job.cached_tokens)))

    def _flush_deltas(self) -> None:
        if self.deltas or self.scores:
            self.out.send(Deltas(tuple(self.deltas), tuple(self.scores)))
            self.deltas = []
            self.scores = []

