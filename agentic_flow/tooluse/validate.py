"""A small JSON Schema validator for tool inputs: the checks the grammar may have had to drop.

jsonschema is not a dependency of this project; this covers the draft 2020-12 keywords that tool schemas
use (type, enum, const, properties/required/additionalProperties, items, bounds, pattern, the combinators,
not, if/then/else, dependentRequired, uniqueItems, local $ref).  Unknown keywords are ignored, as the
specification says.  `validate` returns the list of problems, empty when the value is valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .schema import _resolve

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int,),
}


def validate(value: object, schema: Mapping[str, object] | None) -> list[str]:
    if schema is None:
        return [] if isinstance(value, dict) else ["$: expected an object"]
    errors: list[str] = []
    _check(value, schema, schema, "$", errors)
    return errors


def _is_type(value: object, name: str) -> bool:
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def _check(value: object, schema: object, root: Mapping[str, object], path: str, errors: list[str]) -> None:
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
    if not isinstance(schema, Mapping):
        return
    if isinstance(ref := schema.get("$ref"), str) and (target := _resolve(root, ref)) is not None:
        _check(value, target, root, path, errors)
    _check_generic(value, schema, path, errors)
    _check_combinators(value, schema, root, path, errors)
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, errors)
    elif isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)


def _check_generic(value: object, schema: Mapping[str, object], path: str, errors: list[str]) -> None:
    kinds = schema.get("type")
    names = kinds if isinstance(kinds, list) else [kinds] if isinstance(kinds, str) else []
    if names and not any(_is_type(value, str(n)) for n in names):
        errors.append(f"{path}: expected {' or '.join(map(str, names))}")
    if "const" in schema and not _equal(value, schema["const"]):
        errors.append(f"{path}: must equal {json.dumps(schema['const'])}")
    if isinstance(enum := schema.get("enum"), list) and not any(_equal(value, e) for e in enum):
        errors.append(f"{path}: must be one of {json.dumps(enum)}")


def _equal(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _passes(value: object, schema: object, root: Mapping[str, object]) -> bool:
    found: list[str] = []
    _check(value, schema, root, "$", found)
    return not found


def _check_combinators(
    value: object, schema: Mapping[str, object], root: Mapping[str, object], path: str, errors: list[str]
) -> None:
    all_of = schema.get("allOf")
    for sub in all_of if isinstance(all_of, list) else []:
        _check(value, sub, root, path, errors)
    if isinstance(any_of := schema.get("anyOf"), list) and not any(_passes(value, s, root) for s in any_of):
        errors.append(f"{path}: matches none of anyOf")
    if isinstance(one_of := schema.get("oneOf"), list) and sum(_passes(value, s, root) for s in one_of) != 1:
        errors.append(f"{path}: must match exactly one of oneOf")
    if "not" in schema and _passes(value, schema["not"], root):
        errors.append(f"{path}: must not match the 'not' schema")
    if "if" in schema:
        branch = "then" if _passes(value, schema["if"], root) else "else"
        if branch in schema:
            _check(value, schema[branch], root, path, errors)


def _check_object(
    value: dict[str, object], schema: Mapping[str, object], root: Mapping[str, object], path: str,
    errors: list[str],
) -> None:
    props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    assert isinstance(props, Mapping)
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    patterns = schema.get("patternProperties") if isinstance(schema.get("patternProperties"), Mapping) else {}
    assert isinstance(patterns, Mapping)
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        matched = [s for p, s in patterns.items() if re.search(p, key)]
        if key in props:
            _check(item, props[key], root, f"{path}.{key}", errors)
        for sub in matched:
            _check(item, sub, root, f"{path}.{key}", errors)
        if key not in props and not matched and extra is not True:
            _check(item, extra, root, f"{path}.{key}", errors)
    dependent = schema.get("dependentRequired")
    for key, needs in dependent.items() if isinstance(dependent, Mapping) else ():
        if key in value and any(n not in value for n in needs):
            errors.append(f"{path}: {key!r} requires {needs}")
    _bounds(len(value), schema, "minProperties", "maxProperties", path, errors)


def _check_array(
    value: list[object], schema: Mapping[str, object], root: Mapping[str, object], path: str,
    errors: list[str],
) -> None:
    if isinstance(items := schema.get("items"), (Mapping, bool)):
        for i, item in enumerate(value):
            _check(item, items, root, f"{path}[{i}]", errors)
    _bounds(len(value), schema, "minItems", "maxItems", path, errors)
    distinct = {json.dumps(v, sort_keys=True) for v in value}
    if schema.get("uniqueItems") is True and len(distinct) != len(value):
        errors.append(f"{path}: items must be unique")


def _check_string(value: str, schema: Mapping[str, object], path: str, errors: list[str]) -> None:
    _bounds(len(value), schema, "minLength", "maxLength", path, errors)
    if isinstance(pattern := schema.get("pattern"), str) and not re.search(pattern, value):
        errors.append(f"{path}: does not match {pattern!r}")


def _check_number(value: float, schema: Mapping[str, object], path: str, errors: list[str]) -> None:
    _bounds(value, schema, "minimum", "maximum", path, errors)
    if isinstance(low := schema.get("exclusiveMinimum"), (int, float)) and not value > low:
        errors.append(f"{path}: must be > {low}")
    if isinstance(high := schema.get("exclusiveMaximum"), (int, float)) and not value < high:
        errors.append(f"{path}: must be < {high}")
    if isinstance(step := schema.get("multipleOf"), (int, float)) and step and (value / step) % 1:
        errors.append(f"{path}: must be a multiple of {step}")


def _bounds(
    size: float, schema: Mapping[str, object], low: str, high: str, path: str, errors: list[str]
) -> None:
    if isinstance(lo := schema.get(low), (int, float)) and size < lo:
        errors.append(f"{path}: {low} is {lo}")
    if isinstance(hi := schema.get(high), (int, float)) and size > hi:
        errors.append(f"{path}: {high} is {hi}")
