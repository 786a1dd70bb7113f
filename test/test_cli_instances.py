"""``seg-ros segment`` with instances: <stem>_instances.json, the 16-bit <stem>_instances.png."""

import json
import subprocess

import cv2
import numpy as np
import pytest

from instance_models import make_yolo_seg_model, reference_yolo_seg
from instance_scenes import FRAME_H, FRAME_W, yolo_constants, YOLO_H, YOLO_W
from seg_ros.data import synthetic
from seg_ros.paths import executable_path

# Beside the venv's Python, or in the colcon install's lib/seg_ros (colcon test).
SEG_ROS = executable_path('seg-ros')


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, *args], capture_output=True, text=True, timeout=300)


def test_yolo_seg_model_writes_the_reference_instances(tmp_path):
    model = make_yolo_seg_model(tmp_path / 'yolo.onnx', *yolo_constants(), width=YOLO_W,
                                height=YOLO_H)
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), np.full((FRAME_H, FRAME_W, 3), 70, np.uint8))
    result = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--model', model,
                     '--backend', 'onnxruntime', '--max-instances', '4', '--quiet')
    assert result.returncode == 0, result.stderr
    # An instance model has no per-pixel scores: it says so once, writes no confidence map.
    assert result.stdout.count('no <name>_confidence.png: --task yolo_seg') == 1
    assert not (tmp_path / 'out' / 'frame_confidence.png').exists()
    expected = reference_yolo_seg(*yolo_constants(), FRAME_W, FRAME_H, YOLO_W, YOLO_H, 0.5, 0.5,
                                  4)
    with open(tmp_path / 'out' / 'frame_instances.json') as json_file:
        written = json.load(json_file)['instances']
    # NMS keeps 4; the best of them lies in the letterbox padding, outside the frame, and the
    # fourth's mask is empty in its box: both dropped (as ultralytics does), 2 left.
    assert len(expected) == 2
    assert [item['id'] for item in written] == [1, 2]
    for item, reference in zip(written, expected):
        assert item['class_id'] == reference['class_id']
        assert item['class_name'] == f'thing{reference["class_id"]}'
        assert item['score'] == pytest.approx(reference['score'], abs=1e-4)
        np.testing.assert_allclose(item['box'], reference['box'], atol=0.01)
    ids = cv2.imread(str(tmp_path / 'out' / 'frame_instances.png'), cv2.IMREAD_UNCHANGED)
    assert ids.dtype == np.uint16 and ids.shape == (FRAME_H, FRAME_W)
    decided = ~expected[0]['ambiguous']
    np.testing.assert_array_equal((ids == 1)[decided], expected[0]['mask'][decided])
    assert set(np.unique(ids)) <= {0, 1, 2}


def test_a_frame_without_detections_writes_every_output(tmp_path):
    model = make_yolo_seg_model(tmp_path / 'yolo.onnx', *yolo_constants(), width=YOLO_W,
                                height=YOLO_H)
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), np.full((FRAME_H, FRAME_W, 3), 70, np.uint8))
    # Every candidate of this model scores below 0.999: nothing is detected.
    result = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--model', model,
                     '--score-threshold', '0.999', '--quiet')
    assert result.returncode == 0, result.stderr
    with open(tmp_path / 'out' / 'frame_instances.json') as json_file:
        assert json.load(json_file) == {'instances': []}
    ids = cv2.imread(str(tmp_path / 'out' / 'frame_instances.png'), cv2.IMREAD_UNCHANGED)
    assert ids.dtype == np.uint16 and ids.shape == (FRAME_H, FRAME_W) and not ids.any()
    overlay = cv2.imread(str(tmp_path / 'out' / 'frame_overlay.png'))
    # The frame itself with nothing drawn on it, the legend panel beside it.
    assert overlay.shape[0] == FRAME_H and (overlay[:, :FRAME_W] == 70).all()


def test_instance_classes_of_the_embedded_model_and_bad_values(tmp_path):
    bgr, _ = synthetic.render_scene(synthetic.held_out_rng(1), 1024, 512)
    image = tmp_path / 'street.png'
    cv2.imwrite(str(image), bgr)
    result = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--instance-classes',
                     'Car', '--min-instance-area', '500', '--quiet')
    assert result.returncode == 0, result.stderr
    assert 'street_instances.json' in result.stdout
    with open(tmp_path / 'out' / 'street_instances.json') as json_file:
        written = json.load(json_file)['instances']
    assert len(written) >= 2 and {item['class_name'] for item in written} == {'Car'}
    ids = cv2.imread(str(tmp_path / 'out' / 'street_instances.png'), cv2.IMREAD_UNCHANGED)
    areas = [(ids == item['id']).sum() for item in written]
    assert min(areas) >= 500 and areas == sorted(areas, reverse=True)
    refused = run_cli('segment', str(image), '-o', str(tmp_path / 'bad'), '--instance-classes',
                      'Spaceship', '--quiet')
    assert refused.returncode == 2 and "--instance-classes ['Spaceship']" in refused.stderr
    plain = run_cli('segment', str(image), '-o', str(tmp_path / 'plain'), '--quiet')
    assert plain.returncode == 0 and not (tmp_path / 'plain' / 'street_instances.json').exists()
