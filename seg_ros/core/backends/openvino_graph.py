"""
Rewrites of an OpenVINO model, applied after it is read and before it is compiled.

API::

    first_max_rewrites(model) -> int   # argmax-like TopKs rewritten as reductions: how many

OpenVINO reads an ONNX ``ArgMax`` as ``TopK`` with ``k = 1``. Its CPU kernel for that is slow
on a segmentation network's scores (about 47 ms of ENet's 160 ms at 1024x512 on a 2-core AVX2
machine, by its per-layer profile: nearly a third of the network). The same indices, the first
maximum on ties, come from two channel reductions that take about half of that:

    highest = ReduceMax(scores, axis)            # keep the axis
    rank    = C - c  where scores == highest, else 0
    index   = min(C - ReduceMax(rank, axis), C - 1)

A pixel whose scores are all NaN gets the last class (the ``min``), so the indices stay in range.
Only a ``TopK`` whose ``k`` is the constant 1, mode ``max``, over an axis of static size, on
float32 scores and whose values output nothing reads is rewritten; the model's outputs and their
names are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def first_max_rewrites(model: Any) -> int:
    """Rewrite every argmax-like ``TopK`` of an ``openvino.Model`` in place; return the count."""
    import openvino.opset13 as ops

    count = 0
    for node in model.get_ordered_ops():
        if not _is_argmax(node):
            continue
        data = node.input_value(0)
        rank = data.get_partial_shape().rank.get_length()
        axis = int(node.get_attributes()['axis']) % rank
        classes = data.get_partial_shape()[axis].get_length()
        element, dtype = data.get_element_type(), np.float32
        rank_shape = [1] * rank
        rank_shape[axis] = classes
        highest = ops.reduce_max(data, ops.constant(np.array([axis], np.int64)), True)
        is_max = ops.convert(ops.equal(data, highest), element)
        ranks = ops.constant((classes - np.arange(classes)).astype(dtype).reshape(rank_shape))
        best = ops.reduce_max(ops.multiply(is_max, ranks),
                              ops.constant(np.array([axis], np.int64)), True)
        first = ops.minimum(ops.subtract(ops.constant(np.array(classes, dtype)), best),
                            ops.constant(np.array(classes - 1, dtype)))
        indices = node.output(1)
        names = indices.get_names()
        replacement = ops.convert(first, indices.get_element_type()).output(0)
        indices.replace(replacement)
        if names:
            replacement.get_tensor().add_names(names)
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


def _is_argmax(node: Any) -> bool:
    """Whether ``node`` is a TopK computing only the index of the maximum over a static axis."""
    if node.get_type_name() != 'TopK' or node.get_output_size() != 2:
        return False
    attributes = node.get_attributes()
    if attributes.get('mode') != 'max':
        return False
    k = node.input_value(1).get_node()
    if k.get_type_name() != 'Constant' or np.asarray(k.get_data()).size != 1 \
            or int(np.asarray(k.get_data()).reshape(-1)[0]) != 1:
        return False
    if node.output(0).get_target_inputs():
        return False  # the values are used: not a plain argmax
    shape = node.input_value(0).get_partial_shape()
    if shape.rank.is_dynamic:
        return False
    axis = int(attributes['axis']) % shape.rank.get_length()
    element = node.input_value(0).get_element_type().get_type_name()
    return shape[axis].is_static and element == 'f32'
