"""
Convert a Torch7 ``nn`` segmentation network (e.g. the ENet Cityscapes ``.net``) to ONNX, no torch.

API::

    torch7_to_onnx(net_path, *, fused=True, swap_rb=True, scale=1/255, mean=(0, 0, 0),
                   width=1024, height=512) -> onnx.ModelProto
    save_model(proto, path)        # atomic write (temporary file, then rename)

The file is read with :mod:`seg_ros.core.model.torch7_file` and its module tree is interpreted into
ONNX nodes built with the ``onnx`` package's helpers (weights as float32 initializers). The
forms and metadata are those of ``seg_ros.tools.export`` (the torch-based converter):

- ``fused``: input ``image`` uint8 (1, H, W, 3) BGR -> output ``classes`` uint8 (1, H, W):
  the channel swap, ``(pixel - mean) * scale``, the network, the argmax over classes (first
  maximum on ties) and the cast to uint8 are all in the graph;
- ``scores``: input ``input`` float32 (1, 3, H, W) blob -> output ``scores`` (1, C, H, W).

H and W are symbolic; ``seg_ros.input_width`` / ``seg_ros.input_height`` record the default size.

Semantics kept from Torch7 (the same as ``seg_ros.tools.torch7``):

- SpatialDropout/Dropout in evaluation mode multiply by ``1 - p`` (unless saved with ``v2``);
- SpatialMaxUnpooling goes back to the switches of its 2x2 stride-2 SpatialMaxPooling, written
  with plain operators (SpaceToDepth and Split for the windows' pixels, Max, Equal, Cast,
  Mul, Sub, Concat, DepthToSpace DCR): no MaxUnpool, no ScatterND;
- Padding on the channel dimension, after the data for ``pad > 0``, before it for ``pad < 0``;
- JoinTable / Padding dimensions are 1-based and shift for the batch when the module records
  its unbatched rank (``nInputDims`` / ``nInputDim``);
- SpatialBatchNormalization keeps its own ``eps``; SpatialFullConvolution's ``adjW``/``adjH``
  are the transposed convolution's output padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json
import os
import tempfile
from typing import Any

import numpy as np

from seg_ros.core.model.torch7_file import read_torch7, Torch7Object

# Read by onnxruntime, OpenVINO and OpenCV DNN 4.x alike (as seg_ros.tools.export).
OPSET = 17
# Bumped whenever the graph written changes, so that cached conversions are rebuilt.
CONVERTER_VERSION = 2
FORMAT_FUSED = 'fused'
FORMAT_SCORES = 'scores'
MAX_FUSED_CLASSES = 256
BATCHED_RANK = 4


@dataclass(frozen=True)
class Value:
    """A tensor of the graph being built: its name and channel count (NCHW)."""

    name: str
    channels: int


def modules_of(module: Torch7Object) -> list[Torch7Object]:
    """Return a container's children in order (a Lua array is a table keyed 1, 2, ...)."""
    children = module.get('modules') or {}
    if isinstance(children, dict):
        return [children[key] for key in sorted(children)]
    return list(children)


def batched_dim(dimension: int, recorded_rank: int | None) -> int:
    """Turn a 1-based Torch7 dimension into the 0-based dimension of a batched NCHW tensor."""
    if recorded_rank is not None and recorded_rank > 0 and recorded_rank != BATCHED_RANK:
        dimension += BATCHED_RANK - recorded_rank
    return dimension - 1


