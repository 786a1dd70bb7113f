"""
Models whose output is unusable on some frames: NaN or Inf, or a shape that changes.

Real ONNX graphs, run by every installed backend: on a dark frame one gives NaN scores, another
gives scores half as wide as at start-up; on a bright frame both are fine. The frame is refused
with a message naming the output, the next one segments, and ``seg-ros segment`` reports the
bad image and writes the good one.
"""

import os
import subprocess

import numpy as np
import pytest

from models import helper, onnx, TensorProto  # skips the module where onnx is missing
from runtimes import INSTALLED
from seg_ros.core.errors import FrameError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import executable_path

numpy_helper = onnx.numpy_helper

WIDTH, HEIGHT, CLASSES = 32, 24, 3


def _save(nodes, initializers, path, output_dims) -> str:
    graph = helper.make_graph(
        nodes, 'seg_ros_test_bad_outputs',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, output_dims)],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def _conv_initializers() -> dict:
    weights = np.random.default_rng(0).normal(size=(CLASSES, 3, 1, 1)).astype(np.float32)
    return {'w': weights, 'threshold': np.array(0.3, np.float32)}


def make_nan_when_dark_model(path) -> str:
    """Write scores = conv(x) * sqrt(mean(x) - 0.3): NaN everywhere when the frame is dark."""
    nodes = [helper.make_node('Conv', ['input', 'w'], ['logits']),
             helper.make_node('ReduceMean', ['input'], ['mean'], keepdims=0),
             helper.make_node('Sub', ['mean', 'threshold'], ['margin']),
             helper.make_node('Sqrt', ['margin'], ['gain']),
             helper.make_node('Mul', ['logits', 'gain'], ['scores'])]
    return _save(nodes, _conv_initializers(), path, [1, CLASSES, HEIGHT, WIDTH])


def make_narrower_when_dark_model(path) -> str:
    """Write scores[..., :end], end = W on a bright frame, W / 2 on a dark one."""
    initializers = _conv_initializers()
    initializers.update({'width': np.array(WIDTH, np.float32),
                         'half': np.array(WIDTH / 2, np.float32),
                         'start': np.array([0], np.int64), 'axis': np.array([3], np.int64),
                         'axes0': np.array([0], np.int64)})
    nodes = [helper.make_node('Conv', ['input', 'w'], ['logits']),
             helper.make_node('ReduceMean', ['input'], ['mean'], keepdims=0),
             helper.make_node('Less', ['mean', 'threshold'], ['dark']),
             helper.make_node('Cast', ['dark'], ['dark_float'], to=TensorProto.FLOAT),
             helper.make_node('Mul', ['dark_float', 'half'], ['cut']),
             helper.make_node('Sub', ['width', 'cut'], ['end_float']),
             helper.make_node('Cast', ['end_float'], ['end_scalar'], to=TensorProto.INT64),
             helper.make_node('Unsqueeze', ['end_scalar', 'axes0'], ['end']),
             helper.make_node('Slice', ['logits', 'start', 'end', 'axis'], ['scores'])]
    return _save(nodes, initializers, path, [1, CLASSES, HEIGHT, 'width'])


BRIGHT = np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
BRIGHT[:, ::2] = 90  # two kinds of pixel: more than one class
DARK = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)


def open_or_skip(path: str, backend: str) -> Segmenter:
    try:
        return Segmenter(SegmenterConfig(path, backend=backend, preset='unit'))
    except ValueError as error:
        if backend == 'opencv':
            pytest.skip(f'OpenCV DNN does not run this graph: {error}')
        raise


@pytest.mark.parametrize('backend', INSTALLED)
def test_nan_scores_refuse_the_frame_and_the_next_frame_segments(tmp_path, backend):
    segmenter = open_or_skip(make_nan_when_dark_model(tmp_path / 'nan.onnx'), backend)
    good = segmenter.run(BRIGHT, encoding='bgr8')
    with pytest.raises(FrameError, match=r"output 'scores' holds \d+ NaN or Inf values"):
        segmenter.run(DARK, encoding='bgr8')
    again = segmenter.run(BRIGHT, encoding='bgr8')
    assert np.array_equal(good.class_map, again.class_map)


@pytest.mark.parametrize('backend', INSTALLED)
def test_scores_that_change_shape_refuse_the_frame(tmp_path, backend):
    segmenter = open_or_skip(make_narrower_when_dark_model(tmp_path / 'narrow.onnx'), backend)
    first = segmenter.run(BRIGHT, encoding='bgr8')
    with pytest.raises(FrameError, match=r'is \[1, 3, 24, 16\] on this frame but was '
                                         r'\[1, 3, 24, 32\] at start-up'):
        segmenter.run(DARK, encoding='bgr8')
    assert np.array_equal(segmenter.run(BRIGHT, encoding='bgr8').class_map, first.class_map)


def test_the_cli_reports_the_bad_frame_and_writes_the_good_one(tmp_path):
    import cv2
    model = make_nan_when_dark_model(tmp_path / 'nan.onnx')
    cv2.imwrite(str(tmp_path / 'bright.png'), BRIGHT)
    cv2.imwrite(str(tmp_path / 'dark.png'), DARK)
    done = subprocess.run(
        [executable_path('seg-ros'), 'segment', '--model', model, '--preset', 'unit',
         '-o', str(tmp_path / 'out'), str(tmp_path / 'dark.png'), str(tmp_path / 'bright.png')],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 1, done.stderr
    assert "dark.png: output 'scores' holds" in done.stderr
    assert 'Traceback' not in done.stderr
    assert os.path.isfile(tmp_path / 'out' / 'bright_classmap.png')
    assert not os.path.exists(tmp_path / 'out' / 'dark_classmap.png')
