"""Two-file model formats (``config_path``): a real tiny Caffe model written by the test."""

import numpy as np
import pytest

from models import expected_class_map, make_caffe_model, make_frame, make_scores_model
from runtimes import INSTALLED
from seg_ros.core.backends import open_backend, Preprocess
from seg_ros.core.errors import ModelError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

WIDTH, HEIGHT = 64, 32
CLASSES = 5


@pytest.fixture(scope='module')
def caffe_model(tmp_path_factory) -> tuple[str, str]:
    """Return (caffemodel, prototxt) of the 1x1-convolution test model."""
    folder = tmp_path_factory.mktemp('caffe')
    prototxt, caffemodel = make_caffe_model(folder / 'net.prototxt', folder / 'net.caffemodel',
                                            CLASSES, width=WIDTH, height=HEIGHT, tie=True)
    return caffemodel, prototxt


def assert_config_error(value, match: str, *args, **kwargs) -> ModelError:
    with pytest.raises(ModelError, match=match) as raised:
        open_backend(*args, **kwargs)
    assert raised.value.parameter == 'config_path' and raised.value.value == value
    return raised.value


@pytest.mark.parametrize('backend', ['opencv', 'auto'])
def test_caffe_model_with_its_prototxt_matches_the_reference(caffe_model, backend):
    caffemodel, prototxt = caffe_model
    segmenter = Segmenter(SegmenterConfig(
        caffemodel, input_width=WIDTH, input_height=HEIGHT, rescale_factor=1.0, backend=backend,
        config_path=prototxt))
    assert segmenter.backend.name == 'opencv' and segmenter.backend.num_classes == CLASSES
    assert 'precision f32' in segmenter.backend.describe()
    for seed, size in ((0, (WIDTH, HEIGHT)), (1, (101, 77))):
        frame = make_frame(*size, seed=seed)
        expected = expected_class_map(frame, CLASSES, width=WIDTH, height=HEIGHT, tie=True)
        assert set(np.unique(expected)) == {0, 1, 2, 3}
        result = segmenter.run(frame, encoding='bgr8', full_resolution=False)
        np.testing.assert_array_equal(result.class_map, expected)


def test_caffe_model_without_its_prototxt_names_config_path(caffe_model):
    caffemodel, _ = caffe_model
    error = assert_config_error('', 'prototxt', caffemodel, Preprocess(WIDTH, HEIGHT), 'opencv')
    assert 'Caffe' in str(error)


def test_missing_or_bad_config_names_config_path(tmp_path, caffe_model):
    caffemodel, _ = caffe_model
    preprocess = Preprocess(WIDTH, HEIGHT)
    missing = str(tmp_path / 'missing.prototxt')
    assert_config_error(missing, 'does not exist', caffemodel, preprocess, config_path=missing)
    assert_config_error(str(tmp_path), 'directory', caffemodel, preprocess,
                        config_path=str(tmp_path))
    empty = tmp_path / 'empty.prototxt'
    empty.write_text('')
    assert_config_error(str(empty), 'empty', caffemodel, preprocess, config_path=str(empty))
    garbage = tmp_path / 'garbage.prototxt'
    garbage.write_text('this is { not a network\n')
    assert_config_error(str(garbage), 'OpenCV DNN cannot read config_path', caffemodel,
                        preprocess, 'opencv', config_path=str(garbage))


@pytest.mark.parametrize('backend', ['auto', *INSTALLED])
def test_config_path_with_a_single_file_model_names_config_path(tmp_path, caffe_model, backend):
    onnx_model = make_scores_model(tmp_path / 'scores.onnx', 3)
    _, prototxt = caffe_model
    assert_config_error(prototxt, 'single-file model', onnx_model, Preprocess(WIDTH, HEIGHT),
                        backend, config_path=prototxt)


@pytest.mark.parametrize('backend', [name for name in INSTALLED if name != 'opencv'])
def test_optional_runtimes_refuse_caffe_models(caffe_model, backend):
    caffemodel, prototxt = caffe_model
    with pytest.raises(ModelError, match='only ONNX') as raised:
        open_backend(caffemodel, Preprocess(WIDTH, HEIGHT), backend, config_path=prototxt)
    assert raised.value.parameter == 'backend'
