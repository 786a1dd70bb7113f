"""
Rewrite ONNX DepthToSpace nodes into one-hot ConvTranspose nodes that OpenCV 4.5 and 4.6 read.

OpenCV DNN before 4.7 (Ubuntu 22.04's 4.5.4, Debian 12's 4.6.0, what rosdep installs) imports
DepthToSpace as a reshape with the sizes it finds while parsing, and with dynamic H and W it
stops: ``Copy dim[4] (which has zero size) is out of the source shape bounds``. It does read a
grouped ConvTranspose with dynamic H and W.

DepthToSpace with block ``b`` puts input channel block ``k = i * b + j`` at offset ``(i, j)`` of
every ``b x b`` output block. A depthwise ConvTranspose with kernel ``b``, stride ``b`` and a
one-hot kernel (1 at ``(i, j)``, 0 elsewhere) writes every input value exactly once, times 1,
at that offset and 0 elsewhere; the ``b * b`` placed tensors summed give the DepthToSpace
output bit for bit (``x * 1 = x``, ``x * 0 = 0`` and adding zeros are exact in float). Each
node is rewritten as:

- ``DCR`` mode fed by a Concat of ``b * b`` equal blocks used only there (seg_ros's plain-op
  max-unpooling, :mod:`seg_ros.tools.unpool`): the Concat goes; ``b * b`` depthwise
  ConvTranspose (``group`` = channels, weight ``(C, 1, b, b)``) and an Add chain;
- any other ``DCR``: ``b * b`` channel Slices first, then the same;
- ``CRD`` mode: one grouped ConvTranspose (``group`` = output channels, weight
  ``(C * b * b, 1, b, b)``), each group reading its own ``b * b`` consecutive channels.

The kernels are Constant nodes, as torch's exporter writes them. The output keeps the
DepthToSpace output's name; no other node, initializer or attribute changes, so the network's
weights stay bit-identical. H and W stay dynamic (ConvTranspose
with stride ``b`` and kernel ``b`` gives ``b`` times the input size, no shape is computed).

API::

    replace_depth_to_space(model: onnx.ModelProto) -> int   # in place; nodes replaced
    one_hot_kernels(channels, block) -> list[np.ndarray]     # (channels, 1, b, b) float32 each

Command line (the embedded model, ``models/enet-synth/enet-synth.onnx``, was rewritten so)::

    python -m seg_ros.tools.depth_to_space MODEL.onnx [--output OUT.onnx]
"""

import argparse
import os
import sys
from typing import Callable, TypeVar

import numpy as np
import onnx
from onnx import helper, numpy_helper

T = TypeVar('T')

CHANNEL_AXES = (1, -3)


