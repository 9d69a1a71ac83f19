"""Several choices of one request (OpenAI's `n`): one generation each, read together.

`merged` interleaves the choices' event streams as their events come, each as a `chat.ChoiceEvent`;
`collected` reads them all to whole answers.  Either way a failure of one choice ends the request:
the other choices' generations are cancelled at once (their batch rows freed), as when a client goes
away.  One choice takes a path without tasks: that is every request of the Messages API, and most of
Chat Completions'.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import TypeVar

from .. import chat
from ..engine.base import Engine, Generation, GenerationRequest
from .generation import collect

T = TypeVar("T")


class _End:
    """A choice's events are over."""


async def started(engine: Engine, requests: Sequence[GenerationRequest]) -> list[Generation]:
    """One generation per request, submitted together (so that the inference process can batch them);
    if one cannot start, those that did are cancelled and its error is raised."""
    if len(requests) == 1:
        return [await engine.generate(requests[0])]
    results = await asyncio.gather(*(engine.generate(r) for r in requests), return_exceptions=True)
    generations = [r for r in results if not isinstance(r, BaseException)]
    if len(generations) < len(results):
        for generation in generations:
            await generation.aclose()
        raise next(r for r in results if isinstance(r, BaseException))
    return generations


def choice_request(request: GenerationRequest, index: int) -> GenerationRequest:
    """Choice `index` of a request: a seeded one gets seed + index, so that each choice is reproducible
    and choice 0 is what the same request with n=1 answers (a seeded generation starts from a fresh
    generator: engine.scheduler)."""
    seed = request.options.seed
    if index == 0 or seed is None:
        return request
    return replace(request, options=replace(request.options, seed=seed + index))


async def merged(streams: Sequence[AsyncGenerator[chat.Event, None]]) -> AsyncGenerator[chat.ChoiceEvent, None]:
    """The choices' events in the order they arrive.  Closing this closes every stream (and so cancels
    every generation); an error raised by one stream is raised here."""
    if len(streams) == 1:
        async with aclosing(streams[0]) as only:
            async for event in only:
                yield chat.ChoiceEvent(0, event)
        return
    queue: asyncio.Queue[chat.ChoiceEvent | _End | Exception] = asyncio.Queue()

    async def pump(index: int, stream: AsyncGenerator[chat.Event, None]) -> None:
        try:
            async with aclosing(stream):
                async for event in stream:
                    queue.put_nowait(chat.ChoiceEvent(index, event))
            queue.put_nowait(_End())
        except Exception as exc:  # handed to the reader, which raises it
            queue.put_nowait(exc)

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        left = len(tasks)
        while left:
            item = await queue.get()
            if isinstance(item, Exception):
                raise item
            if isinstance(item, _End):
                left -= 1
                continue
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def all_or_none(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Every result in order; on the first failure the others are cancelled and it is raised as it is
    (not as an ExceptionGroup: the error middleware maps the project's own errors)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def collected(streams: Sequence[AsyncGenerator[chat.Event, None]]) -> list[chat.Answer]:
    """Each choice's whole answer, in order."""
    return await all_or_none([collect(stream) for stream in streams])
