"""OpenAI's server-sent events: the framing we write (SERVE): one `data: JSON` event per chunk,
`data: [DONE]` at the end; no `event:` names.  What hosts send (UPSTREAM) is decoded by the project's one
SSE decoder, `agentic_flow.eventstream` (re-exported here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..eventstream import SSEEvent, SSEParser

__all__ = ["DONE", "DONE_DATA", "SSEEvent", "SSEParser", "data_frame", "json_object"]

DONE_DATA = "[DONE]"
DONE = b"data: [DONE]\n\n"


def data_frame(payload: Mapping[str, object]) -> bytes:
    """One event; json.dumps escapes newlines, so the payload is always a single line."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def json_object(data: str) -> dict[str, object]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError(f"a stream event is not a JSON object: {data[:200]}")
    return value
