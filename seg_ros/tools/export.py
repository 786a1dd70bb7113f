"""
Export a PyTorch segmentation network to ONNX, as raw scores or fused with its pre/post-processing.

API::

    export_onnx(model, path, width, height, *, fused: bool, swap_rb=True, scale=1/255,
                mean=(0, 0, 0), num_classes=None, metadata=None, dynamic=True) -> onnx.ModelProto

Forms (``seg_ros.format`` in the model's metadata_props):

- ``'scores'``: input ``input`` float32 (1, 3, H, W) -> output ``scores`` float32 (1, C, H, W).
  The caller prepares the input as ``cv2.dnn.blobFromImage(frame, scale, (W, H), mean, swap_rb)``.
- ``'fused'``: input ``image`` uint8 (1, H, W, 3) BGR, exactly the frame cv2 gives ->
  output ``classes`` uint8 (1, H, W) class map. Inside the graph: the channel swap, then
  ``(pixel - mean) * scale`` (cv2.blobFromImage's convention: ``mean`` in the network's channel
  order, in pixel units), the network, the argmax over classes (first maximum on ties) and the
  cast to uint8. A frame then leaves the runtime as H*W bytes instead of C*H*W floats.

metadata_props always hold ``seg_ros.num_classes``, ``seg_ros.input_width``,
``seg_ros.input_height``, ``seg_ros.format`` and ``seg_ros.description`` (the model
description, :mod:`seg_ros.core.model.description`), plus the ``metadata`` given. With ``dynamic``,
H and W are symbolic dimensions (``height``/``width``; the network may need multiples of 8).
"""

from collections.abc import Sequence
import os
import warnings

import onnx
import torch
from torch import nn

from seg_ros.core.model.torch7_onnx import exported_description

# ONNX opset; 17 is read by onnxruntime, OpenVINO and OpenCV DNN 4.x alike.
OPSET = 17
FORMAT_SCORES = 'scores'
FORMAT_FUSED = 'fused'
# uint8 class maps can hold at most this many classes.
MAX_FUSED_CLASSES = 256


