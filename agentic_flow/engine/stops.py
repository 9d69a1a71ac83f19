"""Stop sequences matched on decoded text.

onnxruntime-genai has no stop-string option, and a stop string can be split across tokens (or
arrive in the middle of one), so text is released only when no stop sequence can still begin inside
it: a possible partial match at the end of the buffer is held back until the next token settles it.
"""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """Add decoded text; return (text safe to emit, the stop sequence that matched or None).

        After a match, the text before the stop sequence is returned and the rest is discarded."""
        if not self._stops:
            return text, None
        buffer = self._held + text
        first: tuple[int, str] | None = None
        for stop in self._stops:
            at = buffer.find(stop)
            if at != -1 and (first is None or at < first[0]):
                first = (at, stop)
        if first is not None:
            self._held = ""
            return buffer[: first[0]], first[1]
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep], None

    def flush(self) -> str:
        """The held-back text, released when generation ends without a match."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest suffix of `buffer` that is a proper prefix of some stop sequence."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