def one_hot_kernels(channels: int, block: int) -> list[np.ndarray]:
    """
    Return the depthwise ConvTranspose kernels that place channel block ``k`` at its offset.

    :param channels: channels of each block (the ConvTranspose's ``group``).
    :param block: the DepthToSpace block size ``b``.
    :return: ``b * b`` float32 arrays of shape ``(channels, 1, b, b)``; array ``k`` is 1 at
        ``(k // b, k % b)`` and 0 elsewhere.
    """
    kernels = []
    for k in range(block * block):
        kernel = np.zeros((channels, 1, block, block), np.float32)
        kernel[:, 0, k // block, k % block] = 1.0
        kernels.append(kernel)
    return kernels


def crd_kernel(channels: int, block: int) -> np.ndarray:
    """Return the ``(channels * b * b, 1, b, b)`` kernel of one grouped ConvTranspose (CRD)."""
    stacked = np.stack(one_hot_kernels(channels, block), axis=1)  # (C, b*b, 1, b, b)
    return stacked.reshape(channels * block * block, 1, block, block)


class GraphEditor:
    """
    Bookkeeping for rewriting one model's graph.

    Fresh names, Constant nodes, who makes and reads each tensor;
    :mod:`seg_ros.tools.opencv_compat` rewrites with it too.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.names = ({node.name for node in self.graph.node}
                      | {tensor.name for tensor in self.graph.initializer}
                      | {output for node in self.graph.node for output in node.output})
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        self.producers = {output: node for node in self.graph.node for output in node.output}
        self.graph_outputs = {value.name for value in self.graph.output}

    def fresh(self, base: str) -> str:
        """Return ``base``, or ``base_N``, a name no node, tensor or initializer has yet."""
        name, index = base, 1
        while name in self.names:
            name, index = f'{base}_{index}', index + 1
        self.names.add(name)
        return name

    def constant(self, nodes: list[onnx.NodeProto], base: str, array: np.ndarray) -> str:
        """Append a Constant node holding ``array`` to ``nodes`` (as torch's export writes)."""
        name = self.fresh(base)
        nodes.append(helper.make_node('Constant', [], [name], name=name,
                                      value=numpy_helper.from_array(array, name)))
        return name


class _Rewriter(GraphEditor):
    """One model's DepthToSpace rewrite: the editor, plus what each tensor's shape is."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__(model)
        inferred = onnx.shape_inference.infer_shapes(model)
        values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
        self.shapes = {value.name: [dim.dim_value if dim.HasField('dim_value') else None
                                    for dim in value.type.tensor_type.shape.dim]
                       for value in values}

    def static_channels(self, tensor: str) -> int | None:
        shape = self.shapes.get(tensor) or []
        return shape[1] or None if len(shape) == 4 else None

    def channels(self, tensor: str, node: onnx.NodeProto) -> int:
        shape = self.shapes.get(tensor)
        if self.static_channels(tensor) is None:
            raise ValueError(f'{node.op_type} node {node.name!r}: the channel count of its '
                             f'input {tensor!r} is not known (shape {shape}); a static channel '
                             'dimension is needed')
        return int(shape[1])

    def concat_blocks(self, tensor: str, block: int) -> list[str] | None:
        """Return the inputs of a Concat that only this DepthToSpace reads, or None."""
        concat = self.producers.get(tensor)
        if (concat is None or concat.op_type != 'Concat' or len(concat.input) != block * block
                or self.consumers.get(tensor) != 1 or tensor in self.graph_outputs):
            return None
        axis = next((attr.i for attr in concat.attribute if attr.name == 'axis'), None)
        if axis not in CHANNEL_AXES:
            return None
        counts = {self.static_channels(name) for name in concat.input}
        if len(counts) != 1 or None in counts:
            return None
        return list(concat.input)

    def slices(self, tensor: str, channels: int, block: int, prefix: str) -> list[
            onnx.NodeProto]:
        nodes: list[onnx.NodeProto] = []
        axes = self.constant(nodes, f'{prefix}/axes', np.array([1], np.int64))
        for k in range(block * block):
            starts = self.constant(nodes, f'{prefix}/start{k}', np.array([k * channels], np.int64))
            ends = self.constant(nodes, f'{prefix}/end{k}',
                                 np.array([(k + 1) * channels], np.int64))
            output = self.fresh(f'{prefix}/block{k}')
            nodes.append(helper.make_node('Slice', [tensor, starts, ends, axes], [output],
                                          name=output))
        return nodes

    def dcr(self, node: onnx.NodeProto, block: int) -> tuple[list[onnx.NodeProto], str | None]:
        """Return the nodes replacing a DCR DepthToSpace and the Concat they make unused."""
        prefix = node.name or self.fresh('DepthToSpace')
        blocks = self.concat_blocks(node.input[0], block)
        dropped = None
        nodes: list[onnx.NodeProto] = []
        if blocks is not None:
            channels = self.channels(blocks[0], node)
            dropped = node.input[0]
        else:
            channels = self.channels(node.input[0], node) // (block * block)
            nodes = self.slices(node.input[0], channels, block, prefix)
            blocks = [each.output[0] for each in nodes if each.op_type == 'Slice']
        placed = []
        for k, (tensor, kernel) in enumerate(zip(blocks, one_hot_kernels(channels, block))):
            weight = self.constant(nodes, f'{prefix}/one_hot{k}', kernel)
            output = self.fresh(f'{prefix}/place{k}')
            nodes.append(helper.make_node('ConvTranspose', [tensor, weight], [output],
                                          name=output, group=channels,
                                          kernel_shape=[block, block], strides=[block, block]))
            placed.append(output)
        total = placed[0]
        for k, tensor in enumerate(placed[1:], start=1):
            name = self.fresh(f'{prefix}/sum{k}')
            output = node.output[0] if k == len(placed) - 1 else name
            nodes.append(helper.make_node('Add', [total, tensor], [output], name=name))
            total = output
        return nodes, dropped

    def crd(self, node: onnx.NodeProto, block: int) -> list[onnx.NodeProto]:
        prefix = node.name or self.fresh('DepthToSpace')
        channels = self.channels(node.input[0], node) // (block * block)
        nodes: list[onnx.NodeProto] = []
        weight = self.constant(nodes, f'{prefix}/one_hot', crd_kernel(channels, block))
        nodes.append(helper.make_node('ConvTranspose', [node.input[0], weight], node.output,
                                      name=self.fresh(f'{prefix}/place'), group=channels,
                                      kernel_shape=[block, block], strides=[block, block]))
        return nodes


def replace_depth_to_space(model: onnx.ModelProto) -> int:
    """
    Replace every DepthToSpace of ``model`` (in place) by its one-hot ConvTranspose form.

    :return: how many DepthToSpace nodes were replaced.
    :raises ValueError: a node whose channel count is not static, or whose mode is unknown.
    """
    rewriter = _Rewriter(model)
    graph = model.graph
    rewritten: list[onnx.NodeProto] = []
    dropped: set[str] = set()
    count = 0
    for node in graph.node:
        if node.op_type != 'DepthToSpace' or node.domain not in ('', 'ai.onnx'):
            rewritten.append(node)
            continue
        attributes = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
        block = int(attributes['blocksize'])
        mode = attributes.get('mode', b'DCR')
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode == 'DCR':
            nodes, concat_output = rewriter.dcr(node, block)
            if concat_output:
                dropped.add(concat_output)
        elif mode == 'CRD':
            nodes = rewriter.crd(node, block)
        else:
            raise ValueError(f'DepthToSpace node {node.name!r}: unknown mode {mode!r}')
        rewritten.extend(nodes)
        count += 1
    kept = [node for node in rewritten
            if not (node.op_type == 'Concat' and node.output[0] in dropped)]
    stale = [value for value in graph.value_info if value.name in dropped]
    for value in stale:
        graph.value_info.remove(value)
    del graph.node[:]
    graph.node.extend(kept)
    return count


def rewrite_file(path: str, output: str, rewrite: Callable[[onnx.ModelProto], T]) -> T:
    """
    Load an ONNX file, rewrite it in place, check it and save it; return what ``rewrite`` did.

    :param output: where to save it ('': over ``path``).
    :raises ValueError: the file is not readable ONNX, or the rewrite or the check failed (the
        message names the file).
    """
    try:
        model = onnx.load(path)
    except Exception as error:  # OSError, or protobuf's DecodeError for what is not ONNX
        raise ValueError(f'{path}: not a readable ONNX file: {error}') from error
    try:
        result = rewrite(model)
        onnx.checker.check_model(model)
    except (ValueError, onnx.checker.ValidationError) as error:
        raise ValueError(f'{path}: {error}') from error
    onnx.save(model, output or path)
    return result


def main(argv: list[str] | None = None) -> int:
    """Rewrite a model file's DepthToSpace nodes; print what was done."""
    parser = argparse.ArgumentParser(
        prog='python -m seg_ros.tools.depth_to_space',
        description='Replace the DepthToSpace nodes of an ONNX model by exact one-hot '
                    'ConvTranspose nodes, which OpenCV DNN 4.5 and 4.6 read.')
    parser.add_argument('model', help='the ONNX file')
    parser.add_argument('--output', '-o', default='',
                        help='where to write the result (default: over MODEL)')
    args = parser.parse_args(argv)
    try:
        count = rewrite_file(args.model, args.output, replace_depth_to_space)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(f'{os.path.basename(args.model)}: {count} DepthToSpace node(s) replaced, '
          f'written to {args.output or args.model}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
