"""Tests of seg_ros.core.segmenter with the tiny models of test/models.py on real backends."""

import cv2
import numpy as np
import pytest

from models import expected_class_map, make_frame, make_fused_model, make_scores_model
from runtimes import INSTALLED
from seg_ros.core.errors import ModelError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

WIDTH, HEIGHT = 64, 32
NUM_CLASSES = 4
COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 200, 10]], np.uint8)


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp('segmenter')
    classes = folder / 'classes.txt'
    classes.write_text('road\nsky\ncar\nperson\n')
    colors = folder / 'colors.txt'
    colors.write_text(''.join(f'{r},{g},{b}\n' for r, g, b in COLORS.tolist()))
    return {'scores': make_scores_model(folder / 'scores.onnx', NUM_CLASSES),
            'fused': make_fused_model(folder / 'fused.onnx', NUM_CLASSES),
            'classes': str(classes), 'colors': str(colors), 'folder': str(folder)}


def make_segmenter(files, backend='auto', model='scores', **overrides) -> Segmenter:
    config = {'model_path': files[model], 'input_width': WIDTH, 'input_height': HEIGHT,
              'rescale_factor': 1.0, 'backend': backend, 'target': 'cpu',
              'classes_path': files['classes'], 'colors_path': files['colors'], **overrides}
    return Segmenter(SegmenterConfig(**config))


def nearest_full(class_map: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(class_map, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('model', ['scores', 'fused'])
def test_run_produces_every_output_consistently(files, backend, model):
    segmenter = make_segmenter(files, backend, model)
    assert segmenter.backend.name == backend and segmenter.labels.names[1] == 'sky'
    frame_bgr = make_frame(150, 90, seed=7)
    expected = expected_class_map(frame_bgr, NUM_CLASSES, width=WIDTH, height=HEIGHT,
                                  fused=model == 'fused')
    for encoding, frame in (('bgr8', frame_bgr), ('rgb8', np.ascontiguousarray(
            frame_bgr[:, :, ::-1]))):
        result = segmenter.run(frame, encoding=encoding, alpha=0.4)
        assert result.encoding == encoding
        np.testing.assert_array_equal(result.class_map, expected)
        np.testing.assert_array_equal(result.class_map_full, nearest_full(expected, 150, 90))
        colors = COLORS if encoding == 'rgb8' else COLORS[:, ::-1]
        np.testing.assert_array_equal(result.color_mask, colors[result.class_map_full])
        reference = 0.6 * frame.astype(np.float64) + 0.4 * result.color_mask
        assert result.overlay.shape == frame.shape
        assert np.abs(result.overlay - reference).max() <= 1.0
        assert 0.0 < result.inference_ms <= result.total_ms


def test_outputs_are_made_only_when_asked(files):
    segmenter = make_segmenter(files)
    frame = make_frame(100, 70, seed=8)
    result = segmenter.run(frame, class_map=False, color_mask=False, overlay=False)
    assert result.class_map.shape == (HEIGHT, WIDTH)
    assert result.class_map_full is None and result.color_mask is None and result.overlay is None
    result = segmenter.run(frame, color_mask=False, overlay=False, full_resolution=False)
    assert result.class_map_full is None and result.color_mask is None


def test_model_resolution_outputs(files):
    segmenter = make_segmenter(files)
    frame = make_frame(100, 70, seed=9)
    result = segmenter.run(frame, encoding='bgr8', overlay=False, full_resolution=False)
    assert result.class_map_full is None
    np.testing.assert_array_equal(result.color_mask, COLORS[:, ::-1][result.class_map])
    result = segmenter.run(frame, encoding='bgr8', full_resolution=False)
    assert result.color_mask.shape == (HEIGHT, WIDTH, 3)
    assert result.overlay.shape == (70, 100, 3)  # the overlay is always at frame size
    full_mask = COLORS[:, ::-1][nearest_full(result.class_map, 100, 70)]
    np.testing.assert_array_equal(result.overlay, cv2.addWeighted(frame, 0.5, full_mask, 0.5, 0))


def test_grey_frames(files):
    segmenter = make_segmenter(files)
    grey = make_frame(100, 70, seed=10)[:, :, 0].copy()
    expected = expected_class_map(cv2.merge((grey, grey, grey)), NUM_CLASSES, width=WIDTH,
                                  height=HEIGHT)
    for encoding in ('mono8', 'bgr8'):
        result = segmenter.run(grey, encoding=encoding)
        np.testing.assert_array_equal(result.class_map, expected)
        assert result.overlay.shape == (70, 100, 3)
    assert segmenter.run(grey, encoding='mono8').encoding == 'rgb8'


@pytest.mark.parametrize('frame, encoding, match', [
    (np.zeros((10, 10, 3), np.float32), 'bgr8', 'uint8'),
    (np.zeros((10, 10, 4), np.uint8), 'bgr8', 'shape'),
    (np.zeros((0, 10, 3), np.uint8), 'bgr8', 'shape'),
    (np.zeros((10, 10, 3), np.uint8), 'yuv422', 'encoding'),
    (np.zeros((10, 10, 3), np.uint8), 'mono8', 'mono8'),
])
def test_bad_frames_are_rejected(files, frame, encoding, match):
    segmenter = make_segmenter(files)
    with pytest.raises(ValueError, match=match):
        segmenter.run(frame, encoding=encoding)


def test_bad_alpha_is_rejected(files):
    with pytest.raises(ValueError, match='alpha'):
        make_segmenter(files).run(make_frame(10, 10), alpha=-0.1)


@pytest.mark.parametrize('parameter, text', [('classes_path', 'a\nb\nc\n'),
                                             ('colors_path', '1,2,3\n4,5,6\n7,8,9\n')])
def test_label_files_must_match_the_model_classes(files, tmp_path, parameter, text):
    wrong = tmp_path / 'wrong.txt'
    wrong.write_text(text)
    with pytest.raises(ModelError) as raised:
        make_segmenter(files, **{parameter: str(wrong)})
    assert raised.value.parameter == parameter and raised.value.value == str(wrong)
    assert '3' in str(raised.value) and f'{NUM_CLASSES} classes' in str(raised.value)


def test_missing_labels_use_generated_names_and_palette(files):
    segmenter = make_segmenter(files, classes_path='', colors_path='')
    assert segmenter.labels.names == tuple(f'class_{i}' for i in range(NUM_CLASSES))
    assert len({tuple(color) for color in segmenter.labels.colors_rgb.tolist()}) == NUM_CLASSES


def test_configuration_errors_name_the_field(files):
    for overrides, parameter in (({'input_width': -3}, 'input_width'),
                                 ({'image_mean': (1.0, 2.0)}, 'image_mean'),
                                 ({'backend': 'tensorrt'}, 'backend'),
                                 ({'model_path': files['folder']}, 'model_path')):
        with pytest.raises(ModelError) as raised:
            make_segmenter(files, **overrides)
        assert raised.value.parameter == parameter
