"""
The node given a Torch7 ``.net``: it runs the cached fused-ONNX conversion and says so.

A small ENet-like network written in the Torch7 format (``torch7_writer``) goes to the node with
default parameters; the class map over topics must be OpenCV DNN's on the original file, the
log and ``/diagnostics`` must name the converted file that runs, and a second node must find
the conversion in the cache.
"""

import os
import signal

import cv2
import numpy as np
import pytest
from torch7_writer import save_torch7, small_enet

from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, Probe, wait_until
from runtimes import ONNX_RUNTIMES

DOMAIN_ID = module_domain(31)
SIZE = (96, 64)
FRAME = (160, 120)

pytestmark = pytest.mark.skipif(not ONNX_RUNTIMES,
                                reason='neither openvino nor onnxruntime is installed')
onnx = pytest.importorskip('onnx')

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def net_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('torch7_node')
    save_torch7(str(folder / 'small-enet.net'), small_enet(seed=4))
    return str(folder)


def start_node(net_dir: str, name: str) -> NodeProcess:
    return NodeProcess('segmentation_node', [
        '-r', f'__node:={name}', '-r', f'image:=/{name}/image',
        '-p', f'model_path:={os.path.join(net_dir, "small-enet.net")}',
        '-p', f'input_width:={SIZE[0]}', '-p', f'input_height:={SIZE[1]}',
        '-p', 'diagnostics_period:=0.5'], DOMAIN_ID,
        env={'SEG_ROS_CACHE': os.path.join(net_dir, 'cache')})


def test_node_runs_the_converted_torch7_file(ros_context, net_dir):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_ros.ros.image_conversion import array_to_image
    from seg_ros.ros.qos import image_qos

    rng = np.random.default_rng(2)
    frame = cv2.resize(rng.integers(0, 256, (FRAME[1] // 10, FRAME[0] // 10, 3), np.uint8),
                       FRAME, interpolation=cv2.INTER_LINEAR)
    node = start_node(net_dir, 'torch7_seg')
    probe = Probe(ros_context, 'torch7_probe')
    try:
        class_maps = probe.record(Image, '/torch7_seg/class_map',
                                  QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        diagnostics = probe.record(DiagnosticArray, '/diagnostics', QoSProfile(depth=50))
        publisher = probe.node.create_publisher(Image, '/torch7_seg/image',
                                                image_qos('reliable', 1))
        assert probe.wait_for_subscribers(publisher, timeout=60), node.output()

        def received():
            publisher.publish(array_to_image(frame, 'bgr8'))
            return list(class_maps)
        outputs = wait_until(received, 60, period=1.0)
        assert outputs, node.output()

        def model_values():
            for array in reversed(diagnostics):
                for status in array.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if 'torch7_seg' in status.name and 'model file running' in values:
                        return values
            return None
        values = wait_until(model_values, 30)
        assert values, node.output()
    finally:
        probe.close()
    assert node.stop(signal.SIGINT) == 0, node.output()
    log = node.output()
    node.close()

    cache = os.path.join(net_dir, 'cache', 'torch7-onnx')
    running = values['model file running']
    assert os.path.dirname(running) == cache and running.endswith('.onnx')
    assert values['backend'] == ONNX_RUNTIMES[0]
    assert values['model'].endswith('small-enet.net')
    assert values['precision fast agreement with f32 (%)'] == 'n/a'
    assert f'model: running {running}' in log and 'agrees with OpenCV DNN' in log
    net = cv2.dnn.readNet(os.path.join(net_dir, 'small-enet.net'))
    net.setInput(cv2.dnn.blobFromImage(frame, 1 / 255, SIZE, (0, 0, 0), True, False))
    expected = cv2.resize(net.forward()[0].argmax(axis=0).astype(np.uint8), FRAME,
                          interpolation=cv2.INTER_NEAREST_EXACT)
    class_map = np.frombuffer(bytes(outputs[0].data), np.uint8).reshape(FRAME[1], FRAME[0])
    assert np.mean(class_map == expected) >= 0.999

    again = start_node(net_dir, 'torch7_again')
    try:
        assert wait_until(lambda: 'model: running' in again.output(), 60), again.output()
        assert 'found the conversion' in again.output()
        assert f'model: running {running}' in again.output()
    finally:
        again.close()
