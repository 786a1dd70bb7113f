"""
Network outputs to a class map, for semantic segmentation models.

The output used is the description's ``output_name`` (the model's first output by default), the
same on every backend. Its layout is declared (``output_layout``), never guessed from its shape:
an output whose shape does not fit is refused with a message naming what was found. Scores
smaller than the input are resized to it bilinearly before the argmax (``upsample``), as
torchvision's and HuggingFace's own post-processing does. With ``postprocess: logits`` the
scores are resized bilinearly to the frame itself before the argmax
(:func:`decode_to_frame`), as HuggingFace's ``post_process_semantic_segmentation`` does with
the frame size as its target.

The confidence map (:func:`decode_with_confidence`, :func:`confidence_to_frame`): per pixel
``round(255 * p)``, ``p`` the softmax probability of the pixel's class over the scores the
argmax is taken on, after the same upsampling. As the class's score is the maximum ``m``,
``p = 1 / sum_c exp(s_c - m)``: one exponential a score, reusing the argmax's running maximum.
A class-id output has none, unless an OpenVINO backend added :data:`CONFIDENCE_OUTPUT` (that
probability, computed in the graph behind the argmax) to it.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from seg_ros.core.errors import FrameError, ModelError
from seg_ros.core.model.description import MAX_CLASSES, ModelDescription

# Frame pixels between cells of different classes interpolated at once (bounds the memory),
# and the share of the frame above which resizing every plane is faster (measured at 720p).
MIXED_CHUNK = 16384
MIXED_SHARE = 0.2
#: The output holding ``p`` (float, (1, 1, h, w)) of a class-id model whose argmax an OpenVINO
#: backend rewrote with the confidence asked for (:mod:`seg_ros.core.backends.openvino_graph`).
CONFIDENCE_OUTPUT = 'seg_ros_confidence'


def class_map_from_scores(scores: np.ndarray) -> np.ndarray:
    """
    Return the argmax over classes of (C, h, w) or (1, C, h, w) scores as an (h, w) uint8 map.

    A running maximum over the class planes with OpenCV (vectorised, multi-threaded, no
    transposed copy); on equal scores the lowest class id wins, as with ``np.argmax``. NaN
    scores never win.

    :param scores: float scores, C <= 256.
    :return: class ids.
    """
    return _running_argmax(iter(_float_planes(scores)))[0]


def _float_planes(scores: np.ndarray) -> np.ndarray:
    """Return (C, h, w) or (1, C, h, w) scores as (C, h, w) float32 (no copy when they are)."""
    planes = scores.reshape(scores.shape[-3:])
    return planes if planes.dtype == np.float32 else planes.astype(np.float32)


def _running_argmax(planes) -> tuple[np.ndarray, np.ndarray]:
    """Return the argmax of float32 planes given one after another, class 0 first, and the max."""
    best = next(planes).copy()
    class_map = np.zeros(best.shape, dtype=np.uint8)
    improved = np.empty(best.shape, dtype=np.uint8)
    for class_id, plane in enumerate(planes, start=1):
        cv2.compare(plane, best, cv2.CMP_GT, dst=improved)
        cv2.max(best, plane, dst=best)
        # A pixel's class is the last class that raised its maximum: ids only grow, so keep the
        # largest of (improved & class_id), 255 & id being id.
        cv2.bitwise_and(improved, class_id, dst=improved)
        cv2.max(class_map, improved, dst=class_map)
    return class_map, best


def class_map_and_confidence(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the argmax of (C, h, w) or (1, C, h, w) scores and its confidence, both (h, w) uint8.

    The class map is :func:`class_map_from_scores`'; the confidence is ``round(255 * p)``, ``p``
    the softmax probability of that class: ``1 / sum_c exp(s_c - max)``, the maximum being the
    one the argmax kept. float32, one ``exp`` a score, plane by plane (OpenCV, no copy of the
    scores).

    :param scores: float scores, C <= 256, finite.
    """
    planes = _float_planes(scores)
    class_map, best = _running_argmax(iter(planes))
    total = np.zeros(best.shape, np.float32)
    term = np.empty(best.shape, np.float32)
    for plane in planes:
        # NumPy's float32 exp is vectorised (AVX2); OpenCV's is several times slower.
        np.subtract(plane, best, out=term)
        np.exp(term, out=term)
        cv2.add(total, term, dst=total)
    return class_map, probability_to_confidence(total, reciprocal=True)


