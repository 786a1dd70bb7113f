"""
Write a one-node ONNX model without the ``onnx`` package, for tests on a robot's Python stack.

A robot has no ``onnx`` (no rosdep key), so the tests that must run there write the few
protobuf fields of a model themselves (field numbers of onnx.proto3: ModelProto, GraphProto,
NodeProto, AttributeProto, ValueInfoProto, TypeProto, TensorShapeProto). Only what the tests
need: float32 tensors, integer and string attributes, static or symbolic dimensions.

API::

    one_node_model(op_type, attributes, input_dims, output_dims, opset=17) -> bytes
"""

FLOAT = 1
ATTRIBUTE_INT, ATTRIBUTE_STRING = 2, 3


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int | str) -> bytes:
    """Encode one field: a varint for an int, length-delimited for bytes or str."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b''.join(_field(1, _field(1, dim) if isinstance(dim, int) else _field(2, dim))
                     for dim in dims)
    tensor_type = _field(1, FLOAT) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _attribute(name: str, value: int | str) -> bytes:
    if isinstance(value, int):
        return _field(1, name) + _field(3, value) + _field(20, ATTRIBUTE_INT)
    return _field(1, name) + _field(4, value.encode()) + _field(20, ATTRIBUTE_STRING)


def one_node_model(op_type: str, attributes: dict[str, int | str], input_dims: list[int | str],
                   output_dims: list[int | str], opset: int = 17) -> bytes:
    """
    Return the bytes of a model ``input`` -> ``op_type`` -> ``output`` (float32).

    :param attributes: the node's attributes, ints or strings.
    :param input_dims: ints (static) or names (symbolic) of the input's dimensions.
    :param output_dims: the same for the output.
    """
    node = (_field(1, 'input') + _field(2, 'output') + _field(3, op_type.lower())
            + _field(4, op_type)
            + b''.join(_field(5, _attribute(name, value)) for name, value in attributes.items()))
    graph = (_field(1, node) + _field(2, 'one_node')
             + _field(11, _value_info('input', input_dims))
             + _field(12, _value_info('output', output_dims)))
    return (_field(1, 8) + _field(2, 'seg_ros tests') + _field(7, graph)
            + _field(8, _field(1, '') + _field(2, opset)))
