"""
The segmentation node's start-up errors, runtime parameter changes and shutdown, over real ROS 2.

Start-up errors must end the process with a non-zero status and one message naming the
parameter and its value; runtime changes are validated (invalid ones refused with a reason,
the old value kept);
SIGINT and SIGTERM end the node cleanly with status 0.
"""

import signal
import time

import numpy as np
import pytest

from models import make_scores_model
from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

DOMAIN_ID = module_domain(12)
NAMESPACE = '/faults'
NODE = f'{NAMESPACE}/segmentation'

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_path(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('fault_model')
    path = str(folder / 'tiny.onnx')
    make_scores_model(path, num_classes=3, scale=1 / 255)
    return path


def base_args(model_path: str) -> list[str]:
    return ['-r', f'__ns:={NAMESPACE}', '-p', f'model_path:={model_path}',
            '-p', 'input_width:=32', '-p', 'input_height:=24', '-p', 'backend:=opencv']


def start_failure(args: list[str]) -> tuple[int, str]:
    process = NodeProcess('segmentation_node', args, DOMAIN_ID)
    try:
        status = process.wait(timeout=60)
        return status, process.output()
    finally:
        process.close()


def fatal_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if 'cannot start' in line]


@pytest.mark.parametrize('params,expected', [
    (['model_path:=/nonexistent/model.onnx'], ('model_path', '/nonexistent/model.onnx')),
    (['input_width:=8'], ('input_width', '8')),
    (['target:=tpu'], ('target', 'tpu')),
    (['backend:=tensorflow'], ('backend', 'tensorflow')),
    (['alpha:=1.5'], ('alpha', '1.5')),
])
def test_bad_start_up_parameters_exit_non_zero_with_one_message(model_path, params, expected):
    args = base_args(model_path)
    for param in params:
        args += ['-p', param]
    status, output = start_failure(args)
    assert status != 0, output
    lines = fatal_lines(output)
    assert len(lines) == 1, output
    name, value = expected
    assert name in lines[0] and value in lines[0], output


@pytest.mark.parametrize('parameter, file_name, content', [
    ('classes_path', 'five.txt', 'a\nb\nc\nd\ne\n'),        # class count != model's
    ('colors_path', 'two.txt', '1,2,3\n4,5,6\n'),             # colour count != model's
    ('model_path', 'bogus.onnx', 'this is not a network\n'),  # not a model at all
])
def test_bad_file_fails_start_up_naming_parameter_and_path(model_path, tmp_path, parameter,
                                                           file_name, content):
    path = tmp_path / file_name
    path.write_text(content)
    status, output = start_failure(base_args(model_path) + ['-p', f'{parameter}:={path}'])
    assert status != 0
    lines = fatal_lines(output)
    assert len(lines) == 1 and parameter in lines[0] and str(path) in lines[0], output


def test_cuda_required_but_absent_fails(model_path):
    status, output = start_failure(
        base_args(model_path) + ['-p', 'target:=cuda', '-p', 'require_cuda:=true'])
    assert status != 0
    lines = fatal_lines(output)
    assert len(lines) == 1 and 'target' in lines[0], output


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_end_the_node_cleanly(model_path, sig):
    process = NodeProcess('segmentation_node', base_args(model_path), DOMAIN_ID)
    try:
        assert wait_until(lambda: 'Subscribed to' in process.output(), 60), process.output()
        started = time.monotonic()
        status = process.stop(sig, timeout=10)
        elapsed = time.monotonic() - started
        assert status == 0, process.output()
        assert elapsed < 2.0, f'took {elapsed:.2f} s to exit'
    finally:
        process.close()


@pytest.fixture(scope='module')
def running(ros_context, model_path):
    process = NodeProcess('segmentation_node', base_args(model_path) + ['-p', 'target:=cuda'],
                          DOMAIN_ID)
    probe = Probe(ros_context, 'fault_probe')
    client = ParameterCaller(probe, NODE)
    assert client.wait_ready(timeout=60), process.output()
    yield process, probe, client
    probe.close()
    process.finish()


