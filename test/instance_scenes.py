"""
The instance scenes the tests share: YOLO-seg and Mask R-CNN outputs known exactly.

The models of :mod:`instance_models` output these constants; the tests decode them with seg_ros
and compare with the NumPy references there (:func:`assert_matches`).
"""

import numpy as np
import pytest

from instance_models import rectangle_prototypes, yolo_detections

# YOLO-seg scene: 64x64 input, 16x16 prototypes, a 96x64 frame (letterbox: 64x43, top 10).
YOLO_W, YOLO_H, FRAME_W, FRAME_H, CLASSES, ANCHORS = 64, 64, 96, 64, 3, 40
RECTANGLES = [(2, 4, 7, 9), (8, 4, 14, 10), (3, 9, 9, 14)]
CANDIDATES = [
    {'box': (18, 26, 24, 24), 'scores': {0: 0.9}, 'coefficients': {0: 1.0}},
    # Same class, overlapping anchor 0 (IoU 0.85): suppressed.
    {'box': (19, 27, 24, 24), 'scores': {0: 0.8}, 'coefficients': {0: 1.0}},
    # Anchor 0's box, another class: kept (class-aware NMS), with anchor 0's mask.
    {'box': (18, 26, 24, 24), 'scores': {1: 0.7, 0: 0.2}, 'coefficients': {0: 1.0}},
    {'box': (44, 28, 28, 28), 'scores': {0: 0.85}, 'coefficients': {1: 1.0}},
    {'box': (24, 46, 28, 24), 'scores': {2: 0.6}, 'coefficients': {2: 1.0}},
    {'box': (40, 40, 20, 20), 'scores': {2: 0.4}, 'coefficients': {2: 1.0}},  # below 0.5
    # Ties anchor 3's score: anchor 3 comes first. Its mask (R0) lies outside its box: empty,
    # so dropped (as ultralytics drops it).
    {'box': (55, 53, 14, 18), 'scores': {0: 0.85}, 'coefficients': {0: 1.0}},
    # Best score, but all in the letterbox padding above the frame: not visible, dropped (after
    # taking one of the max_instances places, as in ultralytics).
    {'box': (30, 4, 10, 6), 'scores': {1: 0.95}, 'coefficients': {0: 1.0}},
    # Half out of the frame on the right: clipped.
    {'box': (62, 20, 12, 12), 'scores': {1: 0.65, 2: 0.64}, 'coefficients': {1: 2.0, 0: -1.0}},
]


def yolo_constants(background: float = 0.3, anchors: int = ANCHORS):
    detections = yolo_detections(CANDIDATES, CLASSES, anchors, background)
    prototypes = rectangle_prototypes(RECTANGLES, YOLO_W // 4, YOLO_H // 4)
    return detections, prototypes


def assert_matches(instances, expected, frame_shape):
    assert len(instances) == len(expected)
    np.testing.assert_array_equal(instances.ids, np.arange(1, len(expected) + 1))
    for index, item in enumerate(expected):
        assert instances.class_id[index] == item['class_id']
        assert instances.score[index] == pytest.approx(item['score'], abs=1e-6)
        np.testing.assert_allclose(instances.xyxy[index], item['box'], atol=1e-3)
        decided = ~item['ambiguous']
        np.testing.assert_array_equal(instances.masks[index][decided], item['mask'][decided])
    reference_map = np.zeros(frame_shape, np.uint16)
    for index in reversed(range(len(expected))):
        reference_map[instances.masks[index]] = index + 1
    np.testing.assert_array_equal(instances.instance_map(), reference_map)


RCNN_W, RCNN_H, RCNN_FRAME_W, RCNN_FRAME_H = 64, 48, 128, 80


def rcnn_constants():
    count = 6
    masks = np.full((count, 1, RCNN_H, RCNN_W), 0.1, np.float32)
    masks[0, 0, 8:20, 4:20] = 0.9
    masks[1, 0, 10:30, 30:50] = 0.95
    masks[2, 0, 20:40, 10:30] = 0.8
    # A smooth probability ramp: the threshold cuts it between columns.
    masks[3, 0] = np.linspace(0.0, 1.0, RCNN_W, dtype=np.float32)[None, :]
    masks[4, 0, 30:44, 40:60] = 0.7
    masks[5, 0, 4:44, 0:64] = 0.99
    boxes = np.array([[3, 7, 21, 21], [29, 9, 51, 31], [9, 19, 31, 41], [0, 4, 64, 44],
                      [39, 29, 61, 45], [0, 0, 64, 48]], np.float32)
    labels = np.array([3, 1, 3, 18, 1, 7], np.int64)
    scores = np.array([0.95, 0.3, 0.8, 0.6, 0.55, 0.51], np.float32)
    return boxes, labels, scores, masks
