"""
YOLO-seg decoding as ultralytics' predictor does it, on a real export and the real photos.

The export (:mod:`yolo_seg_export`) has ultralytics' YOLOv8-seg output format at its scale
(640x640 input, 8400 anchors, 160x160 prototypes) and random weights whose batch-norm
statistics were measured on the photos, so that it detects a hundred objects per photo and
segments each. onnxruntime runs it on each photo letterboxed; seg_ros decodes the outputs and
:func:`instance_models.reference_yolo_seg` (ultralytics' 8.4 ``non_max_suppression``,
``scale_boxes`` and ``process_mask_native`` with ``retina_masks=True``, written out in NumPy,
sharing no code with seg_ros) decodes the same outputs. Each rule where seg_ros once differed
from ultralytics has a test of its own here: the network input (x / 255), NMS with boxes moved
by class, the 2x / 4x enlargement of the logits where the letterbox padding is not whole
prototype cells, the crop by pixel index. Ultralytics itself is AGPL and never imported here
(``bench/yolo_seg_vs_ultralytics.py`` compares with it where it is installed).
"""

import os

import cv2
import numpy as np
import pytest

from instance_models import reference_mask_resize, reference_nms, reference_yolo_seg
from seg_ros.core.decode.instance_decoders import (decode_yolo_seg, InstanceSettings, nms,
                                                   yolo_seg_layout)
from seg_ros.core.decode.instances import crop_region, Instances, pixel_region
from seg_ros.core.decode.letterbox import Letterbox, letterbox_blob
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

onnxruntime = pytest.importorskip('onnxruntime')
torch = pytest.importorskip('torch')
pytest.importorskip('onnx')
yolo_seg_export = pytest.importorskip('yolo_seg_export')

IMAGES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                          'images')
PHOTO_NAMES = ('leuvenA.jpg', 'leuvenB.jpg')
SIZE = yolo_seg_export.INPUT_SIZE
# (score threshold, NMS IoU, max detections): the issue's comparison, and ultralytics' defaults.
SETTINGS = [(0.5, 0.5, 100), (0.25, 0.7, 300)]


def _photos() -> dict[str, np.ndarray]:
    photos = {}
    for name in PHOTO_NAMES:
        frame = cv2.imread(os.path.join(IMAGES_DIR, name))
        if frame is None:
            pytest.skip(f'the photo {name} is not in {IMAGES_DIR}')
        photos[name] = frame
    return photos


@pytest.fixture(scope='module')
def photos() -> dict[str, np.ndarray]:
    """Both photos, a portrait rotation of one and an odd-sized crop of the other (BGR)."""
    found = _photos()
    first, second = (found[name] for name in PHOTO_NAMES)
    found['leuvenA-portrait'] = cv2.rotate(first, cv2.ROTATE_90_CLOCKWISE)
    found['leuvenB-crop'] = np.ascontiguousarray(second[37:37 + 401, 90:90 + 613])
    return found


@pytest.fixture(scope='module')
def export(photos) -> str:
    return yolo_seg_export.export([photos[name] for name in PHOTO_NAMES])


@pytest.fixture(scope='module')
def outputs(export, photos) -> dict[str, dict[str, np.ndarray]]:
    """Each photo's outputs from onnxruntime on ultralytics' letterbox of it."""
    session = onnxruntime.InferenceSession(export, providers=['CPUExecutionProvider'])
    names = [output.name for output in session.get_outputs()]
    return {name: dict(zip(names, session.run(None, {'images': yolo_seg_export.letterboxed(
        frame)}))) for name, frame in photos.items()}


def _mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def compare(instances, expected) -> dict:
    """Assert the same detections; return the figures (count, IoUs, pixels that differ)."""
    assert len(instances) == len(expected)
    ious, differing = [], 0
    for index, item in enumerate(expected):
        assert instances.class_id[index] == item['class_id']
        assert instances.score[index] == pytest.approx(item['score'], abs=1e-6)
        np.testing.assert_allclose(instances.xyxy[index], item['box'], atol=1e-3)
        differs = (instances.masks[index] != item['mask']) & ~item['ambiguous']
        differing += int(differs.sum())
        ious.append(_mask_iou(instances.masks[index], item['mask']))
    return {'count': len(expected), 'min_iou': min(ious, default=1.0), 'differing': differing}


