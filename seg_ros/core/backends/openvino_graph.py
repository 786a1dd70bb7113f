"""
Rewrites of an OpenVINO model, applied after it is read and before it is compiled.

API::

    first_max_rewrites(model) -> int   # argmax-like TopKs rewritten as reductions: how many
    add_confidence_output(model) -> str  # the probability behind the argmax as an output

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

A class-id model (seg_ros's fused conversions of a Torch7 ENet) has no scores to take a
confidence from: :func:`add_confidence_output` adds, beside them, the softmax probability of the
argmax's class over the scores the argmax reads, ``1 / ReduceSum(Exp(scores - ReduceMax))``
((1, 1, H, W) float32 for NCHW scores), as the output
:data:`~seg_ros.core.decode.semantic.CONFIDENCE_OUTPUT`. It is computed in the graph, on
OpenVINO's threads, and only a 4-byte map leaves it (not the scores); its ReduceMax is the one
the argmax's rewrite takes (OpenVINO merges the two). Measured on the real ENet at 1024x512
(2-core AVX2, fastest of 20 interleaved runs): +15 ms of CPU a frame (+6 %); OpenVINO's SoftMax
then ReduceMax instead, +55 ms (it reorders the scores out of the blocked layout the
reductions read). Call it before :func:`first_max_rewrites`, which recognises the argmax it
reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seg_ros.core.decode.semantic import CONFIDENCE_OUTPUT


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


def add_confidence_output(model: Any) -> str:
    """
    Add the probability of the argmax's class as an output of an ``openvino.Model`` in place.

    :return: '' when added, else why not (no argmax, or several: whose confidence is unclear).
    """
    import openvino.opset13 as ops

    argmaxes = [node for node in model.get_ordered_ops() if _is_argmax(node)]
    if len(argmaxes) != 1:
        return (f'the model has {len(argmaxes)} argmax operations over a static class axis of '
                'float32 scores, not one: no confidence')
    node = argmaxes[0]
    data = node.input_value(0)
    axis = int(node.get_attributes()['axis']) % data.get_partial_shape().rank.get_length()
    axes = ops.constant(np.array([axis], np.int64))
    highest = ops.reduce_max(data, axes, True)
    total = ops.reduce_sum(ops.exp(ops.subtract(data, highest)), axes, True)
    probability = ops.divide(ops.constant(np.array(1.0, np.float32)), total)
    probability.output(0).get_tensor().set_names({CONFIDENCE_OUTPUT})
    model.add_results([ops.result(probability)])
    model.validate_nodes_and_infer_types()
    return ''


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
