"""Read the external-data references of an ONNX model without loading its weights.

The `onnx` package is only part of the optional conversion extra, and loading a model through
onnxruntime to find a truncated weight file is exactly the failure we want to catch earlier.  So
this module reads the protobuf wire format directly and walks only the fields that can hold a
tensor: graph initializers, sparse initializers, node attributes (including subgraphs) and
functions.  The file is memory-mapped and every other field is skipped by length, so a model with
gigabytes of inline weights costs no more than a small one.

Field numbers come from onnx.proto (stable since IR version 3).
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# ModelProto
_MODEL_GRAPH = 7
_MODEL_FUNCTIONS = 25
# FunctionProto
_FUNCTION_NODE = 7
# GraphProto
_GRAPH_NODE = 1
_GRAPH_INITIALIZER = 5
_GRAPH_SPARSE_INITIALIZER = 15
# NodeProto
_NODE_ATTRIBUTE = 5
# AttributeProto
_ATTR_T = 5
_ATTR_G = 6
_ATTR_TENSORS = 10
_ATTR_GRAPHS = 11
_ATTR_SPARSE_TENSOR = 22
_ATTR_SPARSE_TENSORS = 23
# SparseTensorProto
_SPARSE_VALUES = 1
_SPARSE_INDICES = 2
# TensorProto
_TENSOR_DIMS = 1
_TENSOR_DATA_TYPE = 2
_TENSOR_NAME = 8
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14
_EXTERNAL = 1
# StringStringEntryProto
_ENTRY_KEY = 1
_ENTRY_VALUE = 2

# Bits per element for each TensorProto.DataType.  STRING (8) and UNDEFINED (0) have no fixed size;
# the 6-bit floats (27, 28) are left out because their packing in raw data is not settled.
_BITS_PER_ELEMENT = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64,
    14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
}

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class OnnxFormatError(ValueError):
    """The file is not a readable ONNX protobuf."""


@dataclass(frozen=True)
class ExternalRef:
    """One tensor whose bytes live in another file."""

    tensor: str
    location: str
    offset: int
    length: int | None  # as declared in the model; None when the key is absent
    shape_bytes: int | None  # what dims x data_type need; None when not computable (e.g. strings)

    @property
    def size(self) -> int | None:
        """The number of bytes this tensor reads: the declared length, else the size from its shape."""
        return self.length if self.length is not None else self.shape_bytes

    @property
    def end(self) -> int | None:
        size = self.size
        return None if size is None else self.offset + size


def external_refs(path: Path) -> list[ExternalRef]:
    """Every external-data reference in the ONNX model at `path`, in file order."""
    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # mmap refuses an empty file
            raise OnnxFormatError("the file is empty") from None
    view = memoryview(mapped)
    try:
        refs = list(_model_refs(view))
    except OnnxFormatError as err:
        message = str(err)
    else:
        view.release()
        mapped.close()
        return refs
    # Only now, with the traceback (whose frames hold slices of the map) dropped, can the map close.
    view.release()
    mapped.close()
    raise OnnxFormatError(message)


# ---------------------------------------------------------------- wire format

def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value): an int for scalars, a memoryview for length-delimited."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise OnnxFormatError(f"field {number} runs past the end of its message")
            yield number, wire, buf[pos:pos + size]
            pos += size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > end:
                raise OnnxFormatError(f"field {number} runs past the end of its message")
            yield number, wire, int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        else:  # groups (3, 4) are not used by onnx.proto; anything else is garbage
            raise OnnxFormatError(f"unsupported wire type {wire} for field {number}")


def _messages(buf: memoryview, wanted: int) -> Iterator[memoryview]:
    for number, wire, value in _fields(buf):
        if number == wanted and wire == _LENGTH:
            assert isinstance(value, memoryview)
            yield value


# ---------------------------------------------------------------- ONNX messages

def _model_refs(model: memoryview) -> Iterator[ExternalRef]:
    for number, wire, value in _fields(model):
        if wire != _LENGTH:
            continue
        assert isinstance(value, memoryview)
        if number == _MODEL_GRAPH:
            yield from _graph_refs(value)
        elif number == _MODEL_FUNCTIONS:
            for node in _messages(value, _FUNCTION_NODE):
                yield from _node_refs(node)


def _graph_refs(graph: memoryview) -> Iterator[ExternalRef]:
    for number, wire, value in _fields(graph):
        if wire != _LENGTH:
            continue
        assert isinstance(value, memoryview)
        if number == _GRAPH_INITIALIZER:
            yield from _tensor_ref(value)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            yield from _sparse_refs(value)
        elif number == _GRAPH_NODE:
            yield from _node_refs(value)


def _node_refs(node: memoryview) -> Iterator[ExternalRef]:
    for attribute in _messages(node, _NODE_ATTRIBUTE):
        for number, wire, value in _fields(attribute):
            if wire != _LENGTH:
                continue
            assert isinstance(value, memoryview)
            if number in (_ATTR_T, _ATTR_TENSORS):
                yield from _tensor_ref(value)
            elif number in (_ATTR_G, _ATTR_GRAPHS):
                yield from _graph_refs(value)
            elif number in (_ATTR_SPARSE_TENSOR, _ATTR_SPARSE_TENSORS):
                yield from _sparse_refs(value)


def _sparse_refs(sparse: memoryview) -> Iterator[ExternalRef]:
    for number, wire, value in _fields(sparse):
        if wire == _LENGTH and number in (_SPARSE_VALUES, _SPARSE_INDICES):
            assert isinstance(value, memoryview)
            yield from _tensor_ref(value)


def _tensor_ref(tensor: memoryview) -> Iterator[ExternalRef]:
    """Yield the tensor's reference if its data is external (zero or one item)."""
    name = ""
    dims: list[int] = []
    data_type = 0
    location_kind = 0
    entries: dict[str, str] = {}
    for number, _wire, value in _fields(tensor):
        if number == _TENSOR_DIMS:
            dims.extend(_int64s(value))
        elif number == _TENSOR_DATA_TYPE and isinstance(value, int):
            data_type = value
        elif number == _TENSOR_NAME and isinstance(value, memoryview):
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_DATA_LOCATION and isinstance(value, int):
            location_kind = value
        elif number == _TENSOR_EXTERNAL_DATA and isinstance(value, memoryview):
            key, text = _entry(value)
            entries[key] = text
    if location_kind != _EXTERNAL:
        return
    yield ExternalRef(
        tensor=name,
        location=entries.get("location", ""),
        offset=_parse_int(entries.get("offset"), name, "offset") or 0,
        length=_parse_int(entries.get("length"), name, "length"),
        shape_bytes=_shape_bytes(dims, data_type),
    )


def _int64s(value: int | memoryview) -> list[int]:
    """Repeated int64: one varint per field, or (proto3 default) a packed run of varints."""
    if isinstance(value, int):
        return [_signed(value)]
    out: list[int] = []
    pos = 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(_signed(number))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _entry(buf: memoryview) -> tuple[str, str]:
    key = text = ""
    for number, _wire, value in _fields(buf):
        if isinstance(value, memoryview):
            decoded = bytes(value).decode("utf-8", "replace")
            if number == _ENTRY_KEY:
                key = decoded
            elif number == _ENTRY_VALUE:
                text = decoded
    return key, text


def _parse_int(raw: str | None, tensor: str, key: str) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise OnnxFormatError(f"tensor {tensor}: external data {key} {raw!r} is not a number") from None


def _shape_bytes(dims: list[int], data_type: int) -> int | None:
    bits = _BITS_PER_ELEMENT.get(data_type)
    if bits is None or any(d < 0 for d in dims):
        return None
    # Sub-byte types (int4, uint4, float4, int2) are packed, the last byte padded.
    return math.ceil(math.prod(dims) * bits / 8)


# ---------------------------------------------------------------- declared output shapes

_GRAPH_OUTPUT = 12
_VALUE_INFO_NAME = 1
_VALUE_INFO_TYPE = 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE = 1
_DIM_PARAM = 2


def declared_dim(path: Path, output: str, index: int) -> int | str | None:
    """Dimension `index` of the graph output `output` as the model declares it: a number, a symbolic
    name, or None (no such output or dimension).  Reads only the graph's protobuf, never the weights
    (engine/ort.py: whether the logits are one row per input token)."""
    data = memoryview(path.read_bytes())
    try:
        for graph in _messages(data, _MODEL_GRAPH):
            for info in _messages(graph, _GRAPH_OUTPUT):
                if _text(info, _VALUE_INFO_NAME) != output:
                    continue
                for kind in _messages(info, _VALUE_INFO_TYPE):
                    for tensor in _messages(kind, _TYPE_TENSOR):
                        for shape in _messages(tensor, _TENSOR_TYPE_SHAPE):
                            dims = list(_messages(shape, _SHAPE_DIM))
                            return _dimension(dims[index]) if index < len(dims) else None
    finally:
        data.release()
    return None


def _text(message: memoryview, number: int) -> str | None:
    return next((bytes(v).decode() for v in _messages(message, number)), None)


def _dimension(dim: memoryview) -> int | str | None:
    for number, wire, value in _fields(dim):
        if number == _DIM_VALUE and wire == _VARINT:
            assert isinstance(value, int)
            return value
        if number == _DIM_PARAM and wire == _LENGTH:
            assert isinstance(value, memoryview)
            return bytes(value).decode()
    return None
