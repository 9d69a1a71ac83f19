"""The trust boundary's two halves that are not the request types themselves: reading a raw body into
JSON values, and turning pydantic's errors into Anthropic's one-line messages that name the field.

`decode_body` refuses, as a 400, every body the rest of the code could not use: bytes that are not
UTF-8, JSON that is malformed, an integer too long for Python (over 4,300 digits), nesting deeper than
`MAX_DEPTH`.  A lone surrogate (a `\\ud800`-style escape without its other half) is replaced with
U+FFFD wherever it occurs, keys included, as Anthropic's API does: such a string cannot be encoded,
tokenized or streamed back, and refusing it would break clients that cut strings at the wrong place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import get_args

import pydantic_core
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import InvalidRequestError
from .types import BlockType

# pydantic_core's JSON parser refuses nesting deeper than this; the slow path holds the same limit.
MAX_DEPTH = 200
BODY_PATH = "request body"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_BLOCK_TYPES = frozenset(get_args(BlockType))
_TAG_PREFIX = "="  # how `requests` marks a union's tag, so it can be dropped from error paths
NOT_A_STRING_TAG = _TAG_PREFIX + "!"


class InvalidRequest(InvalidRequestError):
    """A request body the API refuses: HTTP 400, `invalid_request_error` (inherited), with the message
    naming the offending field's path.  The error middleware turns it into Anthropic's envelope."""


# --- raw bytes to JSON values ------------------------------------------------------------------


def decode_body(raw: bytes) -> object:
    try:
        # The fast path, in Rust.  It refuses exactly the rare bodies the slow path below looks at.
        return pydantic_core.from_json(raw)
    except ValueError:
        pass
    try:
        value = json.loads(raw.decode("utf-8"))  # strict: surrogates encoded as bytes are not UTF-8
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # malformed JSON or UTF-8, or an integer over Python's 4,300 digits
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    return _clean(value, 0)


def _clean(value: object, depth: int) -> object:
    """The value with lone surrogates replaced; refuses nesting beyond MAX_DEPTH."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_LONE_SURROGATE.sub("\ufffd", key): _clean(item, depth + 1) for key, item in value.items()}
    return value


def _too_deep() -> InvalidRequest:
    return InvalidRequest(f"{BODY_PATH}: JSON nested more than {MAX_DEPTH} levels deep")


# --- pydantic's errors to one Anthropic message -------------------------------------------------


def invalid_request(error: ValidationError, field_order: Sequence[str]) -> InvalidRequest:
    """The first error, the top-level fields taken in `field_order`, as `path: message`."""
    errors = error.errors(include_url=False)
    rank = {name: i for i, name in enumerate(field_order)}
    first = min(errors, key=lambda e: rank.get(str(e["loc"][0]), len(rank)) if e["loc"] else -1)
    path, message = _describe(first)
    return InvalidRequest(f"{path}: {message}" if path else f"{BODY_PATH}: {message}")


def _describe(error: ErrorDetails) -> tuple[str, str]:
    path = ".".join(str(part) for part in error["loc"] if not str(part).startswith(_TAG_PREFIX))
    kind, given = error["type"], error["input"]
    if kind in ("model_type", "dataclass_type", "model_attributes_type"):
        return path, "Input should be a valid dictionary"
    if kind == "union_tag_not_found":  # no "type" to tell the union's members apart
        if not isinstance(given, dict):
            return path, "Input should be a valid dictionary"
        return _join(path, "type"), "Field required"
    if kind == "union_tag_invalid":
        return _join(path, "type"), _wrong_tag(error)
    return path, error["msg"]


def _wrong_tag(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    tag = str(ctx.get("tag", ""))
    if tag == NOT_A_STRING_TAG:
        return "Input should be a valid string"
    tag = tag.removeprefix(_TAG_PREFIX)
    expected = re.findall(r"'=([^']*)'", str(ctx.get("expected_tags", "")))
    if set(expected) <= _BLOCK_TYPES and tag not in _BLOCK_TYPES:
        return f'unknown block type "{tag}"'  # a content block this API does not know at all
    return f"Input should be {alternatives(expected)}"


def alternatives(choices: Sequence[str]) -> str:
    """'a', 'b' or 'c': how pydantic lists the values a field accepts."""
    quoted = [f"'{choice}'" for choice in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