def test_seg_ros_letterbox_is_ultralytics_letterbox(export, photos):
    # Bit for bit: ultralytics divides by 255 in float32. A product with float32(1 / 255)
    # differs in the last bit for most pixels, and the network's outputs move with it.
    segmenter = Segmenter(SegmenterConfig(export, backend='onnxruntime'))
    for name, frame in photos.items():
        letterbox = Letterbox.fit(frame.shape[1], frame.shape[0], SIZE, SIZE)
        expected = yolo_seg_export.letterboxed(frame)
        np.testing.assert_array_equal(letterbox_blob(frame, 'bgr8', letterbox), expected)
        network_input = segmenter.backend.prepare(letterbox.apply(frame), 'bgr8')
        np.testing.assert_array_equal(network_input, expected, err_msg=name)
        pixels = letterbox.apply(frame).astype(np.float32)
        assert (pixels * np.float32(1 / 255) != pixels / 255).mean() > 0.3  # the rule matters


def test_the_export_really_detects_and_segments(outputs, photos):
    for name, output in outputs.items():
        assert output['output0'].shape == (1, 4 + 80 + 32, 8400)
        assert output['output1'].shape == (1, 32, SIZE // 4, SIZE // 4)
        frame = photos[name]
        expected = reference_yolo_seg(output['output0'], output['output1'], frame.shape[1],
                                      frame.shape[0], SIZE, SIZE, 0.5, 0.5, 300)
        assert len(expected) >= 50, name
        assert len({item['class_id'] for item in expected}) >= 20, name
        fill = [item['mask'].sum() / max((item['box'][2] - item['box'][0])
                                         * (item['box'][3] - item['box'][1]), 1)
                for item in expected]
        assert 0.1 < np.median(fill) < 0.8, name  # masks cover part of their boxes


@pytest.mark.parametrize('score, iou, max_det', SETTINGS)
def test_decoding_equals_ultralytics_rule_on_real_photos(outputs, photos, score, iou, max_det):
    figures = {}
    for name, output in outputs.items():
        frame = photos[name]
        height, width = frame.shape[:2]
        letterbox = Letterbox.fit(width, height, SIZE, SIZE)
        layout = yolo_seg_layout({key: value.shape for key, value in output.items()}, SIZE,
                                 SIZE)
        instances = decode_yolo_seg(output, layout, letterbox,
                                    InstanceSettings(score, iou, max_det))
        expected = reference_yolo_seg(output['output0'], output['output1'], width, height,
                                      SIZE, SIZE, score, iou, max_det)
        figures[name] = compare(instances, expected)
        assert figures[name]['min_iou'] >= 0.999, (name, figures[name])
        assert figures[name]['differing'] == 0, (name, figures[name])
    print(f'conf {score} iou {iou} max_det {max_det}:', figures)


@pytest.mark.parametrize('score, iou, max_det', SETTINGS)
def test_detections_with_an_empty_mask_are_dropped(outputs, photos, score, iou, max_det):
    # The rule matters on these photos: NMS keeps detections whose mask is empty in the box.
    counts = {}
    for name, output in outputs.items():
        frame = photos[name]
        arguments = (output['output0'], output['output1'], frame.shape[1], frame.shape[0],
                     SIZE, SIZE, score, iou, max_det)
        counts[name] = (len(reference_yolo_seg(*arguments, keep_empty=True)),
                        len(reference_yolo_seg(*arguments)))
    print(f'conf {score} iou {iou} max_det {max_det}: (after NMS, with a mask):', counts)
    assert any(after_nms > with_mask for after_nms, with_mask in counts.values())


def test_opencv_resize_is_torch_bilinear_interpolate(outputs, photos):
    # The reference resizes with cv2.resize; ultralytics with F.interpolate(bilinear,
    # align_corners=False), to a size and by a factor (2 or 4): the same values, up- and
    # downscaling, on real logit maps.
    functional = torch.nn.functional
    output = outputs['leuvenA.jpg']
    logits = np.tensordot(output['output0'][0, 84:, :3].T, output['output1'][0], axes=1)
    crop = np.ascontiguousarray(logits[:, 20:140, :], np.float32)  # a landscape frame's rows
    for width, height in ((751, 563), (613, 401), (97, 61)):
        expected = functional.interpolate(torch.from_numpy(crop)[None], (height, width),
                                          mode='bilinear', align_corners=False)[0].numpy()
        resized = np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
                            for plane in crop])
        np.testing.assert_allclose(resized, expected, atol=1e-4 * np.abs(expected).max())
    for factor in (2, 4):
        expected = functional.interpolate(torch.from_numpy(crop)[None], scale_factor=factor,
                                          mode='bilinear', align_corners=False)[0].numpy()
        resized = np.stack([cv2.resize(plane, None, fx=factor, fy=factor,
                                       interpolation=cv2.INTER_LINEAR) for plane in crop])
        np.testing.assert_allclose(resized, expected, atol=1e-4 * np.abs(expected).max())


