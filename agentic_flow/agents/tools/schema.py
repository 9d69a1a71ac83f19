"""Checks a tool call's input against the tool's JSON schema (the small subset the tools use).

Models send the input; it is untrusted.  A wrong input becomes a message naming the field, which goes
back to the model as an `is_error` tool_result so it can correct the call.  One leniency on purpose:
small models often quote numbers and booleans ("limit": "50"), so such strings are converted.
"""

from __future__ import annotations

from typing import Any

from .result import ToolError

_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}


def validate(schema: dict[str, Any], value: object) -> dict[str, Any]:
    """Returns the input with defaults applied, or raises ToolError naming the first bad field."""
    if not isinstance(value, dict):
        raise ToolError(f"the input must be a JSON object, got {type(value).__name__}")
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = sorted(set(value) - set(properties))
    if unknown and schema.get("additionalProperties") is False:
        raise ToolError(f"unknown field {unknown[0]!r}; the fields are: {', '.join(properties)}")
    for name in schema.get("required", []):
        if name not in value or value[name] is None:
            raise ToolError(f"missing required field {name!r}")
    checked: dict[str, Any] = {}
    for name, spec in properties.items():
        if name in value and value[name] is not None:
            checked[name] = _check_field(name, spec, value[name])
        elif "default" in spec:
            checked[name] = spec["default"]
    return checked


def _check_field(name: str, spec: dict[str, Any], item: object) -> Any:
    kind = spec.get("type", "string")
    item = _coerce(kind, item)
    if not _has_type(kind, item):
        raise ToolError(f"field {name!r} must be {_TYPE_NAMES.get(kind, kind)}, got {_describe(item)}")
    if "enum" in spec and item not in spec["enum"]:
        raise ToolError(f"field {name!r} must be one of {', '.join(map(str, spec['enum']))}; got {item!r}")
    if kind == "integer":
        assert isinstance(item, int)
        if "minimum" in spec and item < spec["minimum"]:
            raise ToolError(f"field {name!r} must be at least {spec['minimum']}, got {item}")
        if "maximum" in spec and item > spec["maximum"]:
            raise ToolError(f"field {name!r} must be at most {spec['maximum']}, got {item}")
    if kind == "array":
        assert isinstance(item, list)
        for element in item:
            if not _has_type(spec.get("items", {}).get("type", "string"), element):
                raise ToolError(
                    f"field {name!r} must be a list of strings, got an element {_describe(element)}"
                )
    return item


def _coerce(kind: str, item: object) -> object:
    if isinstance(item, str):
        text = item.strip()
        if kind == "integer" and text.lstrip("-").isdigit():
            return int(text)
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
    return item


def _has_type(kind: str, item: object) -> bool:
    if kind == "integer":
        return isinstance(item, int) and not isinstance(item, bool)  # bool is an int in Python, not in JSON
    expected = {"string": str, "boolean": bool, "array": list, "object": dict}.get(kind)
    return expected is not None and isinstance(item, expected)


def _describe(item: object) -> str:
    text = repr(item)
    return f"{type(item).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
