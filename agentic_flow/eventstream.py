"""Server-sent events, decoded: the one decoder, for both APIs' streams (the agent client and the
benchmark read the proxy's Messages streams with it; the upstream client reads OpenAI-compatible hosts).

What hosts send varies: OpenRouter interleaves comments (`: OPENROUTER PROCESSING`) to keep the
connection alive, some hosts send blank keep-alive lines, Windows-hosted servers end lines with CRLF, and
a chunk may end mid-line or inside a UTF-8 sequence.  `SSEParser` follows the WHATWG event-stream rules:
lines end at CR, LF or CRLF; `:` starts a comment; `data` lines of one event join with "\\n"; an event
ends at a blank line.  A blank line with no data before it dispatches nothing, so keep-alives vanish.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    event: str  # "message" when the stream names none, as the standard says
    data: str


class SSEParser:
    """Incremental: feed it byte chunks as they arrive, cut anywhere; it returns the complete events."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False  # a chunk ended with CR: an LF starting the next one belongs to it
        self._data: list[str] = []
        self._event = ""
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
            event = self.feed_line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: an event the host did not terminate with a blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        event = self.feed_line("")
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

    def feed_line(self, line: str) -> SSEEvent | None:
        """One line (its line ending, if any, is dropped): the event it completes, if any."""
        line = line.rstrip("\r\n")
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
            self._event = ""
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._data, self._event = [], ""
        return event


async def iter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """The events of a byte stream (for aiohttp: `iter_events(response.content.iter_any())`).  An event
    cut off before its blank line is dropped, as the SSE standard says: it may be partial."""
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
