"""
Instance decoding: YOLO-seg and Mask R-CNN outputs, and connected components of a class map.

Every decoder returns :class:`~seg_ros.core.decode.instances.Instances` at frame size, best first,
at most ``max_instances`` of them. Instance models see the frame letterboxed (:class:`Letterbox`:
aspect ratio kept, grey padding, as ultralytics does); boxes and masks are mapped back to the
frame.

YOLO-seg masks follow ultralytics' (8.4) ``retina_masks=True`` rule (``process_mask_native``):
mask logits = coefficients x prototypes at prototype resolution, enlarged 2 or 4 times where the
letterbox padding is not whole prototype cells, the padding cut from them (``scale_masks``'
rounding), resized bilinearly to the frame (``align_corners=False``), zeroed outside the pixels
whose indices lie in the box, thresholded at logit 0; a detection whose mask is then empty is
dropped. Only the box region of the resized logits is computed, with the same taps and weights
as the full-frame resizes. Mask R-CNN masks are sampled once, bilinearly, at each frame pixel
centre of the box from the model's probability grid (at the input size), thresholded at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np

from seg_ros.core.decode.instances import (crop_region, equal_mask, Instances,
                                           MAX_INSTANCE_ID, pixel_region)
from seg_ros.core.decode.letterbox import Letterbox
from seg_ros.core.decode.semantic import linear_taps
from seg_ros.core.errors import ModelError

TASK_SEMANTIC = 'semantic'
TASK_MASK_RCNN = 'maskrcnn'
TASK_YOLO_SEG = 'yolo_seg'
INSTANCE_TASKS = (TASK_MASK_RCNN, TASK_YOLO_SEG)

YOLO_MASK_COEFFICIENTS = 32
YOLO_PROTOTYPE_STRIDE = 4
MASK_RCNN_OUTPUTS = ('boxes', 'labels', 'scores', 'masks')
MASK_THRESHOLD = 0.5
# Candidates above the score threshold that go into NMS, best first; the rest are dropped
# (ultralytics' non_max_suppression max_nms).
MAX_NMS_CANDIDATES = 30000
# NMS keeps classes apart by moving each box by class x this many pixels (ultralytics' max_wh).
CLASS_OFFSET = 7680


@dataclass(frozen=True)
class InstanceSettings:
    """
    How instances are selected.

    :ivar score_threshold: keep candidates scoring above this (instance models), 0 to 1.
    :ivar nms_iou: suppress a candidate overlapping a better one of its class by more (IoU).
    :ivar max_instances: keep at most this many, best first (1 to 65535: mono16 ids).
    :ivar min_instance_area: smallest connected component kept, in frame pixels.
    :ivar class_ids: only these classes (None: every class of an instance model; connected
        components need a list).
    """

    score_threshold: float = 0.5
    nms_iou: float = 0.5
    max_instances: int = 100
    min_instance_area: int = 100
    class_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        """Check the ranges; raise ModelError naming the parameter."""
        for name in ('score_threshold', 'nms_iou'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= value <= 1.0:
                raise ModelError(name, value, f'{name} must be between 0 and 1, got {value!r}')
        for name, low, high in (('max_instances', 1, MAX_INSTANCE_ID),
                                ('min_instance_area', 0, 2 ** 31 - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or not low <= value <= high:
                raise ModelError(name, value,
                                 f'{name} must be an integer {low} to {high}, got {value!r}')
        if self.class_ids is not None:
            object.__setattr__(self, 'class_ids', tuple(int(c) for c in self.class_ids))


# --------------------------------------------------------------------------------------------
# Letterbox


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
        max_keep: int) -> np.ndarray:
    """
    Class-aware greedy non-maximum suppression, as ultralytics runs ``torchvision.ops.nms``.

    Classes are kept apart as ultralytics does: each box is moved by ``class x``
    :data:`CLASS_OFFSET` pixels in float32 before the IoUs are computed (float32, as
    torchvision's kernel), so the IoUs are those of the moved boxes, rounded where they lie.
    Candidates are visited best first (equal scores: lower index first); one is kept unless a
    kept candidate overlaps it with IoU above ``iou_threshold``. Stops after ``max_keep``.

    :param xyxy: (K, 4) boxes.
    :param scores: (K,) scores.
    :param class_ids: (K,) classes.
    :param iou_threshold: 0 to 1.
    :param max_keep: most candidates kept.
    :return: indices of the kept candidates, best first.
    """
    order = np.argsort(-scores, kind='stable')
    boxes = xyxy[order].astype(np.float32)
    boxes += (class_ids[order].astype(np.float32) * np.float32(CLASS_OFFSET))[:, np.newaxis]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(len(order), bool)
    kept = []
    for index in range(len(order)):
        if suppressed[index]:
            continue
        kept.append(index)
        if len(kept) == max_keep:
            break
        rest = slice(index + 1, None)
        box = boxes[index]
        width = (np.minimum(boxes[rest, 2], box[2]) - np.maximum(boxes[rest, 0], box[0])).clip(0)
        height = (np.minimum(boxes[rest, 3], box[3]) - np.maximum(boxes[rest, 1], box[1])).clip(0)
        overlap = width * height
        with np.errstate(divide='ignore', invalid='ignore'):  # 0 / 0: not suppressed, as there
            iou = overlap / (areas[index] + areas[rest] - overlap)
        suppressed[rest] |= iou.astype(np.float64) > iou_threshold
    return order[np.asarray(kept, dtype=np.int64)]


def _grid_window(region: tuple[int, int, int, int], mapping: tuple[float, float, float, float],
                 grid_width: int, grid_height: int) -> tuple[int, int, int, int]:
    """Return the grid cells ``(x0, y0, x1, y1)`` that bilinear samples of a region read."""
    u0, v0, u1, v1 = region
    a_x, b_x, a_y, b_y = mapping
    x0 = min(max(int(np.floor(a_x * u0 + b_x)), 0), grid_width - 1)
    y0 = min(max(int(np.floor(a_y * v0 + b_y)), 0), grid_height - 1)
    x1 = min(max(int(np.floor(a_x * (u1 - 1) + b_x)) + 2, x0 + 1), grid_width)
    y1 = min(max(int(np.floor(a_y * (v1 - 1) + b_y)) + 2, y0 + 1), grid_height)
    return x0, y0, x1, y1


def _sample_mask(probability: np.ndarray, window: tuple[int, int, int, int],
                 region: tuple[int, int, int, int],
                 mapping: tuple[float, float, float, float]) -> np.ndarray:
    """
    Sample a grid window bilinearly at a frame region's pixel centres; threshold at 0.5.

    Samples outside the grid take the nearest edge value (PyTorch's ``align_corners=False``).
    """
    u0, v0, u1, v1 = region
    a_x, b_x, a_y, b_y = mapping
    affine = np.array([[a_x, 0.0, a_x * u0 + b_x - window[0]],
                       [0.0, a_y, a_y * v0 + b_y - window[1]]], np.float64)
    sampled = cv2.warpAffine(np.ascontiguousarray(probability, np.float32), affine,
                             (u1 - u0, v1 - v0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(v1 - v0, u1 - u0) > MASK_THRESHOLD


def _visible(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, list]:
    """Return which frame boxes cover at least one pixel, and their pixel regions."""
    regions = [pixel_region(box, width, height) for box in boxes]
    keep = np.array([u1 > u0 and v1 > v0 for u0, v0, u1, v1 in regions], bool)
    return keep, [region for region, kept in zip(regions, keep) if kept]


# --------------------------------------------------------------------------------------------
# YOLO-seg (ultralytics v8 / v11 segment export)


@dataclass(frozen=True)
class YoloSegLayout:
    """Which output is which in a YOLO-seg model, and its sizes."""

    detections: str
    prototypes: str
    num_classes: int
    num_coefficients: int


def yolo_seg_layout(output_shapes: Mapping[str, Sequence[int | str]], input_width: int,
                    input_height: int) -> YoloSegLayout:
    """
    Identify a YOLO-seg model's two outputs and check their shapes.

    ``(1, 4 + classes + 32, anchors)`` detections and ``(1, 32, H / 4, W / 4)`` prototypes.

    :param output_shapes: output name -> shape (as the backend produced it), in model order.
    :param input_width: network input width W.
    :param input_height: network input height H.
    :raises ModelError: naming ``model_path``, the output and its shape.
    """
    if len(output_shapes) != 2:
        raise ModelError('model_path', list(output_shapes),
                         f'a YOLO-seg model has 2 outputs (detections, prototypes), this one has '
                         f'{len(output_shapes)}: {_shapes_text(output_shapes)}')
    ranks = {name: len(shape) for name, shape in output_shapes.items()}
    detections = next((name for name, rank in ranks.items() if rank == 3), None)
    prototypes = next((name for name, rank in ranks.items() if rank == 4), None)
    if detections is None or prototypes is None:
        raise ModelError('model_path', list(output_shapes),
                         f'YOLO-seg outputs must be (1, 4 + classes + 32, anchors) and (1, 32, '
                         f'H/4, W/4), got {_shapes_text(output_shapes)}')
    proto_shape = tuple(output_shapes[prototypes])
    expected = (1, YOLO_MASK_COEFFICIENTS, input_height // YOLO_PROTOTYPE_STRIDE,
                input_width // YOLO_PROTOTYPE_STRIDE)
    if proto_shape != expected:
        raise ModelError('model_path', prototypes,
                         f'YOLO-seg output {prototypes!r} has shape {list(proto_shape)}, '
                         f'expected {list(expected)} (mask prototypes at 1/4 of the '
                         f'{input_width}x{input_height} input)')
    det_shape = tuple(output_shapes[detections])
    num_classes = det_shape[1] - 4 - YOLO_MASK_COEFFICIENTS if len(det_shape) == 3 else 0
    if det_shape[0] != 1 or num_classes < 1 or det_shape[2] < 1:
        raise ModelError('model_path', detections,
                         f'YOLO-seg output {detections!r} has shape {list(det_shape)}, expected '
                         f'(1, 4 + classes + {YOLO_MASK_COEFFICIENTS}, anchors) with at least '
                         'one class')
    return YoloSegLayout(detections, prototypes, num_classes, YOLO_MASK_COEFFICIENTS)


def decode_yolo_seg(outputs: Mapping[str, np.ndarray], layout: YoloSegLayout,
                    letterbox: Letterbox, settings: InstanceSettings) -> Instances:
    """
    Decode one YOLO-seg forward pass into instances at frame size, as ultralytics does.

    ``non_max_suppression`` with its defaults: an anchor's score is its best class score, its
    class that class (then kept only if among ``class_ids``); anchors scoring above
    ``score_threshold`` (at most :data:`MAX_NMS_CANDIDATES`, best first) go through per-class
    NMS, which stops at ``max_instances``. Boxes are mapped back with ``scale_boxes``; masks
    follow ``process_mask_native`` (see the module's docstring); detections whose mask is
    empty are dropped.

    :param outputs: output name -> array, as the backend returned them.
    :param layout: from :func:`yolo_seg_layout`.
    :param letterbox: how the frame was fitted into the input.
    :param settings: thresholds and limits.
    """
    height, width = letterbox.frame_height, letterbox.frame_width
    predictions = outputs[layout.detections][0]
    class_scores = predictions[4:4 + layout.num_classes]
    best_score = class_scores.max(axis=0)
    candidates = np.flatnonzero(best_score > settings.score_threshold)
    if settings.class_ids is not None and len(candidates):
        best_class = class_scores[:, candidates].argmax(axis=0)
        candidates = candidates[np.isin(best_class, settings.class_ids)]
    if len(candidates) > MAX_NMS_CANDIDATES:
        top = np.argpartition(-best_score[candidates], MAX_NMS_CANDIDATES)[:MAX_NMS_CANDIDATES]
        candidates = np.sort(candidates[top])
    if len(candidates) == 0:
        return Instances.empty(height, width)
    scores = best_score[candidates]
    class_id = class_scores[:, candidates].argmax(axis=0)
    cx, cy, box_w, box_h = predictions[:4, candidates]
    boxes = np.stack((cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2), axis=1)
    kept = nms(boxes, scores, class_id, settings.nms_iou, settings.max_instances)
    frame_boxes = letterbox.boxes_to_frame(boxes[kept])
    coefficients = predictions[4 + layout.num_classes:, candidates[kept]].T
    masks, nonempty = yolo_masks(outputs[layout.prototypes][0], coefficients, frame_boxes,
                                 letterbox)
    if not nonempty.all():
        masks, frame_boxes, kept = masks[nonempty], frame_boxes[nonempty], kept[nonempty]
    return Instances.numbered(frame_boxes, masks, class_id[kept], scores[kept])


def yolo_masks(prototypes: np.ndarray, coefficients: np.ndarray, frame_boxes: np.ndarray,
               letterbox: Letterbox) -> tuple[np.ndarray, np.ndarray]:
    """
    Return (N, H, W) masks, ultralytics' ``process_mask_native`` computed in each box only.

    The logits ``coefficients @ prototypes``, enlarged bilinearly when the letterbox padding is
    not whole cells, the padding cut off (:meth:`Letterbox.mask_upsampling`), resized to the
    frame (``align_corners=False`` bilinear taps of ``F.interpolate`` / ``cv2.resize``
    ``INTER_LINEAR``), inside each box's :func:`crop_region` (ultralytics' ``crop_mask``),
    above 0. Each step only at the cells that the box's pixels read.

    :param prototypes: (32, h, w) prototypes over the network input.
    :param coefficients: (N, 32) mask coefficients.
    :param frame_boxes: (N, 4) boxes in frame pixels.
    :param letterbox: how the frame was fitted into the input.
    :return: the masks, and which of them have a pixel.
    """
    height, width = letterbox.frame_height, letterbox.frame_width
    channels, grid_height, grid_width = prototypes.shape
    upsampling = letterbox.mask_upsampling(grid_width, grid_height)
    x_stages = _resize_stages(width, grid_width, upsampling.factor, upsampling.left,
                              upsampling.right)
    y_stages = _resize_stages(height, grid_height, upsampling.factor, upsampling.top,
                              upsampling.bottom)
    masks = np.zeros((len(frame_boxes), height, width), bool)
    nonempty = np.zeros(len(frame_boxes), bool)
    for index, box in enumerate(frame_boxes):
        u0, v0, u1, v1 = crop_region(box, width, height)
        if u1 <= u0 or v1 <= v0:
            continue
        xa, xb, x_steps = _window_steps(x_stages, u0, u1)
        ya, yb, y_steps = _window_steps(y_stages, v0, v1)
        # The logits at the prototype cells the box reads, then each resize pass, horizontal
        # then vertical, element-wise (no BLAS threads: small products spin on a busy machine).
        window = prototypes[:, ya:yb, xa:xb].reshape(channels, -1)
        values = (coefficients[index] @ window).reshape(yb - ya, xb - xa)
        for first, second, weight in x_steps:
            values = values[:, first] * (1 - weight) + values[:, second] * weight
        for first, second, weight in y_steps:
            values = values[first] * (1 - weight)[:, None] + values[second] * weight[:, None]
        region = masks[index, v0:v1, u0:u1]
        np.greater(values, 0, out=region)
        nonempty[index] = region.any()
    return masks, nonempty


def _resize_stages(out_size: int, grid_size: int, factor: int, start: int,
                   stop: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """
    Return one axis's bilinear passes from the frame back to the prototype grid.

    Each pass is ``(first, second, weight)`` per output position (:func:`linear_taps`): the
    frame from the cut-out ``[start, stop)`` of the enlarged grid, then (``factor`` > 1) the
    enlarged grid from the prototype grid.
    """
    first, second, weight = linear_taps(out_size, stop - start)
    stages = [(first + start, second + start, weight)]
    if factor > 1:
        stages.append(linear_taps(grid_size * factor, grid_size))
    return stages


def _window_steps(stages: list, start: int,
                  stop: int) -> tuple[int, int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """
    Return the prototype cells ``[low, high)`` that outputs ``[start, stop)`` read, and the passes.

    The passes go from that window of the grid to the outputs, their taps relative to the
    window each reads.
    """
    steps = []
    for first, second, weight in stages:
        first, second, weight = first[start:stop], second[start:stop], weight[start:stop]
        start, stop = int(first[0]), int(second[-1]) + 1  # taps never decrease
        steps.append((first - start, second - start, weight))
    return start, stop, steps[::-1]


# --------------------------------------------------------------------------------------------
# Mask R-CNN (torchvision export)


def mask_rcnn_outputs(output_shapes: Mapping[str, Sequence[int | str]], input_width: int,
                      input_height: int) -> tuple[str, str, str, str]:
    """
    Return the names of the boxes, labels, scores and masks outputs; check their shapes.

    By name when the model has outputs named ``boxes``, ``labels``, ``scores``, ``masks``, else
    in that order (torchvision's). Shapes: (N, 4), (N,), (N,), (N, 1, H, W).

    :raises ModelError: naming ``model_path``, the output and its shape.
    """
    names = list(output_shapes)
    if set(MASK_RCNN_OUTPUTS) <= set(names):
        names = list(MASK_RCNN_OUTPUTS)
    elif len(names) != 4:
        raise ModelError('model_path', names,
                         f'a Mask R-CNN model has 4 outputs (boxes, labels, scores, masks), this '
                         f'one has {len(names)}: {_shapes_text(output_shapes)}')
    shapes = [tuple(output_shapes[name]) for name in names]
    count = shapes[0][0] if shapes[0] else None
    expected = ((count, 4), (count,), (count,), (count, 1, input_height, input_width))
    for role, name, shape, wanted in zip(MASK_RCNN_OUTPUTS, names, shapes, expected):
        # OpenCV DNN gives 1-D outputs a leading 1: (1, N) is read as (N,).
        if shape != wanted and not (len(wanted) == 1 and shape == (1,) + wanted):
            raise ModelError('model_path', name,
                             f'Mask R-CNN output {name!r} ({role}) has shape {list(shape)}, '
                             f'expected {list(wanted)} (N detections, input '
                             f'{input_width}x{input_height})')
    return names[0], names[1], names[2], names[3]


def decode_mask_rcnn(outputs: Mapping[str, np.ndarray], names: Sequence[str],
                     letterbox: Letterbox, settings: InstanceSettings) -> Instances:
    """
    Decode one Mask R-CNN forward pass into instances at frame size.

    Detections scoring above ``score_threshold`` (of the ``class_ids`` when set), best first, at
    most ``max_instances``; each mask probability map is sampled in its box at every frame pixel.

    :param outputs: output name -> array.
    :param names: the boxes, labels, scores and masks output names (:func:`mask_rcnn_outputs`).
    :param letterbox: how the frame was fitted into the input.
    :param settings: thresholds and limits.
    """
    height, width = letterbox.frame_height, letterbox.frame_width
    boxes, labels, scores, masks = (outputs[name] for name in names)
    labels = labels.reshape(-1).astype(np.int64, copy=False)
    scores = scores.reshape(-1).astype(np.float32, copy=False)
    selected = scores > settings.score_threshold
    if settings.class_ids is not None:
        selected &= np.isin(labels, settings.class_ids)
    chosen = np.flatnonzero(selected)
    chosen = chosen[np.argsort(-scores[chosen], kind='stable')][:settings.max_instances]
    frame_boxes = letterbox.boxes_to_frame(boxes[chosen].astype(np.float32))
    visible, regions = _visible(frame_boxes, width, height)
    chosen = chosen[visible]
    grid_height, grid_width = masks.shape[2:]
    mapping = letterbox.grid_mapping(grid_width)
    frame_masks = np.zeros((len(chosen), height, width), bool)
    for index, region in enumerate(regions):
        x0, y0, x1, y1 = window = _grid_window(region, mapping, grid_width, grid_height)
        u0, v0, u1, v1 = region
        frame_masks[index, v0:v1, u0:u1] = _sample_mask(masks[chosen[index], 0, y0:y1, x0:x1],
                                                        window, region, mapping)
    return Instances.numbered(frame_boxes[visible], frame_masks, labels[chosen], scores[chosen])


# --------------------------------------------------------------------------------------------
# Connected components of a class map


def instances_from_class_map(class_map: np.ndarray, settings: InstanceSettings) -> Instances:
    """
    Turn each 8-connected component of the ``class_ids`` in a class map into an instance.

    Components smaller than ``min_instance_area`` pixels are dropped; the rest are ordered by
    area, largest first (equal areas: class order, then top-to-bottom), at most
    ``max_instances``. Boxes are the components' pixel bounds; scores are 1.

    :param class_map: (H, W) uint8 class map at frame size.
    :param settings: ``class_ids`` (required), ``min_instance_area``, ``max_instances``.
    """
    height, width = class_map.shape
    found = []  # (area, class order, component order, class id, stats, labels)
    label_maps = []
    for order, class_id in enumerate(settings.class_ids or ()):
        if not 0 <= class_id <= 255:
            continue
        binary = equal_mask(class_map, class_id)
        # Labelling (with statistics) costs per pixel: only the class's bounding rectangle.
        left, top, box_w, box_h = cv2.boundingRect(binary)
        if box_w == 0 or box_h == 0:
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            binary[top:top + box_h, left:left + box_w], connectivity=8, ltype=cv2.CV_32S)
        stats[:, cv2.CC_STAT_LEFT] += left
        stats[:, cv2.CC_STAT_TOP] += top
        label_maps.append((labels, left, top))
        for component in range(1, count):
            area = int(stats[component, cv2.CC_STAT_AREA])
            if area >= max(settings.min_instance_area, 1):
                found.append((-area, order, component, class_id, stats[component],
                              len(label_maps) - 1))
    found.sort(key=lambda item: item[:3])
    found = found[:settings.max_instances]
    boxes = np.zeros((len(found), 4), np.float32)
    masks = np.zeros((len(found), height, width), bool)
    for index, (_, _, component, _, stats, labels_index) in enumerate(found):
        x, y = stats[cv2.CC_STAT_LEFT], stats[cv2.CC_STAT_TOP]
        x1, y1 = x + stats[cv2.CC_STAT_WIDTH], y + stats[cv2.CC_STAT_HEIGHT]
        boxes[index] = (x, y, x1, y1)
        labels, left, top = label_maps[labels_index]
        masks[index, y:y1, x:x1] = labels[y - top:y1 - top, x - left:x1 - left] == component
    return Instances.numbered(boxes, masks, [item[3] for item in found], np.ones(len(found)))


def _shapes_text(output_shapes: Mapping[str, Sequence[int | str]]) -> str:
    return ', '.join(f'{name!r} {list(shape)}' for name, shape in output_shapes.items())
