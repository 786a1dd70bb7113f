"""
Rewrite an ONNX model into a form that OpenCV DNN 4.5.4 (ROS 2 Humble's) and 4.6 read, exactly.

Three rewrites, each exact (the same numbers on every runtime) and each leaving every initializer,
attribute and metadata of the network as it was:

- DepthToSpace -> one-hot depthwise ConvTranspose nodes (:mod:`seg_ros.tools.depth_to_space`):
  OpenCV before 4.7 cannot import DepthToSpace with dynamic H and W.
- ``Cast(Equal(x, M), FLOAT)``, where ``M`` is a Max (or a tree of Max nodes) one of whose inputs
  is ``x`` -> a zero test of ``x - M`` made of Sub, Mul, Add and Max (below): OpenCV 4.5.4 has no
  Equal layer (nor Greater, Sign, Ceil, or Min/Max with a constant). That is how the
  max-unpooling of :mod:`seg_ros.tools.unpool` marks the maximum of each 2x2 window.
- ``Sub(C, x)`` with a constant ``C`` -> ``Add(Mul(x, -1), C)``: OpenCV 4.5.4 computes the former
  as ``x - C``. ``-x`` is exact and ``C + (-x)`` is ``C - x`` by definition of float subtraction.

The zero test. ``M`` is the maximum of values that include ``x``, so ``n = x - M <= 0``, and in
IEEE float with subnormals ``n`` is 0 exactly when ``x == M`` (a difference of two finite floats
rounds to 0 only when it is 0). With ``zeros = M - M`` and ``minus_ones = zeros - 1`` (tensors:
OpenCV 4.5.4 has Max only between tensors), made once for each ``M``::

    clamped = Max(n * 2**126, minus_ones)   0 if n == 0; else in [-1, -2**-23]: a normal n
                                            gives <= -1 (or -inf) and is clamped to -1, a
                                            subnormal n = -k * 2**-149 gives -k * 2**-23
    mask    = Max(clamped * 2**23 + 1, zeros)   1 if clamped == 0; else 1 - k or less, so +0

Every step is exact: multiplying by a power of two rounds nothing (an overflow to -inf is clamped
by the Max), ``clamped * 2**23`` is 0 or an integer in ``[-2**23, -1]``, adding 1 to it is exact.
So ``mask`` is the 1.0 / +0.0 that ``Cast(Equal)`` gives, for every finite ``x`` and ``M`` (zeros
of either sign compare equal in both); with Max against ``zeros`` rather than Relu, a runtime whose
Relu writes -0.0 for a negative input (OpenCV) still gives +0.0. No intermediate is infinite or
NaN for finite inputs (OpenCV's Relu turns -inf into NaN), and the two scalings never meet in one
constant: a runtime that fuses consecutive multiplications (OpenVINO) would make ``2**149``, +inf
in float32. A runtime that flushes subnormals to zero (OpenCV DNN does) flushes them in Equal's
inputs as well; the two forms can then differ only where two values of a window both lie below
``2**-102`` (about 2e-31) and differ by less than ``2**-126``. Infinite or NaN ``x`` or ``M`` are
outside the rewrite (``inf - inf`` is NaN): a network fed finite inputs whose activations stay
finite never has them.

An Equal not of that shape (no Max of its other input, a Cast to another type, read by another
node, not float32) is left as it is, and counted.

API::

    make_opencv_compatible(model: onnx.ModelProto) -> dict[str, int]  # all three, in place
    replace_max_equal(model) -> tuple[int, int]     # in place: (rewritten, left as they were)
    replace_constant_minuend(model) -> int          # in place: Sub(C, x) rewritten
    zero_test(x, maximum) -> np.ndarray             # the same steps, in NumPy

Command line (the embedded model, ``models/enet-synth/enet-synth.onnx``, was rewritten so)::

    python -m seg_ros.tools.opencv_compat MODEL.onnx [--output OUT.onnx]
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import helper, TensorProto

from seg_ros.tools.depth_to_space import GraphEditor, replace_depth_to_space, rewrite_file

# n * STEP_SCALE <= -1 for every normal float32 n < 0; a subnormal n becomes a multiple of 2**-23.
STEP_SCALE = 2.0 ** 126
# ... which times SUBNORMAL_SCALE is an integer, -1 or less.
SUBNORMAL_SCALE = 2.0 ** 23
ONNX_DOMAINS = ('', 'ai.onnx')


def zero_test(x: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """
    Return 1.0 where ``x == maximum``, else 0.0, by the rewrite's float32 steps.

    :param x: float32 values.
    :param maximum: float32 values ``>= x`` (a maximum of values including ``x``).
    :return: float32 array of the broadcast shape.
    """
    x, maximum = np.asarray(x, np.float32), np.asarray(maximum, np.float32)
    zeros = maximum - maximum
    minus_ones = zeros - np.float32(1)
    with np.errstate(over='ignore'):  # n * 2**126 overflows to -inf for n <= -4; clamped
        clamped = np.maximum((x - maximum) * np.float32(STEP_SCALE), minus_ones)
    return np.maximum(clamped * np.float32(SUBNORMAL_SCALE) + np.float32(1), zeros)


class _Rewriter(GraphEditor):
    """One model's Equal and Sub rewrites: the editor, plus each tensor's element type."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__(model)
        inferred = onnx.shape_inference.infer_shapes(model)
        values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
        self.types = {value.name: value.type.tensor_type.elem_type for value in values}
        self.types.update({tensor.name: tensor.data_type for tensor in model.graph.initializer})
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.constants = {tensor.name: tensor for tensor in model.graph.initializer}
        for node in self.graph.node:
            if node.op_type == 'Constant' and node.domain in ONNX_DOMAINS:
                value = next((attr.t for attr in node.attribute if attr.name == 'value'), None)
                if value is not None:
                    self.constants[node.output[0]] = value
        # Per maximum: its zeros and minus_ones tensors, made where it is first tested.
        self.fillers: dict[str, tuple[str, str]] = {}

    def max_inputs(self, tensor: str) -> set[str]:
        """Return the tensors a tree of Max nodes producing ``tensor`` takes the maximum of."""
        producer = self.producers.get(tensor)
        if producer is None or producer.op_type != 'Max' or producer.domain not in ONNX_DOMAINS:
            return set()
        inputs = set(producer.input)
        for name in producer.input:
            inputs |= self.max_inputs(name)
        return inputs

    def float_cast(self, node: onnx.NodeProto) -> onnx.NodeProto | None:
        """Return the one Cast to float32 that alone reads the Equal ``node``, or None."""
        readers = self.readers.get(node.output[0], [])
        if len(readers) != 1 or node.output[0] in self.graph_outputs:
            return None
        cast = readers[0]
        to = next((attr.i for attr in cast.attribute if attr.name == 'to'), None)
        return cast if cast.op_type == 'Cast' and to == TensorProto.FLOAT else None

    def operands(self, node: onnx.NodeProto) -> tuple[str, str] | None:
        """Return ``(value, maximum)`` of an Equal between a float32 Max and one of its inputs."""
        first, second = node.input
        if any(self.types.get(name) != TensorProto.FLOAT for name in (first, second)):
            return None
        if first in self.max_inputs(second):
            return first, second
        if second in self.max_inputs(first):
            return second, first
        return None

    def add(self, nodes: list[onnx.NodeProto], op_type: str, inputs: list[str], prefix: str,
            output: str | None = None) -> str:
        """Append a node to ``nodes``; return its output (a fresh name unless given)."""
        name = self.fresh(f'{prefix}/{op_type}')
        nodes.append(helper.make_node(op_type, inputs, [output or name], name=name))
        return output or name

    def scalar(self, nodes: list[onnx.NodeProto], prefix: str, value: float) -> str:
        return self.constant(nodes, f'{prefix}/Constant', np.array(value, np.float32))

    def zero_test(self, value: str, maximum: str, output: str, prefix: str) -> list[
            onnx.NodeProto]:
        """Return nodes writing :func:`zero_test` of ``value`` and ``maximum`` to ``output``."""
        nodes: list[onnx.NodeProto] = []
        if maximum not in self.fillers:
            base = f'{maximum}/fill'
            zeros = self.add(nodes, 'Sub', [maximum, maximum], base)
            minus_ones = self.add(nodes, 'Sub', [zeros, self.scalar(nodes, base, 1.0)], base)
            self.fillers[maximum] = zeros, minus_ones
        zeros, minus_ones = self.fillers[maximum]
        difference = self.add(nodes, 'Sub', [value, maximum], prefix)
        scaled = self.add(nodes, 'Mul', [difference, self.scalar(nodes, prefix, STEP_SCALE)],
                          prefix)
        clamped = self.add(nodes, 'Max', [scaled, minus_ones], prefix)
        widened = self.add(nodes, 'Mul', [clamped, self.scalar(nodes, prefix, SUBNORMAL_SCALE)],
                           prefix)
        shifted = self.add(nodes, 'Add', [widened, self.scalar(nodes, prefix, 1.0)], prefix)
        self.add(nodes, 'Max', [shifted, zeros], prefix, output)
        return nodes

    def negated_sum(self, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        """Return ``Add(Mul(x, -1), C)`` for a float32 ``Sub(C, x)``, or None for another Sub."""
        minuend, subtrahend = node.input
        constant = self.constants.get(minuend)
        if (constant is None or constant.data_type != TensorProto.FLOAT
                or subtrahend in self.constants):
            return None
        prefix = node.name or self.fresh('Sub')
        nodes: list[onnx.NodeProto] = []
        negated = self.add(nodes, 'Mul', [subtrahend, self.scalar(nodes, prefix, -1.0)], prefix)
        self.add(nodes, 'Add', [negated, minuend], prefix, node.output[0])
        return nodes


def replace_max_equal(model: onnx.ModelProto) -> tuple[int, int]:
    """
    Replace (in place) every ``Cast(Equal(x, Max(..., x, ...)), FLOAT)`` by its exact zero test.

    :return: how many Equal nodes were rewritten, and how many were left as they were (not of
        that shape).
    """
    rewriter = _Rewriter(model)
    graph = model.graph
    rewritten: list[onnx.NodeProto] = []
    casts: set[str] = set()  # outputs of the Casts that the zero tests now write
    equals: set[str] = set()
    count = left = 0
    for node in graph.node:
        if node.op_type == 'Cast' and node.output[0] in casts:
            continue
        if node.op_type != 'Equal' or node.domain not in ONNX_DOMAINS:
            rewritten.append(node)
            continue
        cast = rewriter.float_cast(node)
        operands = rewriter.operands(node)
        if cast is None or operands is None:
            rewritten.append(node)
            left += 1
            continue
        prefix = node.name or rewriter.fresh('Equal')
        rewritten.extend(rewriter.zero_test(*operands, cast.output[0], prefix))
        casts.add(cast.output[0])
        equals.add(node.output[0])
        count += 1
    for value in [value for value in graph.value_info if value.name in equals]:
        graph.value_info.remove(value)
    del graph.node[:]
    graph.node.extend(rewritten)
    return count, left


def replace_constant_minuend(model: onnx.ModelProto) -> int:
    """
    Replace (in place) every float32 ``Sub(C, x)`` with a constant ``C`` by ``Add(Mul(x, -1), C)``.

    :return: how many Sub nodes were rewritten.
    """
    rewriter = _Rewriter(model)
    graph = model.graph
    rewritten: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        nodes = (rewriter.negated_sum(node) if node.op_type == 'Sub'
                 and node.domain in ONNX_DOMAINS else None)
        rewritten.extend(nodes or [node])
        count += nodes is not None
    del graph.node[:]
    graph.node.extend(rewritten)
    return count


def make_opencv_compatible(model: onnx.ModelProto) -> dict[str, int]:
    """
    Apply the three rewrites to ``model`` in place.

    :return: how many nodes each rewrite replaced: ``{'depth_to_space': n, 'equal': n,
        'equal_left': left as they were, 'sub': n}``.
    :raises ValueError: a DepthToSpace whose channel count is not static, or of an unknown mode.
    """
    depth_to_space = replace_depth_to_space(model)
    equal, left = replace_max_equal(model)
    subtractions = replace_constant_minuend(model)
    return {'depth_to_space': depth_to_space, 'equal': equal, 'equal_left': left,
            'sub': subtractions}


def main(argv: list[str] | None = None) -> int:
    """Rewrite a model file into the form OpenCV 4.5.4 and 4.6 read; print what was done."""
    parser = argparse.ArgumentParser(
        prog='python -m seg_ros.tools.opencv_compat',
        description='Rewrite an ONNX model, exactly, into the form OpenCV DNN 4.5.4 and 4.6 '
                    'read: DepthToSpace as one-hot ConvTranspose, the Equal of a max-unpooling '
                    'mask as Sub/Mul/Add/Max, Sub(constant, x) as Add(Mul(x, -1), constant).')
    parser.add_argument('model', help='the ONNX file')
    parser.add_argument('--output', '-o', default='',
                        help='where to write the result (default: over MODEL)')
    args = parser.parse_args(argv)
    try:
        counts = rewrite_file(args.model, args.output, make_opencv_compatible)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    output = args.output or args.model
    left = (f'; {counts["equal_left"]} other Equal node(s) left as they are (OpenCV 4.5.4 '
            'cannot import them)' if counts['equal_left'] else '')
    print(f'{os.path.basename(args.model)}: {counts["depth_to_space"]} DepthToSpace, '
          f'{counts["equal"]} Equal and {counts["sub"]} Sub(constant, x) node(s) '
          f'replaced{left}, written to {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
