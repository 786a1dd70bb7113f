"""
What a robot without ONNX Runtime and OpenVINO sees: OpenCV DNN alone, and one line for the rest.

These run where neither faster runtime is installed (``make robot-test``: Debian's OpenCV 4.6 and
NumPy 1.24 from apt, test/robot_stack.py) and skip elsewhere, saying so. Real ``seg-ros`` and
``segmentation_node`` processes: the default model segments with OpenCV DNN; asking for a
missing runtime, or giving a model OpenCV cannot read, ends in one line that names what to
install and how, never a traceback.
"""

import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from onnx_bytes import one_node_model
from ros_env import module_domain, ros_environment
from ros_harness import executable_path
from seg_ros.data import synthetic

DOMAIN_ID = module_domain(48)
INSTALLED = [name for name in ('onnxruntime', 'openvino') if importlib.util.find_spec(name)]
pytestmark = pytest.mark.skipif(
    bool(INSTALLED), reason=f'checks a stack without ONNX Runtime and OpenVINO; {INSTALLED} '
                            'installed here (make robot-test runs these)')
HINTS = {'onnxruntime': 'ONNX Runtime: pip install onnxruntime (on a robot: in the robot venv of '
                        'docs/robot.md',
         'openvino': 'OpenVINO: pip install openvino (on a robot: in the robot venv of '
                     'docs/robot.md'}
TIMEOUT_S = 240


@pytest.fixture(scope='module')
def photo(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('robot') / 'street.png')
    cv2.imwrite(path, synthetic.render_scene(np.random.default_rng(5), 640, 360)[0])
    return path


def seg_ros(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([executable_path('seg-ros'), *arguments], capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


def node(*parameters: str) -> subprocess.CompletedProcess:
    command = [executable_path('segmentation_node'), '--ros-args']
    for parameter in parameters:
        command += ['-p', parameter]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env=ros_environment(DOMAIN_ID), check=False)


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in output, output
    return lines[0]


def test_default_model_segments_with_opencv_alone(photo, tmp_path):
    done = seg_ros('segment', photo, '--output-dir', str(tmp_path), '--width', '512',
                   '--height', '256')
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'opencv DNN {cv2.__version__}' in done.stdout
    class_map = cv2.imread(str(tmp_path / 'street_classmap.png'), cv2.IMREAD_UNCHANGED)
    assert class_map.shape == (360, 640) and len(np.unique(class_map)) > 3


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_a_missing_runtime_is_one_line_naming_what_to_install(runtime, photo, tmp_path):
    done = seg_ros('segment', photo, '--output-dir', str(tmp_path), '--backend', runtime)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert f'{runtime} is not installed' in line and HINTS[runtime] in line, line
    started = node(f'backend:={runtime}', 'input_width:=128', 'input_height:=64')
    assert started.returncode != 0
    line = one_line(started.stdout + started.stderr)
    assert 'cannot start' in line and HINTS[runtime] in line, line


@pytest.fixture(scope='module')
def unreadable_model(tmp_path_factory) -> str:
    """Return a scores model OpenCV 4.6 cannot import: a SpaceToDepth (3 -> 12 channels)."""
    path = tmp_path_factory.mktemp('robot') / 'space_to_depth.onnx'
    path.write_bytes(one_node_model('SpaceToDepth', {'blocksize': 2},
                                    [1, 3, 'height', 'width'], [1, 12, 'height2', 'width2']))
    try:
        cv2.dnn.readNet(str(path))
    except cv2.error:
        return str(path)
    pytest.skip(f'OpenCV {cv2.__version__} reads SpaceToDepth')


def test_a_model_opencv_cannot_read_names_the_runtimes_to_add(unreadable_model, photo,
                                                              tmp_path):
    done = seg_ros('segment', photo, '--output-dir', str(tmp_path), '--model', unreadable_model,
                   '--width', '64', '--height', '32')
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert f'OpenCV DNN {cv2.__version__} cannot run' in line, line
    assert 'SpaceToDepth' in line and HINTS['onnxruntime'] in line, line
    started = node(f'model_path:={unreadable_model}', 'input_width:=64', 'input_height:=32')
    assert started.returncode != 0
    line = one_line(started.stdout + started.stderr)
    assert 'cannot start' in line and HINTS['onnxruntime'] in line, line


def test_this_is_the_python_of_the_robot_stack():
    # What make robot-test promises: apt's OpenCV and NumPy seen through the venv.
    if not sys.prefix.endswith('.venv-robot'):
        pytest.skip('not the make robot-test venv')
    assert cv2.__file__.startswith('/usr/lib/python3/dist-packages/')
    assert np.__file__.startswith('/usr/lib/python3/dist-packages/')
    assert os.path.realpath(sys.executable).startswith('/usr/bin/python3')
