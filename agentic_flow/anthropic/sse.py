"""Anthropic's response bodies and its streaming event sequence, serialized in exactly one place.

`message_events` turns a running `Generation` into the exact byte chunks of a Messages stream:

    message_start, content_block_start (index 0, an empty text block), ping,
    content_block_delta (one per text delta), content_block_stop, message_delta, message_stop

each framed as `event: NAME\\ndata: JSON\\n\\n` with compact JSON whose `type` equals the event name.
`message_json` is the same message as one non-streaming body, and `error_body` / `error_event` are the
error envelope before and during a stream.  Callers write the bytes; nothing here does I/O.

Both forms always carry exactly one text block, even when the model produced no text: a streamed
reply and a non-streamed one then decode to the same message, and clients that read
`content[0].text` never meet an empty list.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import AsyncGenerator, Mapping

from ..engine.base import Completion, Generation
from ..errors import EngineError

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24

# Anthropic's message_start reports output_tokens 1 (the stream starts with the first token on its
# way); the true count follows in message_delta, which clients take as final.
_START_OUTPUT_TOKENS = 1


def new_message_id() -> str:
    return "msg_" + _random_id()


def new_request_id() -> str:
    return "req_" + _random_id()


def _random_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def frame(event: str, data: Mapping[str, object]) -> bytes:
    """One server-sent event.  json.dumps escapes newlines, so the data is always a single line."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


PING = frame("ping", {"type": "ping"})


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, object]:
    """The JSON body of an HTTP error response."""
    body: dict[str, object] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_event(error_type: str, message: str) -> bytes:
    """An error inside a stream that has already answered 200; the stream ends after it."""
    return frame("error", {"type": "error", "error": {"type": error_type, "message": message}})


def message_json(
    message_id: str, model: str, text: str, completion: Completion, input_tokens: int
) -> dict[str, object]:
    """The body of a non-streaming Messages response."""
    return _message(
        message_id,
        model,
        content=[{"type": "text", "text": text}],
        completion=completion,
        usage=_usage(input_tokens, completion.output_tokens),
    )


async def message_events(message_id: str, model: str, generation: Generation) -> AsyncGenerator[bytes, None]:
    """The byte chunks of a streamed Messages response, `model` echoed as the client sent it.

    A generation that fails with an EngineError ends the stream with an `error` event.  If the caller
    stops iterating (the client went away) and closes this generator, the generation is cancelled;
    wrap it in `contextlib.aclosing` so that happens at once rather than at garbage collection."""
    usage = _usage(generation.input_tokens, _START_OUTPUT_TOKENS)
    start = _message(message_id, model, content=[], completion=None, usage=usage)
    yield frame("message_start", {"type": "message_start", "message": start})
    yield frame("content_block_start", _BLOCK_START)
    yield PING
    finished = False
    try:
        async for text in generation:
            if text:
                yield frame("content_block_delta", _text_delta(text))
        finished = True
    except EngineError as exc:
        yield error_event("api_error", str(exc))
        return
    finally:
        if not finished:
            await generation.aclose()
    yield frame("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield frame("message_delta", _message_delta(generation.completion))
    yield frame("message_stop", {"type": "message_stop"})


_BLOCK_START: Mapping[str, object] = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},  # the SDK requires the empty "text"
}


def _text_delta(text: str) -> dict[str, object]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


def _message_delta(completion: Completion) -> dict[str, object]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": completion.stop_reason, "stop_sequence": completion.stop_sequence},
        "usage": {"output_tokens": completion.output_tokens},
    }


def _message(
    message_id: str,
    model: str,
    *,
    content: list[dict[str, object]],
    completion: Completion | None,
    usage: dict[str, int],
) -> dict[str, object]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model,
        "stop_reason": None if completion is None else completion.stop_reason,
        "stop_sequence": None if completion is None else completion.stop_sequence,
        "usage": usage,
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    # No prompt cache: the cache counters are always 0, but clients expect them present.
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }
