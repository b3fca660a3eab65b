"""The external data files an ONNX model makes ONNX Runtime load, read without the onnx package.

A model saved with external data keeps its weights in other files (``model.onnx.data``)
named inside the model by each tensor's ``external_data`` entry with key ``location``.
A bundle's checksum must cover those files too, so this module lists them by walking
the protobuf wire format: only length-delimited fields on the path to a tensor are
decoded, everything else (raw weights included) is skipped by length.

References
----------
ONNX ``onnx.proto3``: ModelProto.graph = 7, .functions = 25; GraphProto.node = 1,
.initializer = 5, .sparse_initializer = 15; NodeProto.attribute = 5; AttributeProto.t = 5,
.g = 6, .tensors = 10, .graphs = 11, .sparse_tensor = 22, .sparse_tensors = 23;
FunctionProto.node = 7; SparseTensorProto.values = 1, .indices = 2;
TensorProto.external_data = 13 (StringStringEntryProto key = 1, value = 2).
Protocol Buffers encoding (varints; wire types 0, 1, 2, 5).
"""

from __future__ import annotations

from pathlib import Path

MODEL, GRAPH, NODE, ATTRIBUTE, FUNCTION, TENSOR, SPARSE, ENTRY = range(8)
# For each message kind: field number -> kind of the embedded message.
_CHILDREN = {
    MODEL: {7: GRAPH, 25: FUNCTION},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    FUNCTION: {7: NODE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    TENSOR: {13: ENTRY},
}
MAX_DEPTH = 64  # nested subgraphs deeper than this are not a real model


class OnnxFormatError(ValueError):
    """The bytes are not a protobuf-encoded ONNX model."""


def _varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxFormatError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview, start: int, end: int):
    """Yield ``(field number, start, end)`` of each length-delimited field in a message."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise OnnxFormatError("a field runs past the end of its message")
            yield number, pos, pos + length
            pos += length
        else:
            raise OnnxFormatError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise OnnxFormatError("a field runs past the end of its message")


def external_data_locations(model_path: str | Path) -> list[str]:
    """Return the ``location`` of every external data file the model names, sorted, unique.

    Raises
    ------
    OnnxFormatError
        When the file is not a well-formed protobuf message.
    """
    data = memoryview(Path(model_path).read_bytes())
    found: set[str] = set()
    stack = [(MODEL, 0, len(data), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise OnnxFormatError("subgraphs nested too deeply")
        if kind == ENTRY:
            entry = {n: bytes(data[s:e]) for n, s, e in _fields(data, start, end)}
            if entry.get(1) == b"location" and 2 in entry:
                found.add(entry[2].decode("utf-8", "replace"))
            continue
        children = _CHILDREN[kind]
        for number, s, e in _fields(data, start, end):
            child = children.get(number)
            if child is not None:
                stack.append((child, s, e, depth + 1))
    return sorted(found)
