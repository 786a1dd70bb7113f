"""
Instance-model fixtures whose outputs are known exactly, and a NumPy reference decoder.

The ONNX graphs built here output constants (plus ``0 * mean(input)``, so every runtime keeps
the input): YOLO-seg detections and prototypes, or Mask R-CNN boxes, labels, scores and masks.
The reference functions decode those outputs independently of
``seg_ros.core.decode.instance_decoders``: greedy NMS over a sorted Python list; Mask R-CNN's
bilinear sampling written out per pixel; YOLO-seg as ultralytics' (8.4) predictor with
``retina_masks=True`` does it (NMS of boxes moved by class x 7680 in float32; ``scale_boxes``;
``process_mask_native``: each whole logit map enlarged 2 or 4 times where the letterbox
padding is not whole prototype cells, the padding cut, resized to the frame with
``cv2.resize``; ``crop_mask``: pixels whose indices lie outside the box zeroed; logit > 0;
empty masks dropped).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

# The models are built with onnx, an optional tool (not a rosdep key): every test module that
# uses them is skipped, with this reason, where it is missing (a robot's colcon test).
onnx = pytest.importorskip('onnx', reason='the tests build their instance models with onnx '
                           '(pip install onnx)')
helper, TensorProto = onnx.helper, onnx.TensorProto
from onnx import numpy_helper  # noqa: E402,I100 (after the importorskip above)

OPSET = 13


def _constant_plus_zero(name: str, value: np.ndarray, input_name: str, nodes: list,
                        initializers: list) -> None:
    """Append nodes computing ``name = value + 0 * mean(input)`` (float32)."""
    initializers.append(numpy_helper.from_array(value.astype(np.float32), f'{name}_value'))
    nodes.append(helper.make_node('Add', [f'{name}_value', 'zero'], [name]))


def _zero_of_input(input_name: str, nodes: list, initializers: list) -> None:
    initializers.append(numpy_helper.from_array(np.zeros((), np.float32), 'zero_factor'))
    nodes.append(helper.make_node('ReduceMean', [input_name], ['input_mean'], keepdims=0))
    nodes.append(helper.make_node('Mul', ['input_mean', 'zero_factor'], ['zero']))


def _save(graph: onnx.GraphProto, path: str | os.PathLike, metadata: dict[str, str]) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='seg_ros-tests')
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return os.fspath(path)


def make_yolo_seg_model(path: str | os.PathLike, detections: np.ndarray, prototypes: np.ndarray,
                        *, width: int, height: int, metadata: dict[str, str] | None = None
                        ) -> str:
    """
    Write a YOLO-seg-format model: ``images`` (1, 3, H, W) -> ``output0``, ``output1`` constants.

    :param detections: (1, 4 + classes + 32, anchors).
    :param prototypes: (1, 32, H / 4, W / 4).
    :param metadata: ``metadata_props``; default: ultralytics' ``task: segment`` and ``names``.
    """
    nodes, initializers = [], []
    _zero_of_input('images', nodes, initializers)
    _constant_plus_zero('output0', detections, 'images', nodes, initializers)
    _constant_plus_zero('output1', prototypes, 'images', nodes, initializers)
    graph = helper.make_graph(
        nodes, 'seg_ros_test_yolo_seg',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, list(detections.shape)),
         helper.make_tensor_value_info('output1', TensorProto.FLOAT, list(prototypes.shape))],
        initializers)
    num_classes = detections.shape[1] - 36
    if metadata is None:
        names = {index: f'thing{index}' for index in range(num_classes)}
        metadata = {'task': 'segment', 'names': str(names), 'imgsz': str([height, width])}
    return _save(graph, path, metadata)


def make_mask_rcnn_model(path: str | os.PathLike, boxes: np.ndarray, labels: np.ndarray,
                         scores: np.ndarray, masks: np.ndarray, *, width: int, height: int,
                         metadata: dict[str, str] | None = None) -> str:
    """
    Write a torchvision-Mask-R-CNN-format model: ``image`` (3, H, W) -> four constant outputs.

    :param boxes: (N, 4) input-pixel boxes; :param labels: (N,) ints; :param scores: (N,);
    :param masks: (N, 1, H, W) probabilities.
    """
    nodes, initializers = [], []
    _zero_of_input('image', nodes, initializers)
    _constant_plus_zero('boxes', boxes, 'image', nodes, initializers)
    _constant_plus_zero('labels_float', labels.astype(np.float32), 'image', nodes, initializers)
    nodes.append(helper.make_node('Cast', ['labels_float'], ['labels'], to=TensorProto.INT64))
    _constant_plus_zero('scores', scores, 'image', nodes, initializers)
    _constant_plus_zero('masks', masks, 'image', nodes, initializers)
    count = len(boxes)
    graph = helper.make_graph(
        nodes, 'seg_ros_test_mask_rcnn',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [3, height, width])],
        [helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [count, 4]),
         helper.make_tensor_value_info('labels', TensorProto.INT64, [count]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT, [count]),
         helper.make_tensor_value_info('masks', TensorProto.FLOAT, [count, 1, height, width])],
        initializers)
    return _save(graph, path, metadata if metadata is not None else {})


# --- the known scenes ------------------------------------------------------------------------


def rectangle_prototypes(rectangles: list[tuple[int, int, int, int]], grid_w: int, grid_h: int,
                         level: float = 8.0) -> np.ndarray:
    """
    Return (1, 32, grid_h, grid_w) prototypes, one a rectangle.

    Prototype k is +level inside rectangle k (cells x0 <= x < x1, y0 <= y < y1), else -level;
    prototypes beyond the rectangles are 0.
    """
    prototypes = np.zeros((1, 32, grid_h, grid_w), np.float32)
    for index, (x0, y0, x1, y1) in enumerate(rectangles):
        prototypes[0, index] = -level
        prototypes[0, index, y0:y1, x0:x1] = level
    return prototypes


def yolo_detections(candidates: list[dict], num_classes: int, anchors: int,
                    background: float = 0.0) -> np.ndarray:
    """
    Return (1, 4 + classes + 32, anchors) detections.

    :param candidates: per anchor (in order from anchor 0): ``box`` (cx, cy, w, h), ``scores``
        {class: score}, ``coefficients`` {prototype: value}.
    :param background: the class score of every other anchor.
    """
    detections = np.zeros((1, 4 + num_classes + 32, anchors), np.float32)
    detections[0, 4:4 + num_classes] = background
    detections[0, :4] = 1.0  # a 1x1 box at (1, 1) for the background anchors
    for anchor, candidate in enumerate(candidates):
        detections[0, :4, anchor] = candidate['box']
        detections[0, 4:4 + num_classes, anchor] = 0.0
        for class_id, score in candidate['scores'].items():
            detections[0, 4 + class_id, anchor] = score
        for prototype, value in candidate.get('coefficients', {}).items():
            detections[0, 4 + num_classes + prototype, anchor] = value
    return detections


# --- the reference -----------------------------------------------------------------------------


def reference_letterbox(frame_w: int, frame_h: int, input_w: int, input_h: int) -> dict:
    """Ultralytics' LetterBox arithmetic, written out."""
    ratio = min(input_w / frame_w, input_h / frame_h)
    new_w, new_h = int(round(frame_w * ratio)), int(round(frame_h * ratio))
    left = int(round((input_w - new_w) / 2 - 0.1))
    top = int(round((input_h - new_h) / 2 - 0.1))
    return {'sx': new_w / frame_w, 'sy': new_h / frame_h, 'left': left, 'top': top}


