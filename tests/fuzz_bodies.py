"""Hypothesis strategies for request bodies an attacker or a broken client could send to the Messages API.

`bodies()` draws bytes to POST: mostly a valid request with one field mutated (wrong types, huge numbers,
lone surrogates, deep nesting, unknown block types, empty or oversized strings, odd tool schemas, every
tool_choice form, stop sequences, ...), and some random JSON and raw bytes.  Valid requests ask for at
most a few tokens, so that thousands of them run in CI time.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st


def pick(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of `values`, uniformly.  Not st.sampled_from: Hypothesis steers away from the few values of
    a small list once it has seen them, and the dangerous ones (top_k 2**31, ...) were nearly never sent."""
    return st.randoms(use_true_random=True).map(lambda rnd: copy.deepcopy(rnd.choice(values)))

# A JSON value of any shape, small: what a confused client might send anywhere.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)

LONE_SURROGATES = pick(["\ud800", "\udfff", "a\ud83db", "\udc00\ud800", "x" * 10 + "\udbff"])
ODD_STRINGS = st.one_of(
    st.just(""), st.just(" "), st.just("\x00"), st.just("\u202e\u200b"), st.just("🦙" * 50), LONE_SURROGATES,
    st.text(max_size=40), st.builds(lambda n: "word " * n, pick([2_000, 60_000])),
)
HUGE_INTS = pick([2**31 - 1, 2**31, 2**32, 2**63, 2**64, 10**30, -(2**63), 10**4000])
ODD_NUMBERS = st.one_of(
    HUGE_INTS, pick([0, -1, 1, 49152, 49153, 0.5, 1.0, -0.0, 1e308, -1e308, 5e-324]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# Deeper nesting goes out as RAW_BYTES: json.dumps itself recurses.
DEEP = st.builds(nested, pick([50, 199, 200, 201, 600]))
ODD_VALUES = st.one_of(SCALARS, ODD_STRINGS, ODD_NUMBERS, DEEP, JSON, st.just([]), st.just({}))

BLOCK_TYPES = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
               "server_tool_use", "web_search_tool_result", "", "TEXT", "unknown"]


@st.composite
def content_block(draw: st.DrawFn) -> Any:
    kind = draw(pick(BLOCK_TYPES) | ODD_VALUES)
    block: dict[str, Any] = {"type": kind}
    options = {
        "text": st.text(max_size=30) | ODD_VALUES,
        "source": pick([
            {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
            {"type": "text", "data": "a document"}, {"type": "content", "content": "inner"},
            {"type": "content", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]},
            {"type": "url", "url": "http://x"}, {"type": "file", "file_id": "f"}, {"type": "base64"},
        ]) | ODD_VALUES,
        "id": st.text(max_size=8) | ODD_VALUES, "name": st.text(max_size=8) | ODD_VALUES,
        "input": st.dictionaries(st.text(max_size=5), JSON, max_size=3) | ODD_VALUES,
        "tool_use_id": st.text(max_size=8) | ODD_VALUES,
        "content": st.lists(st.deferred(lambda: content_block()), max_size=2) | ODD_VALUES,
        "is_error": st.booleans() | ODD_VALUES, "thinking": st.text(max_size=8), "signature": st.text(max_size=8),
        "data": st.text(max_size=8), "title": st.text(max_size=8) | ODD_VALUES, "cache_control": JSON,
    }
    for key in draw(st.lists(pick(sorted(options)), max_size=4, unique=True)):
        block[key] = draw(options[key])
    return block


TOOL_SCHEMAS = st.one_of(
    st.just({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    st.just({"type": "object"}), st.just({}), st.just({"$ref": "#"}), st.just({"type": "array", "items": {}}),
    st.builds(lambda d: {"type": "object", "properties": nested(d, {"type": "string"})},
              pick([10, 150])),
    JSON, ODD_VALUES,
)
TOOLS = st.lists(st.fixed_dictionaries(
    {"name": pick(["read_file", "x", ""]) | ODD_VALUES, "input_schema": TOOL_SCHEMAS},
    optional={"description": st.text(max_size=200) | ODD_VALUES,
              "type": pick(["custom", "web_search_20250305", "bash_20250124", "nope"]) | ODD_VALUES},
), max_size=3)
TOOL_CHOICES = st.one_of(
    pick([{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "read_file"},
                     {"type": "tool"}, {"type": "auto", "disable_parallel_tool_use": True}, {"type": "bogus"},
                     {"type": "tool", "name": "no_such_tool"}, {"name": "x"}]),
    ODD_VALUES,
)
# Output schemas (structured output) a hostile client could send: deep, huge, recursive, contradictory.
HOSTILE_SCHEMAS: dict[str, Any] = {
    "deep_nesting": {"type": "object", "properties": {"a": nested(60, {"type": "string"})}},
    "huge_properties": {"type": "object", "properties": {f"p{i}": {"enum": ["x", "y"]} for i in range(3000)},
                        "required": [f"p{i}" for i in range(3000)]},
    "huge_enum": {"type": "object", "properties": {"a": {"enum": [f"v{i}" for i in range(20000)]}}},
    "root_ref": {"$ref": "#"},
    "ref_loop": {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    "recursive_tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}},
                       "required": ["kids"]},
    "remote_ref": {"$ref": "https://example.com/schema.json"},
    "min_over_max_length": {"type": "object", "properties": {"a": {"type": "string", "minLength": 5,
                                                                   "maxLength": 2}}, "required": ["a"]},
    "min_over_max": {"type": "integer", "minimum": 5, "maximum": 1},
    "string_and_integer": {"allOf": [{"type": "string"}, {"type": "integer"}]},
    "empty_enum": {"enum": []},
    "enum_of_wrong_type": {"type": "string", "enum": [1, 2]},
    "no_properties_allowed_but_required": {"type": "object", "additionalProperties": False, "required": ["a"]},
    "unknown_type": {"type": "colour"},
    "properties_list": {"type": "object", "properties": [1, 2]},
    "required_string": {"type": "object", "required": "a"},
    "bad_regex": {"type": "string", "pattern": "("},
    "huge_repeat": {"type": "string", "pattern": "a{100000}"},
    "lookahead": {"type": "string", "pattern": "(?=a)a"},
    "not": {"not": {}},
    "false_subschema": {"type": "object", "properties": {"a": False}, "required": ["a"]},
    "any_json": {},
    "array_root": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2},
    "huge_min_items": {"type": "array", "minItems": 10**9},
    "huge_number": {"type": "integer", "minimum": 10**30},
}
_deep: dict[str, Any] = {"type": "object"}
for _ in range(60):  # 180 levels of JSON nesting: under the body's limit of 200
    _deep = {"type": "object", "properties": {"a": _deep}, "required": ["a"]}
HOSTILE_SCHEMAS["deep_properties"] = _deep
OUTPUT_SCHEMAS = pick(list(HOSTILE_SCHEMAS.values())) | JSON | ODD_VALUES
OUTPUT_CONFIGS = st.one_of(
    st.builds(lambda schema: {"format": {"type": "json_schema", "schema": schema}}, OUTPUT_SCHEMAS),
    pick([{"format": {"type": "json_schema"}}, {"format": {"type": "text"}}, {"format": None}, {"effort": "low"}]),
    JSON,
)
MESSAGE = st.fixed_dictionaries({
    "role": pick(["user", "assistant", "system", "tool", ""]) | ODD_VALUES,
    "content": st.text(max_size=30) | st.lists(content_block(), max_size=3) | ODD_VALUES,
})

# Each field's odd values, beyond ODD_VALUES, which every field also gets.
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": pick(["claude-sonnet-4-5", "smollm2-135m", "qwen2.5-coder-0.5b", "a" * 300]),
    "max_tokens": st.integers(-2, 4) | HUGE_INTS,
    "messages": st.lists(MESSAGE, max_size=4),
    "system": st.text(max_size=30) | st.lists(content_block(), max_size=2),
    "tools": TOOLS,
    "tool_choice": TOOL_CHOICES,
    "thinking": pick([{"type": "enabled", "budget_tokens": 1024}, {"type": "enabled"},
                                 {"type": "adaptive", "display": "omitted"}, {"type": "disabled"}]),
    "temperature": st.floats(-1, 2) | pick([0, 1, "0.5"]),
    "top_p": st.floats(-1, 2),
    "top_k": pick([0, 1, 40, 49152, 49153, 2**31, 2**63, -1]),
    "stop_sequences": st.lists(pick(["\n", "", "Paris", "\ud800", "the"]) | ODD_STRINGS, max_size=4),
    "stream": st.booleans(),
    "metadata": st.just({"user_id": "u"}) | JSON,
    "output_config": OUTPUT_CONFIGS, "output_format": OUTPUT_CONFIGS.map(
        lambda c: c.get("format") if isinstance(c, dict) else c),
    "context_management": JSON, "service_tier": pick(["auto", "standard_only"]),
}


@st.composite
def valid_body(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5", "max_tokens": draw(st.integers(1, 3)),
        "messages": [{"role": "user", "content": draw(pick(["Hi", "What is 2+2?", "Say yes."]))}],
    }
    if draw(st.booleans()):
        body["stream"] = True
    if draw(st.booleans()):
        body["system"] = "Be brief."
    if draw(st.booleans()):
        body["tools"] = [{"name": "read_file", "description": "Read a file.",
                          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
    return body


@st.composite
def mutated_body(draw: st.DrawFn) -> Any:
    """A valid request with one field (at the top, in a message, or in a block) replaced or removed.

    Which field, and whether it gets one of its own odd values or any odd value at all, is chosen
    with plain random numbers: Hypothesis steers away from small finite choices it has already seen,
    and would leave fields like `top_k` with their few dangerous values nearly untried."""
    body = draw(valid_body())
    rnd = draw(st.randoms(use_true_random=True))
    where = rnd.choice(["top"] * 4 + ["message", "block", "remove"])
    if where == "remove":
        body.pop(rnd.choice(sorted(body)))
    elif where == "message":
        message = body["messages"][0]
        message[rnd.choice(["role", "content", "extra"])] = draw(ODD_VALUES | MESSAGE)
    elif where == "block":
        body["messages"][0]["content"] = [{"type": "text", "text": "Hi"}, draw(content_block())]
    else:
        name = rnd.choice(sorted(FIELDS))
        body[name] = draw(FIELDS[name] if rnd.random() < 0.75 else ODD_VALUES)
    tokens = body.get("max_tokens")
    if type(tokens) is int and tokens > 8:
        body["stream"] = True  # the fuzz client drops a stream after a few events: no minutes-long answers
    return body


def encode(value: Any, how: str) -> bytes:
    """JSON text as bytes.  A lone surrogate goes out as a `\\ud800` escape (ascii), or as the
    surrogate's own bytes, which are not UTF-8 (surrogatepass)."""
    if how == "ascii":
        return json.dumps(value).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


RAW_BYTES = st.one_of(
    st.binary(max_size=64),
    pick([b"", b"null", b"[]", b"{", b'{"model":', b"\xff\xfe{}", b'{"a": NaN}', b'{"a": Infinity}',
                     b"[" * 100_000, b'{"model": "m", "max_tokens": ' + b"9" * 5_000 + b"}",
                     b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "\\ud800"}]}',
                     b'{"model": "m"}' * 2, b"\xef\xbb\xbf{}"]),
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(pick(["mutated"] * 7 + ["valid", "json", "raw"]))
    if kind == "raw":
        return draw(RAW_BYTES)
    value = draw(mutated_body() if kind == "mutated" else valid_body() if kind == "valid" else JSON)
    return encode(value, draw(pick(["ascii", "ascii", "utf8"])))


# --- Chat Completions: n, logprobs and top_logprobs with everything they combine with ---------------

CHAT_TOOL = {"type": "function", "function": {"name": "read_file", "description": "Read a file.", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
CHAT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "n": st.integers(-1, 10) | HUGE_INTS,
    "logprobs": st.booleans() | st.none(),
    "top_logprobs": st.integers(-1, 22) | HUGE_INTS,
    "stream": st.booleans(),
    "stream_options": pick([{"include_usage": True}, {"include_usage": False}, {}]),
    "tools": st.just([CHAT_TOOL]),
    "tool_choice": pick(["auto", "none", "required", {"type": "function", "function": {"name": "read_file"}}]),
    "response_format": pick([{"type": "json_object"}, {"type": "text"}, {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}]),
    "stop": st.lists(pick(["\n", "Paris", "the", " "]), max_size=4) | pick(["\n", ""]),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "temperature": st.floats(0, 2),
}


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    """A Chat Completions request of a few tokens with some of CHAT_FIELDS set, and one of them
    (or of n, logprobs, top_logprobs) sometimes given any odd value."""
    body: dict[str, Any] = {"model": "m", "max_tokens": draw(st.integers(1, 3)),
                            "messages": [{"role": "user", "content": draw(pick(["Hi", "What is 2+2?", "Say yes."]))}]}
    for key in draw(st.lists(pick(sorted(CHAT_FIELDS)), max_size=6, unique=True)):
        body[key] = draw(CHAT_FIELDS[key])
    if draw(st.integers(0, 3)) == 0:
        body[draw(pick(["n", "logprobs", "top_logprobs", *sorted(CHAT_FIELDS)]))] = draw(ODD_VALUES)
    return json.dumps(body).encode()