def test_nms_keeps_classes_apart_as_ultralytics_does():
    # Ultralytics moves each box by class x 7680 pixels (float32) before torchvision's NMS. Far
    # from 0 float32 holds a coordinate to 1/16 pixel: these two boxes overlap with IoU 0.509,
    # above 0.5 (one kept) for class 0, but their moved copies for class 79 only 0.497 (both).
    first, second = [399.02, 172.57, 408.42, 177.07], [399.22, 173.97, 408.62, 178.47]
    boxes, scores = np.array([first, second], np.float32), np.array([0.9, 0.8], np.float32)
    for class_id, count in ((0, 1), (79, 2)):
        classes = np.array([class_id, class_id])
        assert len(nms(boxes, scores, classes, 0.5, 100)) == count, class_id
        assert len(reference_nms([first, second], [0.9, 0.8], [class_id] * 2, 0.5, 100)) == count
    # Boxes of different classes never suppress each other.
    assert list(nms(boxes, scores, np.array([3, 4]), 0.0, 100)) == [0, 1]


@pytest.mark.parametrize('width, height, factor', [
    (751, 563, 1), (1280, 720, 1), (563, 751, 1),  # padding of 160 or 280: whole cells
    (640, 484, 2),  # 156 pixels of padding, 78 a side: half cells
    (640, 482, 4), (600, 400, 4), (613, 401, 4), (427, 640, 4)])  # odd sides
