"""
Instance decoding proved on graphs whose outputs are known exactly, on every installed runtime.

The models of test/instance_models.py output constants; each seg_ros backend's outputs
(``open_backend(...).forward``) are decoded by seg_ros and compared with the NumPy reference
decoder there (boxes, classes, scores, ids, masks pixel by pixel, the instance map).
"""

import numpy as np
import pytest

from instance_models import (make_mask_rcnn_model, make_yolo_seg_model, reference_mask_rcnn,
                             reference_yolo_seg)
from instance_scenes import (assert_matches, CANDIDATES, CLASSES, FRAME_H, FRAME_W,
                             rcnn_constants, RCNN_FRAME_H, RCNN_FRAME_W, RCNN_H, RCNN_W,
                             yolo_constants, YOLO_H, YOLO_W)
from runtimes import INSTALLED
from seg_ros.core.backends import open_backend
from seg_ros.core.decode.instance_decoders import (decode_mask_rcnn, decode_yolo_seg,
                                                   InstanceSettings, mask_rcnn_outputs,
                                                   MAX_NMS_CANDIDATES, nms, yolo_seg_layout)
from seg_ros.core.decode.letterbox import Letterbox, letterbox_blob
from seg_ros.core.errors import ModelError


def run_model(path: str, backend: str, network_input: np.ndarray,
              task: str) -> dict[str, np.ndarray]:
    """Run a model on one seg_ros backend; return every output by name."""
    opened = open_backend(path, {'task': task}, backend=backend)
    assert opened.task == task and opened.input_shape == network_input.shape
    return opened.forward(network_input)


# --- YOLO-seg -------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def yolo_model(tmp_path_factory) -> str:
    detections, prototypes = yolo_constants()
    return make_yolo_seg_model(tmp_path_factory.mktemp('yolo') / 'yolo_seg.onnx', detections,
                               prototypes, width=YOLO_W, height=YOLO_H)


def test_letterbox_matches_ultralytics_arithmetic_and_pads_grey():
    letterbox = Letterbox.fit(FRAME_W, FRAME_H, YOLO_W, YOLO_H)
    assert (letterbox.resized_width, letterbox.resized_height) == (64, 43)
    assert (letterbox.left, letterbox.top) == (0, 10)
    frame = np.full((FRAME_H, FRAME_W, 3), (10, 20, 30), np.uint8)
    blob = letterbox_blob(frame, 'bgr8', letterbox)
    assert blob.shape == (1, 3, YOLO_H, YOLO_W) and blob.dtype == np.float32
    np.testing.assert_allclose(blob[0, :, 30, 30], np.array([30, 20, 10]) / 255, atol=1e-6)
    np.testing.assert_allclose(blob[0, :, 2, 30], 114 / 255, atol=1e-6)   # padding above
    np.testing.assert_allclose(blob[0, :, 60, 30], 114 / 255, atol=1e-6)  # and below
    np.testing.assert_allclose(letterbox_blob(frame[:, :, ::-1].copy(), 'rgb8', letterbox),
                               blob)


@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('max_instances', [100, 3])
def test_yolo_seg_decoding_equals_the_reference(yolo_model, backend, max_instances):
    detections, prototypes = yolo_constants()
    letterbox = Letterbox.fit(FRAME_W, FRAME_H, YOLO_W, YOLO_H)
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    outputs = run_model(yolo_model, backend, letterbox_blob(frame, 'bgr8', letterbox),
                        'yolo_seg')
    layout = yolo_seg_layout({name: value.shape for name, value in outputs.items()},
                             YOLO_W, YOLO_H)
    assert (layout.detections, layout.prototypes, layout.num_classes) == \
        ('output0', 'output1', CLASSES)
    settings = InstanceSettings(score_threshold=0.5, nms_iou=0.5, max_instances=max_instances)
    instances = decode_yolo_seg(outputs, layout, letterbox, settings)
    expected = reference_yolo_seg(detections, prototypes, FRAME_W, FRAME_H, YOLO_W, YOLO_H,
                                  0.5, 0.5, max_instances)
    assert len(expected) == (5 if max_instances == 100 else 2)  # the scene is what it claims
    assert_matches(instances, expected, (FRAME_H, FRAME_W))
    if max_instances == 100:
        # Suppressed, below threshold, invisible, empty: anchors 1, 5, 7 and 6 are not there.
        assert list(instances.score) == pytest.approx([0.9, 0.85, 0.7, 0.65, 0.6])
        assert list(instances.class_id) == [0, 0, 1, 1, 2]
        assert instances.masks.sum(axis=(1, 2)).min() > 0
        np.testing.assert_array_equal(instances.masks[2], instances.masks[0])
        assert instances.xyxy[3, 2] == FRAME_W  # clipped at the frame's right edge


def test_yolo_seg_class_filter_and_threshold():
    detections, prototypes = yolo_constants()
    outputs = {'output0': detections, 'output1': prototypes}
    layout = yolo_seg_layout({k: v.shape for k, v in outputs.items()}, YOLO_W, YOLO_H)
    letterbox = Letterbox.fit(FRAME_W, FRAME_H, YOLO_W, YOLO_H)
    only_two = decode_yolo_seg(outputs, layout, letterbox, InstanceSettings(class_ids=(2,)))
    # Anchor 8 scores 0.64 for class 2 but 0.65 for class 1: its class is 1, so the filter
    # drops it (ultralytics' classes=: the best class first, then the filter).
    assert list(only_two.class_id) == [2]
    assert list(only_two.score) == pytest.approx([0.6])
    assert only_two.masks[0].any()
    filtered = decode_yolo_seg(outputs, layout, letterbox,
                               InstanceSettings(class_ids=(2,), score_threshold=0.62))
    assert len(filtered) == 0
    expected = reference_yolo_seg(detections, prototypes, FRAME_W, FRAME_H, YOLO_W, YOLO_H,
                                  0.5, 0.5, 100, class_ids=(1, 2))
    assert_matches(decode_yolo_seg(outputs, layout, letterbox,
                                   InstanceSettings(class_ids=(1, 2))),
                   expected, (FRAME_H, FRAME_W))
    strict = decode_yolo_seg(outputs, layout, letterbox, InstanceSettings(score_threshold=0.86))
    assert list(strict.score) == pytest.approx([0.9])


def test_yolo_seg_hundreds_of_candidates_give_at_most_max_instances():
    rng = np.random.default_rng(3)
    anchors = 8400
    detections, prototypes = yolo_constants(background=0.0, anchors=anchors)
    # 600 strong, non-overlapping candidates of one class, plus 7000 scoring just below 0.5.
    strong = rng.choice(np.arange(len(CANDIDATES), anchors), 600, replace=False)
    grid = np.arange(600)
    detections[0][:4, strong] = np.stack([(grid % 30) * 2 + 2.5, (grid // 30) * 2 + 2.5,
                                          np.full(600, 1.2), np.full(600, 1.2)])
    detections[0, 4, strong] = rng.uniform(0.96, 0.99, 600).astype(np.float32)
    prototypes[0, 31] = 1.0  # an everywhere-positive prototype: every strong mask is its box
    detections[0, 4 + CLASSES + 31, strong] = 1.0
    weak = np.setdiff1d(np.arange(len(CANDIDATES), anchors), strong)
    detections[0, 5, weak] = 0.49
    outputs = {'output0': detections, 'output1': prototypes}
    layout = yolo_seg_layout({k: v.shape for k, v in outputs.items()}, YOLO_W, YOLO_H)
    letterbox = Letterbox.fit(YOLO_W, YOLO_H, YOLO_W, YOLO_H)
    instances = decode_yolo_seg(outputs, layout, letterbox, InstanceSettings(max_instances=5))
    assert len(instances) == 5
    np.testing.assert_allclose(instances.score, np.sort(detections[0, 4, strong])[::-1][:5])


def test_nms_candidate_cap_keeps_the_best():
    assert MAX_NMS_CANDIDATES >= 1000
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]],
                     np.float32)
    kept = nms(boxes, np.array([0.5, 0.9, 0.7, 0.9], np.float32), np.array([0, 0, 0, 1]),
               0.5, 10)
    assert list(kept) == [1, 3, 2]  # 0 overlaps 1 (IoU 0.68); 3 is another class


@pytest.mark.parametrize('shapes, message', [
    ({'output0': (1, 36, 40), 'output1': (1, 32, 16, 16)}, "'output0' has shape [1, 36, 40]"),
    ({'output0': (1, 39, 40), 'output1': (1, 32, 8, 8)}, "'output1' has shape [1, 32, 8, 8]"),
    ({'output0': (1, 39, 40), 'output1': (1, 16, 16, 16)}, "'output1' has shape"),
    ({'output0': (1, 75, 40)}, '2 outputs'),
    ({'a': (1, 75, 40), 'b': (1, 75, 40)}, "'a' [1, 75, 40], 'b' [1, 75, 40]"),
])
def test_unexpected_yolo_seg_outputs_are_refused_naming_output_and_shape(shapes, message):
    with pytest.raises(ModelError, match='YOLO-seg|2 outputs') as raised:
        yolo_seg_layout(shapes, YOLO_W, YOLO_H)
    assert message in str(raised.value)
    assert raised.value.parameter == 'model_path'


# --- Mask R-CNN -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def rcnn_model(tmp_path_factory) -> str:
    return make_mask_rcnn_model(tmp_path_factory.mktemp('rcnn') / 'mask_rcnn.onnx',
                                *rcnn_constants(), width=RCNN_W, height=RCNN_H)


@pytest.mark.parametrize('backend', INSTALLED)
def test_mask_rcnn_decoding_equals_the_reference(rcnn_model, backend):
    letterbox = Letterbox.fit(RCNN_FRAME_W, RCNN_FRAME_H, RCNN_W, RCNN_H)
    assert (letterbox.resized_width, letterbox.resized_height, letterbox.top) == (64, 40, 4)
    frame = np.zeros((RCNN_FRAME_H, RCNN_FRAME_W, 3), np.uint8)
    outputs = run_model(rcnn_model, backend, letterbox_blob(frame, 'bgr8', letterbox)[0],
                        'maskrcnn')
    names = mask_rcnn_outputs({name: value.shape for name, value in outputs.items()},
                              RCNN_W, RCNN_H)
    settings = InstanceSettings(score_threshold=0.5, max_instances=4)
    instances = decode_mask_rcnn(outputs, names, letterbox, settings)
    expected = reference_mask_rcnn(*rcnn_constants(), RCNN_FRAME_W, RCNN_FRAME_H, RCNN_W,
                                   RCNN_H, 0.5, 4)
    assert [item['class_id'] for item in expected] == [3, 3, 18, 1]
    assert_matches(instances, expected, (RCNN_FRAME_H, RCNN_FRAME_W))
    # The ramp crosses 0.5 in the middle of the input: the left half of its box stays empty.
    ramp = instances.masks[2]
    assert not ramp[:, :60].any() and ramp[10:70, 68:].all()


def test_mask_rcnn_outputs_by_position_and_refused_shapes():
    shapes = {'o1': (5, 4), 'o2': (5,), 'o3': (5,), 'o4': (5, 1, RCNN_H, RCNN_W)}
    assert mask_rcnn_outputs(shapes, RCNN_W, RCNN_H) == ('o1', 'o2', 'o3', 'o4')
    with pytest.raises(ModelError, match=r"'masks' \(masks\) has shape \[5, 1, 24, 32\]"):
        mask_rcnn_outputs({'boxes': (5, 4), 'labels': (5,), 'scores': (5,),
                           'masks': (5, 1, 24, 32)}, RCNN_W, RCNN_H)
    with pytest.raises(ModelError, match=r"'o2' \(labels\) has shape \[5, 2\]"):
        mask_rcnn_outputs({**shapes, 'o2': (5, 2)}, RCNN_W, RCNN_H)
    with pytest.raises(ModelError, match='4 outputs'):
        mask_rcnn_outputs({'o1': (5, 4)}, RCNN_W, RCNN_H)


@pytest.mark.parametrize('name, value', [('score_threshold', 1.5), ('nms_iou', -0.1),
                                         ('max_instances', 0), ('max_instances', 70000),
                                         ('min_instance_area', -1), ('score_threshold', True)])
def test_instance_settings_refuse_bad_values_naming_them(name, value):
    with pytest.raises(ModelError, match=name) as raised:
        InstanceSettings(**{name: value})
    assert raised.value.parameter == name