def probability_to_confidence(values: np.ndarray, reciprocal: bool = False) -> np.ndarray:
    """
    Return ``round(255 * p)`` as uint8, ``p`` in ``values`` (or ``1 / values``: ``reciprocal``).

    Halves round to even (as ``np.rint``), above 1 saturates at 255, NaN (scores that were not
    numbers) gives 0: never an error, never a warning.
    """
    values = values.astype(np.float32, copy=False)
    if reciprocal:
        return cv2.convertScaleAbs(cv2.divide(255.0, values))
    return cv2.convertScaleAbs(values, alpha=255.0)


def output_layout(description: ModelDescription, output: np.ndarray) -> str:
    """Return the declared layout, or the default for the output's type (NCHW / class ids)."""
    if description.output_layout:
        return description.output_layout
    return 'NCHW' if np.issubdtype(output.dtype, np.floating) else 'class_ids'


def check_frame_outputs(outputs: Mapping[str, np.ndarray],
                        shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """
    Check one frame's outputs: finite numbers, and the shapes they had at start-up.

    The finite check reads each float output once (``max``: about 2 ms for ENet's 19 x 512 x
    1024 scores); integer outputs need none.

    :param outputs: the frame's outputs by name.
    :param shapes: output name -> the shape it must have (the warm-up frame's), or None.
    :raises FrameError: naming the output.
    """
    for name, output in outputs.items():
        wanted = (shapes or {}).get(name)
        if wanted is not None and tuple(output.shape) != tuple(wanted):
            raise FrameError(f'output {name!r} is {list(output.shape)} on this frame but was '
                             f'{list(wanted)} at start-up: a model whose outputs change shape '
                             'between frames is not supported (frame skipped)')
        if output.dtype.kind == 'f' and output.size and not np.isfinite(output.max()):
            bad = int(np.count_nonzero(~np.isfinite(output)))
            raise FrameError(f'output {name!r} holds {bad} NaN or Inf values of {output.size} on '
                             'this frame (frame skipped)')


def check_output(name: str, output: np.ndarray, description: ModelDescription,
                 model_path: str) -> int:
    """
    Check a semantic model's output against its declared layout; return the class count.

    :param name: the output's name.
    :param output: what the network returned for a warm-up frame.
    :param description: the resolved description (input size set).
    :param model_path: for the messages.
    :raises ModelError: naming ``output_layout``, ``model_path`` or ``num_classes``.
    """
    layout = output_layout(description, output)
    shape = tuple(output.shape)
    found = f'output {name!r} of {model_path!r} is {shape} {output.dtype}'
    if layout == 'class_ids':
        if len(shape) not in (2, 3, 4) or output.size != shape[-1] * shape[-2]:
            raise ModelError('output_layout', layout,
                             f'{found}: not a (1, H, W) class-id map (output_layout class_ids)')
        if not description.num_classes:
            raise ModelError('num_classes', 0,
                             f'{found}: class ids, but the description has no num_classes '
                             '(seg_ros.num_classes metadata, a sidecar or a parameter)')
        return description.num_classes
    if len(shape) != 4 or shape[0] != 1:
        what = ('a detection/instance output' if len(shape) == 3 else
                'not a batch of one image')
        raise ModelError('output_layout', layout,
                         f'{found}: {what}, not (1, C, H, W) scores'
                         + ('; for YOLO-seg set task yolo_seg' if len(shape) == 3 else ''))
    if not np.issubdtype(output.dtype, np.floating):
        raise ModelError('output_layout', layout,
                         f'{found}: integer values, not scores; set output_layout class_ids')
    classes, height, width = (shape[1:] if layout == 'NCHW'
                              else (shape[3], shape[1], shape[2]))
    other = 'NHWC' if layout == 'NCHW' else 'NCHW'
    if not _fits(height, width, description) and _fits(
            *((shape[2], shape[3]) if layout == 'NHWC' else (shape[1], shape[2])), description):
        raise ModelError('output_layout', layout,
                         f'{found}: read as {layout} its scores are {height}x{width} for a '
                         f'{description.input_height}x{description.input_width} input; it '
                         f'looks {other}: set output_layout {other}')
    if not 2 <= classes <= MAX_CLASSES:
        raise ModelError('output_layout', layout,
                         f'{found}: {classes} classes as {layout}; 2 to {MAX_CLASSES} are '
                         'supported (uint8 class map)')
    return int(classes)


def _fits(height: int, width: int, description: ModelDescription) -> bool:
    """Return whether (height, width) is the input size divided by one integer-ish stride."""
    if not 0 < height <= description.input_height or not 0 < width <= description.input_width:
        return False
    stride_y = description.input_height / height
    stride_x = description.input_width / width
    return abs(stride_y - stride_x) <= max(stride_x, stride_y) * 0.25


def decode(outputs: dict[str, np.ndarray], description: ModelDescription) -> np.ndarray:
    """
    Return the (input height, input width) uint8 class map of one forward's outputs.

    :param outputs: every output by name, as :meth:`Backend.forward` returns them.
    :param description: the resolved description (``output_name`` set).
    """
    return _decode(outputs, description, False)[0]


def decode_with_confidence(outputs: dict[str, np.ndarray], description: ModelDescription
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """
    Return :func:`decode`'s class map and its confidence map, both (input h, input w) uint8.

    The confidence is that of the scores the argmax is taken on (see
    :func:`class_map_and_confidence`): upsampled bilinearly first with ``upsample: bilinear``,
    at the scores' size and then resized nearest, as the class map is, with ``upsample:
    nearest``. A class-id output has a confidence only where :data:`CONFIDENCE_OUTPUT` is
    among the outputs (resized as the class map); otherwise None.

    :param outputs: every output by name, as :meth:`Backend.forward` returns them.
    :param description: the resolved description (``output_name`` set).
    """
    return _decode(outputs, description, True)


def _decode(outputs: dict[str, np.ndarray], description: ModelDescription,
            confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
    output = outputs[description.output_name]
    width, height = description.input_width, description.input_height
    layout = output_layout(description, output)
    if layout == 'class_ids':
        class_map = output.reshape(output.shape[-2:])
        if class_map.dtype != np.uint8:
            class_map = class_map.astype(np.uint8)
        probability = outputs.get(CONFIDENCE_OUTPUT) if confidence else None
        confidence_map = None
        if probability is not None:
            confidence_map = resize_class_map(
                probability_to_confidence(probability.reshape(probability.shape[-2:])),
                width, height)
        return resize_class_map(class_map, width, height), confidence_map
    planes = output[0] if layout == 'NCHW' else output[0].transpose(2, 0, 1)
    if planes.shape[1:] != (height, width):
        if description.upsample == 'nearest':
            class_map, confidence_map = _argmax(planes, confidence)
            return (resize_class_map(class_map, width, height),
                    None if confidence_map is None else
                    resize_class_map(confidence_map, width, height))
        planes = upsample_scores(planes, width, height)
    return _argmax(planes, confidence)


def _argmax(planes: np.ndarray, confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the class map of (C, h, w) scores and, when asked for, its confidence."""
    if confidence:
        return class_map_and_confidence(planes)
    return class_map_from_scores(planes), None


def decode_to_frame(outputs: dict[str, np.ndarray], description: ModelDescription, width: int,
                    height: int) -> np.ndarray:
    """
    Return the (height, width) class map of the scores resized bilinearly to the frame size.

    HuggingFace's ``post_process_semantic_segmentation(target_sizes=[(height, width)])``:
    ``F.interpolate(logits, (height, width), mode='bilinear', align_corners=False)``, then the
    argmax (:func:`class_map_of_resized_scores`: the same map, computed where it can differ
    from the cells' own argmax). A class-id output is resized nearest.

    :param outputs: every output by name, as :meth:`Backend.forward` returns them.
    :param description: the resolved description (``output_name`` set).
    :param width: frame width.
    :param height: frame height.
    """
    output = outputs[description.output_name]
    layout = output_layout(description, output)
    if layout == 'class_ids':
        return resize_class_map(decode(outputs, description), width, height)
    planes = output[0] if layout == 'NCHW' else output[0].transpose(2, 0, 1)
    return class_map_of_resized_scores(planes.astype(np.float32, copy=False), width, height)


def confidence_to_frame(outputs: dict[str, np.ndarray], description: ModelDescription,
                        width: int, height: int) -> np.ndarray | None:
    """
    Return the (height, width) confidence map of :func:`decode_to_frame`'s class map, or None.

    The scores resized bilinearly to the frame (as ``decode_to_frame`` takes its argmax on),
    plane by plane, into a running softmax (:func:`streamed_confidence`): a few frame-size
    planes are held, never all. A class-id output has none (None), unless an OpenVINO backend
    added :data:`CONFIDENCE_OUTPUT` (resized nearest, as the class map).

    :param outputs: every output by name, as :meth:`Backend.forward` returns them.
    :param description: the resolved description (``output_name`` set).
    :param width: frame width.
    :param height: frame height.
    """
    output = outputs[description.output_name]
    if output_layout(description, output) == 'class_ids':
        confidence_map = decode_with_confidence(outputs, description)[1]
        if confidence_map is None:
            return None
        return resize_class_map(confidence_map, width, height)
    planes = output[0] if output_layout(description, output) == 'NCHW' \
        else output[0].transpose(2, 0, 1)
    return streamed_confidence(_resized_planes(planes.astype(np.float32, copy=False), width,
                                               height))


def streamed_confidence(planes) -> np.ndarray:
    """
    Return the confidence (``round(255 * max softmax)``, uint8) of float32 planes given in turn.

    An online softmax: the running maximum ``m`` and ``s = sum exp(x - m)``, rescaled by
    ``exp(m_old - m_new)`` when the maximum grows; ``p = 1 / s``. For planes that cannot all be
    held at once (scores resized to the frame); with the scores in memory
    :func:`class_map_and_confidence` needs half the exponentials.
    """
    planes = iter(planes)
    best = np.array(next(planes), np.float32)
    total = np.ones(best.shape, np.float32)
    highest = np.empty_like(best)
    term = np.empty_like(best)
    for plane in planes:
        cv2.max(best, plane, dst=highest)
        np.subtract(best, highest, out=term)  # <= 0: the old sum's rescaling
        np.exp(term, out=term)
        cv2.multiply(total, term, dst=total)
        np.subtract(plane, highest, out=term)
        np.exp(term, out=term)
        cv2.add(total, term, dst=total)
        best, highest = highest, best
    return probability_to_confidence(total, reciprocal=True)


def class_map_of_resized_scores(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    Return the argmax of (C, h, w) scores resized bilinearly to (height, width).

    Resizing every plane (``align_corners=False``) and taking the argmax, with less work where
    it can: a frame pixel interpolates four score cells with weights summing to one, so where
    one class is the best of all four cells it is the best of the pixel. When few pixels lie
    between cells of different best classes (at most :data:`MIXED_SHARE` of the frame: large
    regions) only those are interpolated, every class, in chunks; else the planes are resized
    four at a time (``cv2.resize``) into a running argmax. Either way only a few frame-size
    planes are held.

    :param planes: float32 scores.
    :param width: frame width.
    :param height: frame height.
    """
    cells = class_map_from_scores(planes)
    x0, x1, wx = linear_taps(width, planes.shape[2])
    y0, y1, wy = linear_taps(height, planes.shape[1])
    left, right = cells[:, x0], cells[:, x1]  # (h, width): the classes each column reads
    class_map = left[y0]
    mixed = (class_map != right[y0]) | (left[y1] != right[y1]) | (class_map != left[y1])
    if cv2.countNonZero(mixed.view(np.uint8)) > MIXED_SHARE * mixed.size:
        return _running_argmax(_resized_planes(planes, width, height))[0]
    rows, cols = np.nonzero(mixed)
    by_cell = np.ascontiguousarray(planes.transpose(1, 2, 0))  # (h, w, C)
    for start in range(0, len(rows), MIXED_CHUNK):
        v, u = rows[start:start + MIXED_CHUNK], cols[start:start + MIXED_CHUNK]
        column_weight, row_weight = wx[u, None], wy[v, None]
        # Horizontal then vertical, as cv2.resize computes it.
        top = by_cell[y0[v], x0[u]] * (1 - column_weight) + by_cell[y0[v], x1[u]] * column_weight
        bottom = (by_cell[y1[v], x0[u]] * (1 - column_weight)
                  + by_cell[y1[v], x1[u]] * column_weight)
        scores = top * (1 - row_weight) + bottom * row_weight
        class_map[v, u] = np.argmax(scores, axis=1)
    return class_map


def _resized_planes(planes: np.ndarray, width: int, height: int):
    """Yield each (h, w) plane resized to (height, width) bilinearly, four resized at once."""
    for start in range(0, planes.shape[0], 4):
        group = np.ascontiguousarray(planes[start:start + 4].transpose(1, 2, 0))
        scaled = cv2.resize(group, (width, height), interpolation=cv2.INTER_LINEAR)
        yield from (cv2.split(scaled) if scaled.ndim == 3 else [scaled])


def linear_taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return, per output pixel, the two input cells and the second's weight of a bilinear resize.

    Half-pixel centres, ``align_corners=False``: source ``(dst + 0.5) * in / out - 0.5``,
    clamped at 0 and at the last cell, as PyTorch's ``interpolate`` and ``cv2.resize`` do.
    """
    source = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
    source = np.maximum(source, 0.0)
    first = np.minimum(np.floor(source).astype(np.intp), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight = np.where(second > first, source - first, 0.0).astype(np.float32)
    return first, second, weight


def upsample_scores(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    Resize (C, h, w) scores to (C, height, width) bilinearly, half-pixel centres.

    That is ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``, what
    torchvision's segmentation heads and HuggingFace's ``post_process_semantic_segmentation``
    use. OpenCV resizes at most 512 channels at once; planes go in groups of 4.
    """
    planes = planes.astype(np.float32, copy=False)
    out = np.empty((planes.shape[0], height, width), np.float32)
    for start in range(0, planes.shape[0], 4):
        group = np.ascontiguousarray(planes[start:start + 4].transpose(1, 2, 0))
        scaled = cv2.resize(group, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start:start + 4] = scaled.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def resize_class_map(class_map: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    Resize a class map with nearest-neighbour sampling (never invents classes).

    :param class_map: (H, W) uint8.
    :param width: output width.
    :param height: output height.
    :return: (height, width) uint8; ``class_map`` itself when it already has that size.
    """
    if class_map.shape[:2] == (height, width):
        return class_map
    # INTER_NEAREST_EXACT samples at pixel centres (src = floor((dst + 0.5) * src_size /
    # dst_size)); plain INTER_NEAREST samples at pixel corners and shifts the map by up to a pixel.
    return cv2.resize(class_map, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