def test_logits_are_enlarged_where_the_padding_is_not_whole_cells(outputs, width, height,
                                                                  factor):
    # Ultralytics 8.4's process_mask_native enlarges the prototype-resolution logits 2 or 4
    # times before it cuts the letterbox padding and resizes to the frame: a second bilinear
    # pass that changes the masks, not only their edges.
    letterbox = Letterbox.fit(width, height, SIZE, SIZE)
    assert letterbox.mask_upsampling(SIZE // 4, SIZE // 4).factor == factor
    output = outputs['leuvenA.jpg']
    layout = yolo_seg_layout({key: value.shape for key, value in output.items()}, SIZE, SIZE)
    instances = decode_yolo_seg(output, layout, letterbox, InstanceSettings(0.5, 0.5, 100))
    expected = reference_yolo_seg(output['output0'], output['output1'], width, height, SIZE,
                                  SIZE, 0.5, 0.5, 100)
    assert compare(instances, expected)['differing'] == 0
    if factor > 1:  # one cut and one resize, as before ultralytics 8.4, is another mask
        detected = np.flatnonzero(output['output0'][0, 4:84].max(axis=0) > 0.5)[:10]
        flipped = 0
        for anchor in detected:
            logits = np.ascontiguousarray(np.tensordot(output['output0'][0, 84:, anchor],
                                                       output['output1'][0], axes=1), np.float32)
            flipped += ((_one_resize(logits, width, height) > 0)
                        != (reference_mask_resize(logits, width, height) > 0)).sum()
        assert flipped > 0.005 * len(detected) * width * height  # 2.5-8 % on these photos


def _one_resize(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """Cut the padding from the prototype-resolution logits and resize them once."""
    grid = logits.shape[0]
    gain = min(grid / height, grid / width)
    pad_w, pad_h = (grid - width * gain) / 2, (grid - height * gain) / 2
    top, left = round(pad_h - 0.1), round(pad_w - 0.1)
    cut = logits[top:grid - round(pad_h + 0.1), left:grid - round(pad_w + 0.1)]
    return cv2.resize(np.ascontiguousarray(cut), (width, height), interpolation=cv2.INTER_LINEAR)


def test_masks_are_cut_by_pixel_index_as_crop_mask_does():
    # crop_mask keeps column u of a box [x0, x1] when x0 <= u < x1 (float compare), not when
    # the box holds the pixel's centre: x1 = 10.3 keeps column 10, x0 = 2.5 drops column 2.
    assert crop_region((2.5, 0.0, 10.3, 5.0), 100, 100) == (3, 0, 11, 5)
    assert pixel_region((2.5, 0.0, 10.3, 5.0), 100, 100) == (2, 0, 10, 5)
    assert crop_region((-3.0, 97.2, 120.0, 130.0), 100, 100) == (0, 98, 100, 100)
    masks = np.zeros((2, 8, 20), bool)
    masks[0, 0:5, 3:11] = True  # every pixel crop_region allows
    masks[1, 2:4, 2:10] = True  # every pixel pixel_region allows
    instances = Instances.numbered(np.array([[2.5, 0.0, 10.3, 5.0]] * 2, np.float32), masks,
                                   [1, 2], [0.9, 0.8])
    for (u0, v0, u1, v1), mask in zip(instances.regions(), instances.masks):
        assert mask[v0:v1, u0:u1].sum() == mask.sum()  # the region holds either rule's pixels


def test_the_segmenter_gives_the_same_instances(export, photos):
    segmenter = Segmenter(SegmenterConfig(export, backend='onnxruntime', score_threshold=0.5,
                                          nms_iou=0.5, max_instances=100))
    assert segmenter.task == 'yolo_seg'
    for name in ('leuvenA.jpg', 'leuvenA-portrait'):
        frame = photos[name]
        session = onnxruntime.InferenceSession(export, providers=['CPUExecutionProvider'])
        output0, output1 = session.run(None, {'images': yolo_seg_export.letterboxed(frame)})
        expected = reference_yolo_seg(output0, output1, frame.shape[1], frame.shape[0], SIZE,
                                      SIZE, 0.5, 0.5, 100)
        result = segmenter.run(frame, encoding='bgr8')
        figures = compare(result.instances, expected)
        assert figures['min_iou'] >= 0.999 and figures['differing'] == 0, (name, figures)


@pytest.mark.parametrize('width, height', [(1920, 1080), (64, 480), (1000, 17), (17, 1000),
                                           (641, 639), (640, 640), (5, 3), (160, 160),
                                           (321, 240)])
def test_frames_of_any_size_and_aspect_map_as_ultralytics_does(outputs, width, height):
    # Decoding is arithmetic on the outputs: one photo's outputs read as the letterbox of frames
    # of other sizes (the padding then holds objects too) give the rule's instances.
    output = outputs['leuvenA.jpg']
    letterbox = Letterbox.fit(width, height, SIZE, SIZE)
    layout = yolo_seg_layout({key: value.shape for key, value in output.items()}, SIZE, SIZE)
    instances = decode_yolo_seg(output, layout, letterbox, InstanceSettings(0.5, 0.5, 100))
    expected = reference_yolo_seg(output['output0'], output['output1'], width, height, SIZE,
                                  SIZE, 0.5, 0.5, 100)
    figures = compare(instances, expected)
    assert figures['differing'] == 0, figures
    assert instances.masks.shape == (len(expected), height, width)