class GraphBuilder:
    """Collects ONNX nodes and initializers while a Torch7 module tree is interpreted."""

    def __init__(self) -> None:
        import onnx.helper  # imported on use: only the conversion needs onnx
        import onnx.numpy_helper

        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self.layers: dict[str, int] = {}
        self._count = 0
        # id of a Torch7 SpatialMaxPooling -> the name of the tensor it pooled.
        self._pooled: dict[int, str] = {}

    # ---- graph primitives ---------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        """Return a new unique tensor name."""
        self._count += 1
        return f'{stem}_{self._count}'

    def constant(self, stem: str, array: np.ndarray) -> str:
        """Add an initializer; return its name."""
        name = self.fresh(stem)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], **attributes: Any) -> str:
        """Add a node with one output; return the output name."""
        output = self.fresh(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    # ---- Torch7 modules ----------------------------------------------------------------
    def build(self, module: Any, value: Value | list) -> Value | list:
        """Emit the nodes of one Torch7 module applied to ``value`` (a tensor or a table)."""
        if not isinstance(module, Torch7Object):
            raise ValueError(f'expected a Torch7 module, found {type(module).__name__}')
        self.layers[module.class_name] = self.layers.get(module.class_name, 0) + 1
        emit = getattr(self, 'emit_' + module.type_name, None)
        if emit is None:
            raise ValueError(f'Torch7 module {module.class_name} is not supported by the '
                             'converter')
        return emit(module, value)

    @staticmethod
    def tensor(value: Value | list, module: Torch7Object) -> Value:
        if not isinstance(value, Value):
            raise ValueError(f'{module.class_name} needs a tensor input, got a table')
        return value

    @staticmethod
    def table(value: Value | list, module: Torch7Object) -> list:
        if not isinstance(value, list) or not value:
            raise ValueError(f'{module.class_name} needs a table input')
        return value

    def emit_Sequential(self, module: Torch7Object, value: Value | list) -> Value | list:
        for child in modules_of(module):
            value = self.build(child, value)
        return value

    def emit_ConcatTable(self, module: Torch7Object, value: Value | list) -> list:
        return [self.build(child, value) for child in modules_of(module)]

    def emit_Identity(self, module: Torch7Object, value: Value | list) -> Value | list:
        return value

    def emit_CAddTable(self, module: Torch7Object, value: Value | list) -> Value:
        table = self.table(value, module)
        if len({item.channels for item in table}) != 1:
            raise ValueError('CAddTable adds tensors with different channel counts: '
                             f'{[item.channels for item in table]}')
        total = table[0].name
        for item in table[1:]:
            total = self.node('Add', [total, item.name])
        return Value(total, table[0].channels)

    def emit_JoinTable(self, module: Torch7Object, value: Value | list) -> Value:
        table = self.table(value, module)
        axis = batched_dim(int(module.get('dimension')), module.get('nInputDims'))
        if axis != 1:
            raise ValueError(f'JoinTable is supported on the channel dimension only, got '
                             f'dimension {axis} of NCHW')
        return Value(self.node('Concat', [item.name for item in table], axis=1),
                     sum(item.channels for item in table))

    def emit_SpatialConvolution(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        groups = int(module.get('groups', 1))
        planes_in, planes_out = int(module.get('nInputPlane')), int(module.get('nOutputPlane'))
        if planes_in != value.channels:
            raise ValueError(f'{module.class_name} expects {planes_in} channels, gets '
                             f'{value.channels}')
        kernel = [int(module.get('kH')), int(module.get('kW'))]
        shape = (planes_out, planes_in // groups, *kernel)
        inputs = [value.name, self.constant('weight', weights(module, 'weight', shape))]
        if module.get('bias') is not None:
            inputs.append(self.constant('bias', weights(module, 'bias', (planes_out,))))
        pads = [int(module.get('padH', 0)), int(module.get('padW', 0))]
        output = self.node('Conv', inputs, kernel_shape=kernel, group=groups, pads=pads * 2,
                           strides=[int(module.get('dH', 1)), int(module.get('dW', 1))],
                           dilations=[int(module.get('dilationH', 1)),
                                      int(module.get('dilationW', 1))])
        return Value(output, planes_out)

    emit_SpatialConvolutionMM = emit_SpatialConvolution
    emit_SpatialDilatedConvolution = emit_SpatialConvolution

    def emit_SpatialFullConvolution(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        planes_in, planes_out = int(module.get('nInputPlane')), int(module.get('nOutputPlane'))
        kernel = [int(module.get('kH')), int(module.get('kW'))]
        # Torch7 and ONNX share the (in, out, kH, kW) layout of transposed weights.
        inputs = [value.name,
                  self.constant('weight', weights(module, 'weight',
                                                  (planes_in, planes_out, *kernel)))]
        if module.get('bias') is not None:
            inputs.append(self.constant('bias', weights(module, 'bias', (planes_out,))))
        pads = [int(module.get('padH', 0)), int(module.get('padW', 0))]
        output = self.node('ConvTranspose', inputs, kernel_shape=kernel, pads=pads * 2,
                           strides=[int(module.get('dH', 1)), int(module.get('dW', 1))],
                           output_padding=[int(module.get('adjH', 0)),
                                           int(module.get('adjW', 0))])
        return Value(output, planes_out)

    def emit_SpatialBatchNormalization(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        eps = float(module.get('eps', 1e-5))
        mean = np.asarray(module.get('running_mean'), np.float64).reshape(-1)
        variance = module.get('running_var')
        if variance is None or np.size(variance) == 0:
            # Torch7 before 2016 stored the inverse standard deviation instead.
            inverse_std = np.asarray(module.get('running_std'), np.float64).reshape(-1)
            variance = 1.0 / inverse_std ** 2 - eps
        variance = np.asarray(variance, np.float64).reshape(-1)
        channels = len(mean)
        scale = np.ones(channels)
        bias = np.zeros(channels)
        if module.get('weight') is not None and np.size(module.get('weight')):
            scale = np.asarray(module.get('weight'), np.float64).reshape(-1)
            bias = np.asarray(module.get('bias'), np.float64).reshape(-1)
        inputs = [value.name] + [self.constant(stem, array.astype(np.float32))
                                 for stem, array in (('bn_scale', scale), ('bn_bias', bias),
                                                     ('bn_mean', mean), ('bn_var', variance))]
        return Value(self.node('BatchNormalization', inputs, epsilon=eps), value.channels)

    def emit_PReLU(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        slope = np.asarray(module.get('weight'), np.float32).reshape(-1)
        slope = slope.reshape(-1, 1, 1) if slope.size > 1 else slope
        return Value(self.node('PRelu', [value.name, self.constant('slope', slope)]),
                     value.channels)

    def emit_ReLU(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        return Value(self.node('Relu', [value.name]), value.channels)

    def emit_Sigmoid(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        return Value(self.node('Sigmoid', [value.name]), value.channels)

    def emit_Tanh(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        return Value(self.node('Tanh', [value.name]), value.channels)

    def emit_SpatialDropout(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        if module.get('v2', False):
            return value
        factor = np.array(1.0 - float(module.get('p', 0.5)), np.float32)
        return Value(self.node('Mul', [value.name, self.constant('dropout', factor)]),
                     value.channels)

    emit_Dropout = emit_SpatialDropout

    def emit_SpatialMaxPooling(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        self._pooled[id(module)] = value.name
        kernel = [int(module.get('kH')), int(module.get('kW'))]
        pads = [int(module.get('padH', 0)), int(module.get('padW', 0))]
        output = self.node('MaxPool', [value.name], kernel_shape=kernel, pads=pads * 2,
                           strides=[int(module.get('dH')), int(module.get('dW'))],
                           ceil_mode=int(bool(module.get('ceil_mode', False))))
        return Value(output, value.channels)

    def emit_SpatialMaxUnpooling(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        pool = module.get('pooling')
        if not isinstance(pool, Torch7Object) or id(pool) not in self._pooled:
            raise ValueError('SpatialMaxUnpooling refers to a SpatialMaxPooling that does not '
                             'come before it in the network')
        geometry = [int(pool.get(name, 0)) for name in ('kH', 'kW', 'dH', 'dW', 'padH', 'padW')]
        if geometry != [2, 2, 2, 2, 0, 0]:
            raise ValueError('SpatialMaxUnpooling needs a 2x2 stride-2 unpadded pooling, got '
                             f'kH kW dH dW padH padW {geometry}')
        return Value(self.max_unpool2x2(value.name, self._pooled[id(pool)]), value.channels)

    def max_unpool2x2(self, values: str, pre_pool: str) -> str:
        """Unpool ``values`` to the first maximum of every 2x2 window of ``pre_pool``."""
        # The four pixels of every 2x2 window as four tensors: SpaceToDepth puts pixel (i, j)
        # of each window in channel block 2 i + j (OpenVINO runs strided Slices in its
        # reference kernels, several times slower).
        blocks = self.node('SpaceToDepth', [pre_pool], blocksize=2)
        pixels = [self.fresh('pixel') for _ in range(4)]
        self.nodes.append(self.helper.make_node('Split', [blocks], pixels, axis=1))
        window_max = self.node('Max', [self.node('Max', pixels[:2]),
                                       self.node('Max', pixels[2:])])
        one = self.constant('one', np.array(1.0, np.float32))
        masks = []
        unclaimed = None  # 1 until a window has found its first maximum (later ties are not)
        for pixel in pixels[:-1]:
            is_max = self.node('Cast', [self.node('Equal', [pixel, window_max])],
                               to=self.helper.TensorProto.FLOAT)
            mask = is_max if unclaimed is None else self.node('Mul', [is_max, unclaimed])
            unclaimed = (self.node('Sub', [one, mask]) if unclaimed is None
                         else self.node('Sub', [unclaimed, mask]))
            masks.append(mask)
        masks.append(unclaimed)
        placed = [self.node('Mul', [mask, values]) for mask in masks]
        return self.node('DepthToSpace', [self.node('Concat', placed, axis=1)], blocksize=2,
                         mode='DCR')

    def emit_Padding(self, module: Torch7Object, value: Value | list) -> Value:
        value = self.tensor(value, module)
        dim = batched_dim(int(module.get('dim')), module.get('nInputDim'))
        if dim != 1:
            raise ValueError(f'Padding is supported on the channel dimension only, got '
                             f'dimension {dim} of NCHW')
        if int(module.get('index', 1)) != 1:
            raise ValueError(f'Padding index must be 1 (pad at either end), got '
                             f'{module.get("index")}')
        pad = int(module.get('pad'))
        before, after = max(-pad, 0), max(pad, 0)
        pads = self.constant('pads', np.array([0, before, 0, 0, 0, after, 0, 0], np.int64))
        fill = self.constant('fill', np.array(float(module.get('value', 0)), np.float32))
        return Value(self.node('Pad', [value.name, pads, fill], mode='constant'),
                     value.channels + before + after)


def weights(module: Torch7Object, name: str, shape: Sequence[int]) -> np.ndarray:
    """Return a module's tensor as float32 of ``shape`` (MM/cudnn variants store it flat)."""
    array = np.asarray(module.get(name), np.float32)
    if array.size != int(np.prod(shape)):
        raise ValueError(f'{module.class_name}.{name} has {array.size} values, expected shape '
                         f'{list(shape)}')
    return array.reshape(shape)


def exported_description(width: int, height: int, fused: bool, swap_rb: bool, scale: float,
                         mean: Sequence[float], num_classes: int, output_name: str
                         ) -> dict[str, str]:
    """
    Return the ``seg_ros.description`` metadata entry of an exported model.

    The scores form takes ``(pixel - mean) * scale`` (``mean`` in pixel units, network channel
    order, RGB when ``swap_rb``): ``rescale_factor`` = ``scale``, ``image_mean`` = ``mean *
    scale`` in R, G, B order. The fused form takes the BGR frame and outputs class ids.
    """
    if fused:
        values = {'channel_order': 'BGR', 'output_layout': 'class_ids'}
    else:
        network_mean = [float(value) * scale for value in mean]
        values = {'channel_order': 'RGB' if swap_rb else 'BGR', 'rescale_factor': scale,
                  'image_mean': network_mean if swap_rb else network_mean[::-1],
                  'image_std': [1.0, 1.0, 1.0], 'output_layout': 'NCHW'}
    values.update({'input_width': width, 'input_height': height, 'output_name': output_name,
                   'num_classes': num_classes})
    return {'seg_ros.description': json.dumps(values)}


def torch7_to_onnx(net_path: str | os.PathLike, *, fused: bool = True, swap_rb: bool = True,
                   scale: float | Sequence[float] = 1 / 255,
                   mean: Sequence[float] = (0.0, 0.0, 0.0),
                   width: int = 1024, height: int = 512) -> Any:
    """
    Convert a Torch7 network file to an ONNX model (in memory).

    :param net_path: the Torch7 ``.net``/``.t7`` file (binary ``torch.save``).
    :param fused: the fused form (uint8 BGR frame -> uint8 class map), else raw scores.
    :param swap_rb: fused form: the network takes RGB (the BGR frame's R and B are swapped).
    :param scale: fused form: factor applied after subtracting ``mean``: one, or one a channel
        in network channel order.
    :param mean: fused form: per-channel mean in pixel units, network channel order.
    :param width: default input width recorded in the metadata.
    :param height: default input height recorded in the metadata.
    :return: the checked ``onnx.ModelProto``.
    :raises ValueError: the file is not a Torch7 network of supported modules.
    :raises OSError: the file cannot be read.
    """
    import onnx

    root = read_torch7(net_path)
    builder = GraphBuilder()
    helper = builder.helper
    float_type, uint8_type = onnx.TensorProto.FLOAT, onnx.TensorProto.UINT8
    mean = tuple(float(v) for v in mean)
    if len(mean) != 3:
        raise ValueError(f'mean must have 3 values, got {mean!r}')
    if fused:
        image = helper.make_tensor_value_info('image', uint8_type, [1, 'height', 'width', 3])
        planes = builder.node('Transpose', ['image'], perm=[0, 3, 1, 2])
        order = np.array([2, 1, 0] if swap_rb else [0, 1, 2], np.int64)
        planes = builder.node('Gather', [planes, builder.constant('channel_order', order)],
                              axis=1)
        planes = builder.node('Cast', [planes], to=float_type)
        # One factor, or one a channel (a per-channel std), in network channel order.
        factors = np.broadcast_to(np.asarray(scale, np.float32), (3,)).reshape(1, 3, 1, 1)
        offset = -np.asarray(mean, np.float32).reshape(1, 3, 1, 1) * factors
        planes = builder.node('Mul', [planes, builder.constant('scale', factors)])
        network_input = Value(builder.node('Add', [planes, builder.constant('offset', offset)]),
                              3)
        graph_input = image
    else:
        network_input = Value('input', 3)
        graph_input = helper.make_tensor_value_info('input', float_type,
                                                    [1, 3, 'height', 'width'])
    try:
        scores = builder.build(root, network_input)
    except (TypeError, KeyError, AttributeError, IndexError) as error:
        # A field missing or of the wrong type: a malformed or unexpected module.
        raise ValueError(f'{os.fspath(net_path)!r}: a Torch7 module lacks a field the '
                         f'converter needs or has it in another type ({error!r})') from error
    if not isinstance(scores, Value):
        raise ValueError(f'{net_path!r}: the network outputs a table, not one score tensor')
    num_classes = scores.channels
    if fused:
        if not 1 < num_classes <= MAX_FUSED_CLASSES:
            raise ValueError(f'{net_path!r} has {num_classes} output channels; the fused form '
                             f'needs 2 to {MAX_FUSED_CLASSES} classes')
        class_ids = builder.node('ArgMax', [scores.name], axis=1, keepdims=0)
        builder.nodes.append(helper.make_node('Cast', [class_ids], ['classes'],
                                              to=uint8_type))
        graph_output = helper.make_tensor_value_info('classes', uint8_type,
                                                     [1, 'height', 'width'])
    else:
        builder.nodes.append(helper.make_node('Identity', [scores.name], ['scores']))
        graph_output = helper.make_tensor_value_info('scores', float_type,
                                                     [1, num_classes, 'height', 'width'])
    graph = helper.make_graph(builder.nodes, 'torch7', [graph_input], [graph_output],
                              builder.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='seg_ros.core.model.torch7_onnx',
                              producer_version=str(CONVERTER_VERSION))
    proto.ir_version = 8  # read by every runtime seg_ros supports
    helper.set_model_props(proto, {
        'seg_ros.num_classes': str(num_classes), 'seg_ros.input_width': str(width),
        'seg_ros.input_height': str(height),
        'seg_ros.format': FORMAT_FUSED if fused else FORMAT_SCORES,
        'seg_ros.source': os.path.basename(os.fspath(net_path)),
        'seg_ros.torch7_layers': ', '.join(f'{name} x{count}' for name, count
                                           in sorted(builder.layers.items()))})
    onnx.checker.check_model(proto)
    return proto


def save_model(proto: Any, path: str | os.PathLike) -> None:
    """Write an ONNX model atomically: a reader never sees a half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix='.onnx.part')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(proto.SerializeToString())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
