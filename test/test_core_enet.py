"""
The real ENet Cityscapes model (Torch7 .net, run as given) on the two street photos in ../shared.

The expected properties were read off the overlays once: both photos are narrow cobbled streets
between brick buildings under an overcast sky; leuvenB has two bicycles parked at the lower left.
ENet labels the sky well, most cobbles as Unlabeled (with some Road/Sidewalk) and the bicycles as
Bicycle.
"""

import os

import cv2
import numpy as np
import pytest

from seg_ros.core.backends import available_backends, open_backend, Preprocess
from seg_ros.core.errors import ModelError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

UNLABELED, ROAD, SIDEWALK, BUILDING, SKY, BICYCLE = 0, 1, 2, 3, 11, 19


@pytest.fixture(scope='module')
def enet(enet_dir) -> Segmenter:
    return Segmenter(SegmenterConfig(
        os.path.join(enet_dir, 'enet-model.net'), input_width=1024, input_height=512,
        classes_path=os.path.join(enet_dir, 'enet-classes.txt'),
        colors_path=os.path.join(enet_dir, 'enet-colors.txt')))


def photo(enet_dir: str, name: str) -> np.ndarray:
    path = os.path.join(enet_dir, os.pardir, os.pardir, 'images', name)
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        pytest.skip(f'test photo {path} not found')
    return frame


def shares(class_map: np.ndarray) -> np.ndarray:
    return np.bincount(class_map.ravel(), minlength=20) / class_map.size


def test_enet_loads_with_the_cityscapes_labels_on_the_fastest_backend(enet, enet_dir):
    """With backend auto the .net runs as its cached fused-ONNX conversion where it can."""
    assert enet.backend.num_classes == 20
    assert enet.labels.names[SKY] == 'Sky' and enet.labels.names[BICYCLE] == 'Bicycle'
    onnx_runtimes = [name for name in ('openvino', 'onnxruntime')
                     if available_backends()[name] is None]
    if not onnx_runtimes:
        assert enet.backend.name == 'opencv' and enet.model_file.endswith('enet-model.net')
        return
    assert enet.backend.name == onnx_runtimes[0] and enet.backend.kind == 'fused'
    assert enet.model_file.endswith('.onnx') and not enet.warnings
    assert f'auto: chose {onnx_runtimes[0]}' in enet.notes


def test_enet_on_opencv_runs_the_torch7_file(enet_dir):
    enet = Segmenter(SegmenterConfig(os.path.join(enet_dir, 'enet-model.net'),
                                     backend='opencv'))
    assert enet.backend.name == 'opencv' and enet.model_file.endswith('enet-model.net')
    assert not any('openvino' in note or 'onnxruntime' in note for note in enet.notes)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_enet_torch7_file_is_refused_by_the_onnx_runtimes_themselves(enet_dir, backend):
    """open_backend alone does not convert: the ONNX runtimes read ONNX only."""
    with pytest.raises(ModelError, match='only ONNX') as raised:
        open_backend(os.path.join(enet_dir, 'enet-model.net'), Preprocess(1024, 512),
                     backend=backend)
    assert raised.value.parameter == 'backend'


@pytest.mark.parametrize('name', ['leuvenA.jpg', 'leuvenB.jpg'])
def test_enet_sees_sky_above_and_ground_below(enet, enet_dir, name):
    frame = photo(enet_dir, name)
    result = enet.run(frame, encoding='bgr8')
    assert result.class_map.shape == (512, 1024)
    assert result.class_map_full.shape == frame.shape[:2]
    assert result.overlay.shape == result.color_mask.shape == frame.shape
    class_map = result.class_map_full
    third = class_map.shape[0] // 3
    top, bottom = shares(class_map[:third]), shares(class_map[-third:])
    assert np.argmax(top) == SKY and top[SKY] > 0.45
    assert top[SKY] + top[BUILDING] > 0.65
    assert bottom[SKY] < 0.01
    assert np.argmax(bottom) == UNLABELED
    assert bottom[UNLABELED] + bottom[ROAD] + bottom[SIDEWALK] > 0.6


def test_enet_finds_the_bicycles_in_leuven_b_only(enet, enet_dir):
    with_bicycles = enet.run(photo(enet_dir, 'leuvenB.jpg'), encoding='bgr8', overlay=False,
                             color_mask=False).class_map_full
    # The two parked bicycles, lower left of the 751x563 photo.
    bicycles = shares(with_bicycles[390:470, 130:270])
    assert np.argmax(bicycles) == BICYCLE and bicycles[BICYCLE] > 0.4
    without = enet.run(photo(enet_dir, 'leuvenA.jpg'), encoding='bgr8', overlay=False,
                       color_mask=False).class_map_full
    assert shares(without)[BICYCLE] < 0.01


def test_enet_gives_the_same_classes_for_rgb_frames(enet, enet_dir):
    frame = photo(enet_dir, 'leuvenA.jpg')
    from_bgr = enet.run(frame, encoding='bgr8', overlay=False, color_mask=False)
    from_rgb = enet.run(np.ascontiguousarray(frame[:, :, ::-1]), encoding='rgb8', overlay=False,
                        color_mask=False)
    np.testing.assert_array_equal(from_rgb.class_map, from_bgr.class_map)


def test_enet_at_a_size_it_cannot_run_is_a_model_error(enet_dir):
    # ENet halves the size three times and concatenates/unpools with earlier layers.
    with pytest.raises(ModelError, match='1000x500') as raised:
        Segmenter(SegmenterConfig(os.path.join(enet_dir, 'enet-model.net'), input_width=1000,
                                  input_height=500))
    assert 'input_width' in str(raised.value)