def reference_nms(boxes: list, scores: list, classes: list, iou_threshold: float,
                  max_keep: int) -> list[int]:
    """
    Greedy NMS over Python lists as ultralytics runs torchvision's; kept indices, best first.

    Ultralytics keeps classes apart by adding ``class x 7680`` (max_wh) to every coordinate,
    in float32; torchvision's kernel then computes areas, overlaps and IoUs in float32 and
    suppresses an IoU above the threshold. Written here with float32 scalars, each candidate
    checked against those kept so far.
    """
    f32 = np.float32

    def moved(index):
        return [f32(value) + f32(classes[index] * 7680) for value in boxes[index]]

    def iou(a, b):
        width = max(f32(0), min(a[2], b[2]) - max(a[0], b[0]))
        height = max(f32(0), min(a[3], b[3]) - max(a[1], b[1]))
        overlap = width * height
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
        return float(overlap / union) if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for index in order:
        if len(kept) == max_keep:
            break
        if all(iou(moved(k), moved(index)) <= iou_threshold for k in kept):
            kept.append(index)
    return kept


def reference_box_to_frame(box, lb: dict, frame_w: int, frame_h: int,
                           dtype: type = np.float64) -> list[float]:
    """Map an input box to the frame (each axis by its own scale and padding), in ``dtype``."""
    scale_x, scale_y = dtype(lb['sx']), dtype(lb['sy'])
    x0 = min(max((dtype(box[0]) - dtype(lb['left'])) / scale_x, 0.0), frame_w)
    y0 = min(max((dtype(box[1]) - dtype(lb['top'])) / scale_y, 0.0), frame_h)
    x1 = min(max((dtype(box[2]) - dtype(lb['left'])) / scale_x, 0.0), frame_w)
    y1 = min(max((dtype(box[3]) - dtype(lb['top'])) / scale_y, 0.0), frame_h)
    return [x0, y0, x1, y1]


