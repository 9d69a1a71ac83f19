"""OpenAI's server-sent events: the framing we write, and a tolerant parser for what hosts send.

What we write (SERVE): one `data: JSON` event per chunk, `data: [DONE]` at the end; no `event:` names.

What we read (UPSTREAM) varies: OpenRouter interleaves comments (`: OPENROUTER PROCESSING`) to keep
the connection alive, some hosts send blank keep-alive lines, Windows-hosted servers end lines with
CRLF, and a chunk may end mid-line.  `SSEParser` follows the WHATWG event-stream rules: lines end at
CR, LF or CRLF; `:` starts a comment; `data` lines of one event join with "\\n"; an event ends at a
blank line.  A blank line with no data before it dispatches nothing, so keep-alives vanish.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

DONE_DATA = "[DONE]"
DONE = b"data: [DONE]\n\n"


def data_frame(payload: Mapping[str, object]) -> bytes:
    """One event; json.dumps escapes newlines, so the payload is always a single line."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str | None = None


class SSEParser:
    """Incremental: feed it byte chunks as they arrive, cut anywhere; it returns the complete events."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False  # a chunk ended with CR: an LF starting the next one belongs to it
        self._data: list[str] = []
        self._event: str | None = None
        self._decoder_tail = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = text.endswith("\r")
        self._buffer += text
        events: list[SSEEvent] = []
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()  # the unfinished last line
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: an event the host did not terminate with a blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        event = self._line("")
        return events + ([event] if event is not None else [])

    def _decode(self, chunk: bytes) -> str:
        # A multi-byte UTF-8 character may be split across chunks: keep its start for the next one.
        data = self._decoder_tail + chunk
        for cut in range(0, min(4, len(data) + 1)):
            try:
                text = data[: len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
            self._decoder_tail = data[len(data) - cut:]
            return text
        self._decoder_tail = b""
        return data.decode("utf-8", "replace")

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: OpenRouter's "PROCESSING", or any keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None  # "id" and "retry" mean nothing for a one-shot completion stream

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event)
        self._data, self._event = [], None
        return event


def json_object(data: str) -> dict[str, object]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError(f"a stream event is not a JSON object: {data[:200]}")
    return value