class FusedSegmenter(nn.Module):
    """Wrap a scores network: uint8 (N, H, W, 3) BGR frames -> uint8 (N, H, W) class maps."""

    def __init__(self, network: nn.Module, *, swap_rb: bool, scale: float,
                 mean: Sequence[float]) -> None:
        super().__init__()
        self.network = network
        # The BGR -> network channel order becomes a gather on the channel axis.
        order = [2, 1, 0] if swap_rb else [0, 1, 2]
        self.register_buffer('channel_order', torch.tensor(order, dtype=torch.int64),
                             persistent=False)
        # (pixel - mean) * scale, cv2.blobFromImage's order, as one multiply-add.
        mean_tensor = torch.tensor(list(mean), dtype=torch.float32).reshape(1, 3, 1, 1)
        self.register_buffer('scale', torch.tensor(float(scale), dtype=torch.float32),
                             persistent=False)
        self.register_buffer('offset', -mean_tensor * float(scale), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        planes = image.permute(0, 3, 1, 2).index_select(1, self.channel_order)
        scores = self.network(planes.to(torch.float32) * self.scale + self.offset)
        return scores.argmax(dim=1).to(torch.uint8)


def drop_initializer_identities(graph: onnx.GraphProto) -> None:
    """
    Remove the Identity nodes that merely alias an initializer.

    Constant folding deduplicates equal weights (e.g. PReLU slopes still at their initial value)
    and leaves an Identity per duplicate; consumers can read the initializer directly.
    """
    initializers = {tensor.name for tensor in graph.initializer}
    graph_outputs = {value.name for value in graph.output}
    aliases = {node.output[0]: node.input[0] for node in graph.node
               if node.op_type == 'Identity' and node.input[0] in initializers
               and node.output[0] not in graph_outputs}
    kept = [node for node in graph.node
            if not (node.op_type == 'Identity' and node.output[0] in aliases)]
    for node in kept:
        for index, name in enumerate(node.input):
            if name in aliases:
                node.input[index] = aliases[name]
    del graph.node[:]
    graph.node.extend(kept)


def check_mean(mean: Sequence[float]) -> tuple[float, float, float]:
    """Return ``mean`` as 3 floats, or raise ValueError naming it."""
    values = tuple(float(v) for v in mean)
    if len(values) != 3:
        raise ValueError(f'mean must have 3 values, got {mean!r}')
    return values


def export_onnx(model: nn.Module, path: str | os.PathLike, width: int, height: int, *,
                fused: bool, swap_rb: bool = True, scale: float = 1 / 255,
                mean: Sequence[float] = (0, 0, 0), num_classes: int | None = None,
                metadata: dict[str, str] | None = None,
                dynamic: bool = True) -> onnx.ModelProto:
    """
    Export ``model`` (float32 NCHW images -> (N, C, H, W) scores) to an ONNX file.

    :param model: the network; it is put in eval mode.
    :param path: the ONNX file to write.
    :param width: input width used to trace the graph (and recorded as the default size).
    :param height: input height used to trace the graph (and recorded as the default size).
    :param fused: write the fused form (uint8 BGR frame -> uint8 class map), else raw scores.
    :param swap_rb: fused form: feed the network RGB (True) or BGR (False).
    :param scale: fused form: factor applied after subtracting ``mean``.
    :param mean: fused form: per-channel mean in pixel units, network channel order.
    :param num_classes: number of classes; default: ``model.num_classes`` or the traced output.
    :param metadata: extra metadata_props (string keys and values).
    :param dynamic: make H and W symbolic dimensions.
    :return: the ONNX model written.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'width and height must be positive, got {width}x{height}')
    mean = check_mean(mean)
    model = model.eval()
    probe = torch.zeros(1, 3, height, width)
    with torch.no_grad():
        traced_classes = int(model(probe).shape[1])
    if num_classes is None:
        num_classes = int(getattr(model, 'num_classes', traced_classes))
    if num_classes != traced_classes:
        raise ValueError(f'num_classes is {num_classes} but the model outputs '
                         f'{traced_classes} channels')
    if fused:
        if num_classes > MAX_FUSED_CLASSES:
            raise ValueError(f'num_classes must be <= {MAX_FUSED_CLASSES} for the fused '
                             f'form (uint8 class map), got {num_classes}')
        exported = FusedSegmenter(model, swap_rb=swap_rb, scale=scale, mean=mean).eval()
        example = torch.zeros(1, height, width, 3, dtype=torch.uint8)
        names = ('image', 'classes')
        dynamic_axes = {'image': {1: 'height', 2: 'width'}, 'classes': {1: 'height', 2: 'width'}}
    else:
        exported = model
        example = probe
        names = ('input', 'scores')
        dynamic_axes = {'input': {2: 'height', 3: 'width'}, 'scores': {2: 'height', 3: 'width'}}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but, unlike the torch.export one, needs no
        # onnxscript and writes plain static-attribute nodes that OpenCV DNN can import.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(exported, (example,), os.fspath(path), input_names=[names[0]],
                          output_names=[names[1]], opset_version=OPSET, dynamo=False,
                          dynamic_axes=dynamic_axes if dynamic else None,
                          do_constant_folding=True)
    proto = onnx.load(os.fspath(path))
    drop_initializer_identities(proto.graph)
    props = {'seg_ros.num_classes': str(num_classes), 'seg_ros.input_width': str(width),
             'seg_ros.input_height': str(height),
             'seg_ros.format': FORMAT_FUSED if fused else FORMAT_SCORES}
    props.update(exported_description(width, height, fused, swap_rb, scale, mean, num_classes,
                                      names[1]))
    props.update(metadata or {})
    onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in props.items()})
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))
    return proto
