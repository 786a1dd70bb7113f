"""
Opening a model: instance models recognised by their signature, OpenCV DNN's output checked.

Real files: torchvision's Mask R-CNN export (random weights), hand-built ONNX graphs of both
instance formats with and without their output names, and a graph on which OpenCV DNN really
computes something else than the ONNX standard says (``Softmax`` before opset 13 normalises
over every axis from ``axis`` on; OpenCV DNN normalises over ``axis`` alone), run by ONNX
Runtime, OpenVINO and OpenCV DNN.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from instance_models import make_mask_rcnn_model, make_yolo_seg_model
from instance_scenes import rcnn_constants, RCNN_H, RCNN_W, yolo_constants, YOLO_H, YOLO_W
from models import helper, make_scores_model, onnx, TensorProto
from seg_ros.core.backends import available_backends
from seg_ros.core.errors import ModelError
from seg_ros.core.loading import open_model
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

numpy_helper = onnx.numpy_helper

RUNTIMES = available_backends()
REFERENCES = [name for name in ('onnxruntime', 'openvino') if RUNTIMES[name] is None]
needs_reference = pytest.mark.skipif(not REFERENCES,
                                     reason='neither onnxruntime nor openvino is installed')
WIDTH, HEIGHT, CLASSES = 32, 24, 4


def make_softmax11_model(path) -> str:
    """
    Write conv -> Softmax(axis=1, opset 11) -> minus a per-class bias, (1, 4, 24, 32) scores.

    Opset 11's Softmax normalises over C*H*W together: every probability is tiny and the bias
    decides the class (class 0 everywhere). Normalising over C alone, as OpenCV DNN does, the
    convolution decides it.
    """
    weights = np.random.default_rng(0).normal(size=(CLASSES, 3, 1, 1)).astype(np.float32)
    bias = np.array([0.0, 0.01, 0.02, 0.03], np.float32).reshape(1, CLASSES, 1, 1)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'w'], ['logits']),
         helper.make_node('Softmax', ['logits'], ['probability'], axis=1),
         helper.make_node('Sub', ['probability', 'bias'], ['scores'])],
        'seg_ros_test_softmax11',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, CLASSES, HEIGHT, WIDTH])],
        [numpy_helper.from_array(weights, 'w'), numpy_helper.from_array(bias, 'bias')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return str(path)


def renamed_outputs(source: str, path, names: list[str]) -> str:
    """Copy an ONNX file with its graph outputs renamed (as an export without output_names)."""
    model = onnx.load(source)
    mapping = {output.name: name for output, name in zip(model.graph.output, names)}
    for node in model.graph.node:
        node.output[:] = [mapping.get(name, name) for name in node.output]
    for output in model.graph.output:
        output.name = mapping[output.name]
    onnx.save(model, str(path))
    return str(path)


def test_opencv_is_refused_where_its_output_is_not_the_standards(tmp_path):
    if RUNTIMES['onnxruntime']:
        pytest.skip('the check against OpenCV DNN is tested with onnxruntime (OpenVINO also '
                    'departs from opset 11 Softmax, measured): ' + RUNTIMES['onnxruntime'])
    path = make_softmax11_model(tmp_path / 'softmax11.onnx')
    with pytest.raises(ModelError) as caught:
        open_model(path, backend='opencv', target='cpu')
    message = str(caught.value)
    assert caught.value.parameter == 'backend'
    assert 'OpenCV DNN gives wrong output' in message and path in message
    assert 'use backend onnxruntime' in message
    share = float(message.split('only ')[1].split(' %')[0])
    assert share < 99.0
    # ONNX Runtime follows the standard: the NumPy reference (every probability tiny, the bias
    # decides) is class 0 everywhere.
    frame = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    class_map = Segmenter(SegmenterConfig(path, backend='onnxruntime')).run(
        frame, encoding='bgr8').class_map
    assert np.array_equal(class_map, np.zeros((HEIGHT, WIDTH), np.uint8))


@needs_reference
def test_opencv_output_that_agrees_is_reported_verified(tmp_path):
    path = make_scores_model(tmp_path / 'scores.onnx', CLASSES, width=WIDTH, height=HEIGHT)
    segmenter = Segmenter(SegmenterConfig(path, backend='opencv'))
    assert segmenter.verification == (f'agrees with {REFERENCES[0]}: 100.00 % of the pixels on '
                                      'the warm-up frame')
    assert any('the output of OpenCV DNN agrees' in note for note in segmenter.notes)
    assert not segmenter.warnings
    # Runtimes that run the file as exported need no check.
    assert Segmenter(SegmenterConfig(path, backend=REFERENCES[0])).verification == ''


def test_opencv_output_without_a_reference_runtime_is_said_unverified(tmp_path):
    path = make_scores_model(tmp_path / 'scores.onnx', CLASSES, width=WIDTH, height=HEIGHT)
    script = (
        'import json, sys\n'
        'sys.modules["onnxruntime"] = None\n'
        'sys.modules["openvino"] = None\n'
        'from seg_ros.core.segmenter import Segmenter, SegmenterConfig\n'
        f'segmenter = Segmenter(SegmenterConfig({path!r}, backend="opencv"))\n'
        'print(json.dumps([segmenter.verification, segmenter.warnings]))\n')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    verification, warnings = json.loads(done.stdout.strip().splitlines()[-1])
    assert verification.startswith('unverified: neither onnxruntime nor openvino')
    assert any('is unverified' in warning and path in warning for warning in warnings)


def test_mask_rcnn_is_recognised_by_its_outputs_with_or_without_their_names(tmp_path):
    named = make_mask_rcnn_model(tmp_path / 'rcnn.onnx', *rcnn_constants(), width=RCNN_W,
                                 height=RCNN_H)
    unnamed = renamed_outputs(named, tmp_path / 'rcnn_unnamed.onnx',
                              ['3281', '3279', '3280', '3283'])
    for path in (named, unnamed):
        segmenter = Segmenter(SegmenterConfig(path, backend=REFERENCES[0] if REFERENCES
                                              else 'opencv'))
        assert segmenter.task == 'maskrcnn', path
        assert any('task maskrcnn recognised from the file' in note for note in segmenter.notes)
        result = segmenter.run(np.zeros((RCNN_H, RCNN_W, 3), np.uint8), encoding='bgr8')
        assert len(result.instances) > 0


def test_yolo_seg_without_ultralytics_metadata_is_recognised(tmp_path):
    detections, prototypes = yolo_constants()
    path = make_yolo_seg_model(tmp_path / 'yolo.onnx', detections, prototypes, width=YOLO_W,
                               height=YOLO_H, metadata={})
    segmenter = Segmenter(SegmenterConfig(path))
    assert segmenter.task == 'yolo_seg'
    assert any('task yolo_seg recognised from the file' in note for note in segmenter.notes)
    # A description that says otherwise wins.
    with pytest.raises(ModelError):
        Segmenter(SegmenterConfig(path, task='semantic'))


def test_torchvision_mask_rcnn_export_needs_no_task(mask_rcnn_export):
    if RUNTIMES['onnxruntime']:
        pytest.skip('only onnxruntime runs the torchvision Mask R-CNN export (measured): '
                    + RUNTIMES['onnxruntime'])
    segmenter = Segmenter(SegmenterConfig(mask_rcnn_export, backend='onnxruntime',
                                          score_threshold=0.0, max_instances=3))
    assert segmenter.task == 'maskrcnn'
    result = segmenter.run(np.zeros((240, 320, 3), np.uint8), encoding='bgr8')
    assert len(result.instances) == 3


def test_a_model_of_no_known_kind_names_its_outputs_and_the_tasks(tmp_path):
    from models import make_detection_shaped_model
    path = make_detection_shaped_model(tmp_path / 'odd.onnx', width=16, height=8, channels=7)
    with pytest.raises(ModelError) as caught:
        Segmenter(SegmenterConfig(path))
    message = str(caught.value)
    assert "'output0' [1, 7, 128]" in message
    for task in ('task semantic', 'task maskrcnn', 'task yolo_seg'):
        assert task in message
