"""Tool input schemas made safe for llguidance, and a validator for what the grammar could not enforce.

Found by trying each feature on onnxruntime-genai 0.18 (scripts/tooluse_probe.py --schemas): llguidance
refuses, at Generator creation, `not`, `if`/`then`/`else`, `dependentRequired`, `dependentSchemas`,
`uniqueItems`, unknown `format`s, regex look-around, and `$ref`s it cannot resolve; it accepts `$ref` to
local `$defs`, `patternProperties`, `contains`, `propertyNames`, `multipleOf`.  A lower bound
(`minItems`, `minLength`, ...) above MIN_BOUND_MAX is cut too: llguidance expands it up front.  A refused feature is cut
out of the copy given to the grammar (the rest still constrains) and `PreparedSchema.exact` turns False:
the parsed input is then checked by `validate`, so the request never fails with a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

UNSUPPORTED_KEYS = frozenset(
    {"not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies", "uniqueItems",
     "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"}
)
KNOWN_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid", "uri"}
)
JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# A lower bound past this is cut: llguidance builds its grammar for it up front (minItems 10**9 took the
# inference process past its memory, killed), and no reply of a few thousand tokens could meet it anyway.
MIN_BOUND_MAX = 10_000
_MIN_BOUNDS = frozenset({"minItems", "minLength", "minProperties", "minContains"})
_LOOKAROUND = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")
# Subschema keys whose values are schemas, lists of schemas, or maps of schemas.
_ONE = ("items", "additionalProperties", "contains", "propertyNames", "additionalItems")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions")


@dataclass(frozen=True)
class PreparedSchema:
    schema: Mapping[str, object]  # what the grammar gets
    cut: tuple[str, ...] = ()  # the keywords cut out (each once, in the order met)

    @property
    def exact(self) -> bool:
        """False: something was cut, validate the parsed input afterwards."""
        return not self.cut


def prepare(schema: Mapping[str, object] | None) -> PreparedSchema:
    """A tool's input schema: always an object."""
    if schema is None:
        return PreparedSchema({"type": "object"})
    prepared = prepare_any(schema)
    cleaned = prepared.schema
    if cleaned.get("type", "object") != "object":
        cleaned = {**cleaned, "type": "object"}  # a tool's input is always an object
    return PreparedSchema(cleaned, prepared.cut)


def prepare_any(schema: Mapping[str, object]) -> PreparedSchema:
    """Any schema (a structured output's may describe any JSON value), made safe the same way."""
    cut: list[str] = []
    cleaned = _clean(schema, schema, cut)
    _close_objects(cleaned)
    return PreparedSchema(cleaned if isinstance(cleaned, dict) else {}, tuple(dict.fromkeys(cut)))


def _clean(node: object, root: Mapping[str, object], cut: list[str]) -> object:
    if not isinstance(node, Mapping):
        return node
    out: dict[str, object] = {}
    for key, value in node.items():
        if _refused(key, value, root):
            cut.append(key)
        elif key in _ONE:
            out[key] = _clean(value, root, cut)
        elif key in _MANY:
            if isinstance(value, list):
                out[key] = [_clean(v, root, cut) for v in value]
            else:  # a malformed schema (anyOf: {...}): cut it here, the input is validated afterwards
                cut.append(key)
        elif key in _MAP:
            if isinstance(value, Mapping):
                out[key] = {k: _clean(v, root, cut) for k, v in value.items()}
            else:  # the fuzz test sent "properties": [...]; the walkers below expect a map
                cut.append(key)
        else:
            out[key] = value
    return out


def _close_objects(node: object) -> None:
    """Objects with declared properties and no rule for others get `additionalProperties: false`: still
    valid against the tool's schema, and it stops a small model from inventing keys (the 135M added
    `"type": "string"` to a Bash call).  Only subschemas are visited (never `const`/`default` values),
    and all of them are fresh copies made by _clean."""
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node and "patternProperties" not in node:
        node["additionalProperties"] = False
    for key in _ONE:
        _close_objects(node.get(key))
    for key in _MANY:
        for sub in node.get(key) or ():
            _close_objects(sub)
    for key in _MAP:
        for sub in (node.get(key) or {}).values():
            _close_objects(sub)


def _refused(key: str, value: object, root: Mapping[str, object]) -> bool:
    if key in UNSUPPORTED_KEYS:
        return True
    if key in _MIN_BOUNDS:
        return not isinstance(value, int) or value > MIN_BOUND_MAX
    if key == "format":
        return value not in KNOWN_FORMATS
    if key == "pattern":
        return not isinstance(value, str) or bool(_LOOKAROUND.search(value))
    if key == "$ref":
        return not (isinstance(value, str) and _resolve(root, value) is not None)
    if key == "type":
        names = value if isinstance(value, list) else [value]
        return not all(isinstance(n, str) and n in JSON_TYPES for n in names)
    return False


def _resolve(root: Mapping[str, object], ref: str) -> object | None:
    if not ref.startswith("#"):
        return None  # remote references are never fetched
    node: object = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
