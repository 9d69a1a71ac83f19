"""The one stream writer: a `Stream`'s frames written as a server-sent event response.

The response is prepared only once the first frame exists, so a failure before it (an upstream that
refuses the request) is still a real HTTP status.  When the client goes away, closing the frames
closes what produces them (the generation, the upstream response) at once.  When the proxy stops and
its grace period is over, the stream ends with an `overloaded_error` in the route's own API rather
than as if the answer were complete.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from aiohttp import web

from ..anthropic.sse import HEADERS
from .backend import Answer, Stream
from .middlewares import REQUEST_ID
from .state import STATE

log = logging.getLogger(__name__)


async def respond(request: web.Request, answer: Answer) -> web.StreamResponse:
    if isinstance(answer, Stream):
        return await write_stream(request, answer)
    return web.json_response(answer)


async def write_stream(request: web.Request, stream: Stream) -> web.StreamResponse:
    state = request.app[STATE]
    async with aclosing(stream.frames) as frames:
        first = await anext(frames)  # an error here becomes an HTTP error (middleware)
        response = web.StreamResponse(headers={**HEADERS, "request-id": request[REQUEST_ID]})
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        state.streams.add(task)
        try:
            await response.write(first)
            async for chunk in frames:
                await response.write(chunk)
        except asyncio.CancelledError:
            if not state.grace_over:
                raise  # the client went away
            await response.write(stream.error_frame("overloaded_error", "the server is shutting down; retry"))
        except ConnectionResetError:
            raise
        except Exception as exc:  # headers are sent: report it inside the stream, as Anthropic does
            log.exception("generation failed mid-stream (%s)", request[REQUEST_ID])
            await response.write(stream.error_frame("api_error", f"generation failed: {type(exc).__name__}"))
        finally:
            state.streams.discard(task)
    await response.write_eof()
    return response