def reference_mask(probability: np.ndarray, box: list[float], lb: dict, cell: float,
                   frame_w: int, frame_h: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Sample a probability grid at every frame pixel centre inside ``box``, bilinearly.

    Grid edges are clamped. Returns (mask, ambiguous): mask = p > 0.5, ambiguous =
    |p - 0.5| < 0.05 (where OpenCV's fixed-point interpolation may round either way).

    :param cell: network pixels per grid cell (4 for prototypes, 1 for Mask R-CNN masks).
    """
    grid_h, grid_w = probability.shape
    mask = np.zeros((frame_h, frame_w), bool)
    ambiguous = np.zeros((frame_h, frame_w), bool)
    for v in range(frame_h):
        if not np.rint(box[1]) <= v < np.rint(box[3]):
            continue
        gy = ((v + 0.5) * lb['sy'] + lb['top']) / cell - 0.5
        for u in range(frame_w):
            if not np.rint(box[0]) <= u < np.rint(box[2]):
                continue
            gx = ((u + 0.5) * lb['sx'] + lb['left']) / cell - 0.5
            x0, y0 = int(np.floor(gx)), int(np.floor(gy))
            fx, fy = gx - x0, gy - y0
            value = 0.0
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    yy = min(max(y0 + dy, 0), grid_h - 1)
                    xx = min(max(x0 + dx, 0), grid_w - 1)
                    value += wy * wx * probability[yy, xx]
            mask[v, u] = value > 0.5
            ambiguous[v, u] = abs(value - 0.5) < 0.05
    return mask, ambiguous


def reference_mask_resize(logits: np.ndarray, frame_w: int, frame_h: int) -> np.ndarray:
    """
    Ultralytics' (8.4) ``process_mask_native`` resize of one whole prototype-resolution logit map.

    The network input has 4 pixels a prototype cell; where its letterbox padding (per side) is not
    a multiple of 4 input pixels the map is first enlarged 2 or 4 times (``F.interpolate``,
    bilinear), so that ``scale_masks`` can cut the padding on whole cells: ``top = round(pad -
    0.1)``, the frame's ``round(frame x gain)`` cells from there; then resized to the frame.
    """
    grid_h, grid_w = logits.shape
    factor = 1
    for grid, frame in ((grid_h, frame_h), (grid_w, frame_w)):
        ratio = min(4 * grid_h / frame_h, 4 * grid_w / frame_w)
        padding = 4 * grid - max(round(frame * ratio), 1)  # input pixels, both sides
        # Whole cells of the enlarged grid (4 / factor input pixels) on each side.
        factor = max(factor, 1 if padding % 8 == 0 else 2 if padding % 4 == 0 else 4)
    if factor > 1:
        logits = cv2.resize(logits, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    grid_h, grid_w = logits.shape
    gain = min(grid_h / frame_h, grid_w / frame_w)
    content_h, content_w = max(round(frame_h * gain), 1), max(round(frame_w * gain), 1)
    top, left = round((grid_h - content_h) / 2 - 0.1), round((grid_w - content_w) / 2 - 0.1)
    cut = np.ascontiguousarray(logits[top:top + content_h, left:left + content_w])
    return cv2.resize(cut, (frame_w, frame_h), interpolation=cv2.INTER_LINEAR)


def reference_yolo_seg(detections: np.ndarray, prototypes: np.ndarray, frame_w: int,
                       frame_h: int, input_w: int, input_h: int, score_threshold: float,
                       iou_threshold: float, max_keep: int,
                       class_ids: tuple[int, ...] | None = None,
                       keep_empty: bool = False) -> list[dict]:
    """
    Decode YOLO-seg outputs as ultralytics' predictor does; return [{box, class_id, score, mask}].

    ``non_max_suppression``: best class per anchor, score above the threshold, then the class
    filter, NMS with class offsets (:func:`reference_nms`), at most ``max_keep``.
    ``scale_boxes`` (each axis by the letterbox's rounded size), then ``process_mask_native``:
    full-frame logits (:func:`reference_mask_resize`), pixels whose column and row indices lie
    in the box (``crop_mask``), logit > 0. ``ambiguous`` marks the pixels whose logit is within
    float rounding of 0. ``keep_empty``: keep the detections whose mask is empty (what seg_ros
    did before it followed ultralytics).
    """
    num_classes = detections.shape[1] - 36
    rows = detections[0].astype(np.float32)
    boxes, scores, classes, anchors = [], [], [], []
    for anchor in range(rows.shape[1]):
        class_scores = rows[4:4 + num_classes, anchor]
        best = int(np.argmax(class_scores))
        if class_scores[best] > score_threshold and (class_ids is None or best in class_ids):
            cx, cy, w, h = rows[:4, anchor]
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])  # float32, as torch
            scores.append(float(class_scores[best]))
            classes.append(best)
            anchors.append(anchor)
    lb = reference_letterbox(frame_w, frame_h, input_w, input_h)
    protos = prototypes[0].astype(np.float32)
    channels, mask_h, mask_w = protos.shape
    columns, lines = np.arange(frame_w, dtype=np.float32), np.arange(frame_h, dtype=np.float32)
    result = []
    for index in reference_nms(boxes, scores, classes, iou_threshold, max_keep):
        box = [np.float32(value) for value in reference_box_to_frame(
            boxes[index], lb, frame_w, frame_h, np.float32)]  # float32, as torch
        coefficients = rows[4 + num_classes:, anchors[index]]
        logits = (coefficients @ protos.reshape(channels, -1)).reshape(mask_h, mask_w)
        full = reference_mask_resize(logits, frame_w, frame_h)
        inside = (((columns >= box[0]) & (columns < box[2]))[np.newaxis]
                  & ((lines >= box[1]) & (lines < box[3]))[:, np.newaxis])
        mask = (full > 0) & inside
        if keep_empty or mask.any():
            result.append({'box': [float(value) for value in box], 'class_id': classes[index],
                           'score': scores[index], 'mask': mask,
                           'ambiguous': inside & (np.abs(full) < 1e-4)})
    return result


def reference_mask_rcnn(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                        masks: np.ndarray, frame_w: int, frame_h: int, input_w: int,
                        input_h: int, score_threshold: float, max_keep: int) -> list[dict]:
    """Decode Mask R-CNN constants; return [{box, class_id, score, mask, ambiguous}]."""
    lb = reference_letterbox(frame_w, frame_h, input_w, input_h)
    order = sorted((i for i in range(len(scores)) if scores[i] > score_threshold),
                   key=lambda i: (-scores[i], i))[:max_keep]
    result = []
    for index in order:
        box = reference_box_to_frame(boxes[index].astype(np.float64), lb, frame_w, frame_h)
        mask, ambiguous = reference_mask(masks[index, 0].astype(np.float64), box, lb, 1.0,
                                         frame_w, frame_h)
        result.append({'box': box, 'class_id': int(labels[index]), 'score': float(scores[index]),
                       'mask': mask, 'ambiguous': ambiguous})
    return [item for item in result if _covers_a_pixel(item['box'])]


def _covers_a_pixel(box: list[float]) -> bool:
    """Whether some pixel u has round(x0) <= u < round(x1) (and likewise vertically)."""
    return np.rint(box[2]) > np.rint(box[0]) and np.rint(box[3]) > np.rint(box[1])


def reference_components(binary: np.ndarray) -> list[np.ndarray]:
    """Return the 8-connected components of a boolean map as masks, by breadth-first search."""
    height, width = binary.shape
    seen = np.zeros_like(binary, bool)
    components = []
    for start_v, start_u in zip(*np.nonzero(binary)):
        if seen[start_v, start_u]:
            continue
        seen[start_v, start_u] = True
        queue = [(start_v, start_u)]
        pixels = []
        while queue:
            v, u = queue.pop()
            pixels.append((v, u))
            for dv in (-1, 0, 1):
                for du in (-1, 0, 1):
                    nv, nu = v + dv, u + du
                    if 0 <= nv < height and 0 <= nu < width and binary[nv, nu] \
                            and not seen[nv, nu]:
                        seen[nv, nu] = True
                        queue.append((nv, nu))
        mask = np.zeros_like(binary, bool)
        rows, cols = zip(*pixels)
        mask[list(rows), list(cols)] = True
        components.append(mask)
    return components
