"""
Which kind of segmentation model a file is, from its inputs and outputs alone.

A description may say ``task``; where neither it, the metadata nor a sidecar does, the graph's
signature decides:

- torchvision Mask R-CNN: one ``(3, H, W)`` image input (no batch axis) and four outputs, named
  ``boxes``, ``labels``, ``scores``, ``masks`` or, unnamed, of ranks 2, 1, 1, 4 in that order,
  ``(N, 4)``, ``(N,)``, ``(N,)``, ``(N, 1, H, W)``;
- ultralytics YOLO-seg: two outputs, ``(1, 4 + classes + 32, anchors)`` detections and
  ``(1, 32, H / 4, W / 4)`` mask prototypes.

Anything else is left to the semantic path, whose checks name the outputs and the ``task``
values that would apply (:func:`task_hint`).
"""

from __future__ import annotations

from seg_ros.core.model.files import ModelInfo, TensorInfo

MASK_RCNN_NAMES = ('boxes', 'labels', 'scores', 'masks')
YOLO_COEFFICIENTS = 32


def shapes_text(tensors: tuple[TensorInfo, ...]) -> str:
    """Return ``'name' [dims]`` of each tensor, comma-separated."""
    return ', '.join(f'{tensor.name!r} {list(tensor.dims)}' for tensor in tensors)


def _may_be(tensor: TensorInfo, axis: int, size: int) -> bool:
    """Return whether a dim is ``size`` or symbolic (unknown until the model runs)."""
    dim = tensor.dims[axis]
    return isinstance(dim, str) or dim <= 0 or dim == size


def _is_mask_rcnn(info: ModelInfo) -> bool:
    if len(info.outputs) != 4 or len(info.input_shape) != 3:
        return False
    if not _may_be(info.inputs[0], 0, 3):
        return False
    by_name = {tensor.name: tensor for tensor in info.outputs}
    if set(MASK_RCNN_NAMES) <= set(by_name):
        ordered = [by_name[name] for name in MASK_RCNN_NAMES]
    else:
        ordered = list(info.outputs)
    ranks = tuple(len(tensor.dims) for tensor in ordered)
    boxes, masks = ordered[0], ordered[3]
    return ranks == (2, 1, 1, 4) and _may_be(boxes, 1, 4) and _may_be(masks, 1, 1)


def _is_yolo_seg(info: ModelInfo) -> bool:
    if len(info.outputs) != 2:
        return False
    ranks = sorted(len(tensor.dims) for tensor in info.outputs)
    if ranks != [3, 4]:
        return False
    detections = next(tensor for tensor in info.outputs if len(tensor.dims) == 3)
    prototypes = next(tensor for tensor in info.outputs if len(tensor.dims) == 4)
    channels = detections.dims[1]
    return (prototypes.dims[1] == YOLO_COEFFICIENTS
            and (isinstance(channels, str) or channels > 4 + YOLO_COEFFICIENTS))


def task_from_signature(info: ModelInfo) -> tuple[str, str]:
    """
    Return the instance task a file's signature shows, and the signature; ``('', '')`` if none.

    :param info: the file's inputs and outputs (formats that declare none give ``('', '')``).
    """
    if not info.outputs:
        return '', ''
    if _is_mask_rcnn(info):
        return 'maskrcnn', (f'a (3, H, W) input and four outputs like torchvision Mask R-CNN: '
                            f'{shapes_text(info.outputs)}')
    if _is_yolo_seg(info):
        return 'yolo_seg', (f'detections and 32 mask prototypes like ultralytics YOLO-seg: '
                            f'{shapes_text(info.outputs)}')
    return '', ''


def task_hint(info: ModelInfo) -> str:
    """Return, for an error, the file's outputs and what each ``task`` value expects."""
    outputs = shapes_text(info.outputs) if info.outputs else 'not declared by the file'
    return (f'outputs: {outputs}; task semantic expects one (1, C, H, W) score or (1, H, W) '
            'class-id output, task maskrcnn four outputs (N, 4) boxes, (N,) labels, (N,) scores, '
            '(N, 1, H, W) masks for a (3, H, W) input, task yolo_seg (1, 4 + classes + 32, '
            'anchors) detections and (1, 32, H/4, W/4) prototypes')