def test_cuda_asked_falls_back_to_cpu_with_a_warning(running):
    process, _, _ = running
    assert wait_until(lambda: 'Subscribed to' in process.output(), 30)
    lines = [line for line in process.output().splitlines() if 'WARN' in line]
    assert any('cuda' in line.lower() for line in lines), process.output()


def test_invalid_runtime_values_are_refused_and_old_value_kept(running):
    _, _, client = running
    for name, value in [('alpha', 1.5), ('alpha', -0.1), ('color_encoding', 'yuv'),
                        ('output_resolution', 'half'), ('backend', 'tensorrt')]:
        result, = client.set_values(**{name: value})
        assert not result.successful, (name, value)
        assert result.reason, (name, value)
    assert client.get_values('alpha', 'color_encoding') == [0.5, 'rgb8']


def test_read_only_parameters_are_refused(running):
    _, _, client = running
    result, = client.set_values(input_qos='reliable')
    assert not result.successful


def test_valid_runtime_change_is_applied(running):
    _, _, client = running
    result, = client.set_values(alpha=0.25)
    assert result.successful, result.reason
    assert client.get_values('alpha') == [0.25]
    result, = client.set_values(alpha=0.5)
    assert result.successful


def test_model_change_to_missing_file_is_refused_and_node_keeps_working(running, model_path):
    process, _, client = running
    result, = client.set_values(model_path='/nonexistent/other.onnx')
    assert not result.successful
    assert 'model_path' in result.reason and '/nonexistent/other.onnx' in result.reason
    assert client.get_values('model_path') == [model_path]
    assert process.alive()


def test_input_size_change_rebuilds_the_network(running):
    process, _, client = running
    results = client.set_values(input_width=48, input_height=40)
    assert all(result.successful for result in results), [r.reason for r in results]
    assert wait_until(lambda: 'at 48x40' in process.output(), 30), process.output()
    results = client.set_values(input_width=32, input_height=24)
    assert all(result.successful for result in results)
    assert wait_until(lambda: 'at 32x24' in process.output(), 30), process.output()


def test_model_resolution_outputs_and_scaled_camera_info(running, model_path):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from seg_ros.ros.qos import image_qos
    process, probe, client = running
    result, = client.set_values(output_resolution='model')
    assert result.successful, result.reason
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    class_maps = probe.record(Image, f'{NODE}/class_map', reliable)
    infos = probe.record(CameraInfo, f'{NODE}/camera_info', reliable)
    image_pub = probe.node.create_publisher(Image, f'{NAMESPACE}/image', image_qos('reliable', 1))
    info_pub = probe.node.create_publisher(CameraInfo, f'{NAMESPACE}/camera_info',
                                           image_qos('reliable', 1))
    assert probe.wait_for_subscribers(image_pub, timeout=60)
    assert probe.wait_for_subscribers(info_pub, timeout=60)
    info = CameraInfo(width=320, height=240)
    info.k = [300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0]
    info.p = [300.0, 0.0, 160.0, 0.0, 0.0, 300.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    frame = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    msg = Image(width=320, height=240, encoding='bgr8', step=960, data=frame.tobytes())
    msg.header.stamp.sec = 77
    msg.header.frame_id = 'cam'

    def published():
        info_pub.publish(info)
        image_pub.publish(msg)
        return class_maps and infos
    assert wait_until(published, 20, period=0.3), process.output()
    class_map, scaled = class_maps[-1], infos[-1]
    assert (class_map.width, class_map.height) == (32, 24)
    assert (scaled.width, scaled.height) == (32, 24)
    assert scaled.header.stamp.sec == 77 and scaled.header.frame_id == 'cam'
    assert np.allclose([scaled.k[0], scaled.k[2], scaled.k[4], scaled.k[5]],
                       [30.0, 16.0, 30.0, 12.0])
    result, = client.set_values(output_resolution='input')
    assert result.successful
