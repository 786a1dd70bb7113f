"""
A minimal ONNX header reader for machines without the ``onnx`` library.

It splits the protobuf framing (not the weights) to read the graph's inputs, outputs,
initializer names, whether any initializer keeps its data in an external file, and the
``metadata_props``. :mod:`seg_ros.core.model.files` uses the ``onnx`` library instead
wherever it is installed; this keeps the node's hard dependencies to NumPy and OpenCV.
"""

from __future__ import annotations

from typing import Any

# ONNX protobuf field numbers (onnx.proto3) of what the header parser reads.
_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_METADATA = 1, 7, 14
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_ELEM, _TENSOR_TYPE_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError('truncated varint')
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(data: memoryview) -> list[tuple[int, int | memoryview]]:
    """Split one protobuf message into (field number, int or bytes) pairs, in order."""
    fields = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError('field number 0')
        if wire_type == 0:
            value, position = _read_varint(data, position)
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise ValueError('field runs past the end of the data')
            value = data[position:position + length]
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if position + size > len(data):
                raise ValueError('field runs past the end of the data')
            value = int.from_bytes(data[position:position + size], 'little')
            position += size
        else:
            raise ValueError(f'unsupported wire type {wire_type}')
        fields.append((number, value))
    return fields


def _field(fields: list[tuple[int, Any]], number: int, default: Any = None) -> Any:
    return next((value for field_number, value in fields if field_number == number), default)


def _text(value: memoryview) -> str:
    return bytes(value).decode('utf-8')


def _value_info(data: memoryview) -> tuple[str, int, tuple[int | str, ...]]:
    """Return (name, element type, dims) of an ONNX ValueInfoProto."""
    info = _fields(data)
    tensor = _fields(_field(_fields(_field(info, _VALUE_TYPE, b'')), _TYPE_TENSOR, b''))
    dims = []
    for number, dim in _fields(_field(tensor, _TENSOR_TYPE_SHAPE, b'')):
        if number == _SHAPE_DIM:
            dim_fields = _fields(dim)
            param = _field(dim_fields, _DIM_PARAM)
            dims.append(_text(param) if param is not None else _field(dim_fields, _DIM_VALUE, 0))
    return _text(_field(info, _VALUE_NAME, b'')), _field(tensor, _TENSOR_TYPE_ELEM, 0), tuple(dims)


def read_header(data: bytes) -> dict[str, Any]:
    """
    Read an ONNX model's header; ValueError if ``data`` is not one.

    :return: ``inputs`` and ``outputs`` as lists of (name, element type, dims) (weights listed
        among the inputs by old exporters are left out), ``external_data`` (bool) and
        ``metadata`` (dict).
    """
    model = _fields(memoryview(data))
    graph_bytes = _field(model, _MODEL_GRAPH)
    if _field(model, _MODEL_IR_VERSION) is None or not isinstance(graph_bytes, memoryview):
        raise ValueError('no ir_version or graph')
    graph = _fields(graph_bytes)
    weights = set()
    external = False
    for number, tensor in graph:
        if number == _GRAPH_INITIALIZER:
            tensor_fields = _fields(tensor)
            weights.add(_text(_field(tensor_fields, _TENSOR_NAME, b'')))
            external = external or _field(tensor_fields, _TENSOR_DATA_LOCATION, 0) == 1 \
                or _field(tensor_fields, _TENSOR_EXTERNAL_DATA) is not None
    inputs = [_value_info(value) for number, value in graph if number == _GRAPH_INPUT]
    outputs = [_value_info(value) for number, value in graph if number == _GRAPH_OUTPUT]
    metadata = {}
    for number, entry in model:
        if number == _MODEL_METADATA:
            entry_fields = _fields(entry)
            metadata[_text(_field(entry_fields, _ENTRY_KEY, b''))] = _text(
                _field(entry_fields, _ENTRY_VALUE, b''))
    return {'inputs': [value for value in inputs if value[0] not in weights],
            'outputs': outputs, 'external_data': external, 'metadata': metadata}
