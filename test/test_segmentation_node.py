"""
The segmentation node end to end: the real executable, real rclpy topics, a real OpenCV network.

A small ONNX model built by the tests (``models.make_scores_model``) runs at 64x48; every frame's
outputs are checked against the model's own argmax computed here with ``cv2.dnn``.
"""

import json

import cv2
import numpy as np
import pytest

from models import (make_frame, make_labelled_model, tiny_class_map as reference_class_map,
                    TINY_CLASS_NAMES, TINY_COLORS_RGB, TINY_HEIGHT, TINY_WIDTH)
from ros_env import module_domain, rclpy_context
from ros_harness import (image_message as encode, NodeProcess, Probe, tiny_model_params,
                         wait_until)

DOMAIN_ID = module_domain(11)
NAMESPACE = '/test_ns'
NODE = f'{NAMESPACE}/segmentation'
NUM_CLASSES = len(TINY_CLASS_NAMES)
MODEL_WIDTH, MODEL_HEIGHT = TINY_WIDTH, TINY_HEIGHT
CLASS_NAMES, COLORS_RGB = TINY_CLASS_NAMES, TINY_COLORS_RGB

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    return make_labelled_model(tmp_path_factory.mktemp('tiny_model'), CLASS_NAMES, COLORS_RGB)


def node_args(model_dir: str, *params: str) -> list[str]:
    return ['-r', f'__ns:={NAMESPACE}', '-r', f'image:={NAMESPACE}/camera/image_raw',
            '-r', f'camera_info:={NAMESPACE}/camera/camera_info',
            *tiny_model_params(model_dir, MODEL_WIDTH, MODEL_HEIGHT, *params)]


@pytest.fixture(scope='module')
def node(model_dir):
    process = NodeProcess('segmentation_node', node_args(model_dir), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, node):
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import String

    from seg_ros.ros.qos import latched_qos

    probe = Probe(ros_context, 'node_test_probe')
    probe.record_outputs(NODE, ('class_map', 'color_mask', 'overlay'))
    probe.record_outputs(NODE, ('camera_info',), CameraInfo)
    probe.record_diagnostics()
    probe.labels = probe.record(String, f'{NODE}/labels', latched_qos())
    probe.image_publisher = probe.camera_publisher(f'{NAMESPACE}/camera/image_raw')
    probe.info_publisher = probe.camera_publisher(f'{NAMESPACE}/camera/camera_info', CameraInfo)
    assert probe.wait_for_subscribers(probe.image_publisher, timeout=30), node.output()
    assert wait_until(lambda: probe.node.count_subscribers(f'{NODE}/overlay') == 0 or
                      probe.node.count_publishers(f'{NODE}/overlay') >= 1, 10)
    yield probe
    probe.close()


def network_view(frame_bgr: np.ndarray, encoding: str) -> np.ndarray:
    """Return the BGR frame the network sees for a frame sent in ``encoding``."""
    if encoding in ('mono8', 'mono16'):
        return cv2.cvtColor(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return frame_bgr


def outputs_for(probe, stamp_sec: int) -> dict | None:
    found = {}
    for output in ('class_map', 'color_mask', 'overlay'):
        matches = [msg for msg in probe.received[f'{NODE}/{output}']
                   if msg.header.stamp.sec == stamp_sec]
        if not matches:
            return None
        found[output] = matches[-1]
    return found


def send_until_outputs(probe, msg, stamp_sec: int, frame_id: str, timeout: float = 10.0):
    """Publish ``msg`` (again every 0.5 s: best-effort input may drop one) until outputs arrive."""
    msg.header.stamp.sec = stamp_sec
    msg.header.stamp.nanosec = 123456789
    msg.header.frame_id = frame_id
    for _ in range(int(timeout / 0.5)):
        probe.image_publisher.publish(msg)
        outputs = wait_until(lambda: outputs_for(probe, stamp_sec), 0.5)
        if outputs:
            return outputs
    return None


def as_array(msg) -> np.ndarray:
    channels = 3 if msg.encoding in ('rgb8', 'bgr8') else 1
    assert msg.step == msg.width * channels
    shape = (msg.height, msg.width, channels) if channels == 3 else (msg.height, msg.width)
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(shape)


CASES = [
    ('bgr8', 0, False), ('rgb8', 0, False), ('bgra8', 0, False), ('rgba8', 0, False),
    ('mono8', 0, False), ('mono16', 0, False), ('mono16', 0, True),
    ('bgr8', 5, False), ('rgb8', 64, False), ('mono8', 3, False), ('mono16', 6, True),
]


@pytest.mark.parametrize('encoding,padding,big_endian', CASES)
def test_every_accepted_encoding_gives_all_outputs(probe, model_dir, encoding, padding,
                                                   big_endian):
    index = CASES.index((encoding, padding, big_endian))
    width, height = (MODEL_WIDTH, MODEL_HEIGHT) if index % 2 == 0 else (99, 61)
    frame_bgr = make_frame(width, height, seed=index)
    stamp_sec = 1000 + index
    frame_id = f'camera_{encoding}_{padding}'
    outputs = send_until_outputs(probe, encode(frame_bgr, encoding, padding, big_endian),
                                 stamp_sec, frame_id)
    assert outputs, f'no outputs for {encoding} (padding {padding})'
    for name, msg in outputs.items():
        assert msg.header.stamp.sec == stamp_sec and msg.header.stamp.nanosec == 123456789, name
        assert msg.header.frame_id == frame_id, name
        assert (msg.width, msg.height) == (width, height), name
    assert outputs['class_map'].encoding == 'mono8'
    assert outputs['color_mask'].encoding == 'rgb8'
    assert outputs['overlay'].encoding == 'rgb8'

    seen = network_view(frame_bgr, encoding)
    class_map = as_array(outputs['class_map'])
    expected = reference_class_map(model_dir, seen)
    assert np.array_equal(class_map, expected)
    assert len(np.unique(class_map)) >= 2, 'the test frame should show several classes'
    color_mask = as_array(outputs['color_mask'])
    assert np.array_equal(color_mask, COLORS_RGB[class_map])
    overlay = as_array(outputs['overlay']).astype(np.float64)
    image_rgb = seen[:, :, ::-1].astype(np.float64)
    formula = 0.5 * image_rgb + 0.5 * color_mask.astype(np.float64)
    assert np.abs(overlay - formula).max() <= 1.0


def test_labels_are_latched_json(probe):
    assert wait_until(lambda: probe.labels, 30)
    labels = json.loads(probe.labels[-1].data)
    assert [entry['id'] for entry in labels] == list(range(NUM_CLASSES))
    assert [entry['name'] for entry in labels] == CLASS_NAMES
    assert [entry['color'] for entry in labels] == COLORS_RGB.tolist()


def test_diagnostics_report_backend_and_counters(probe):
    def latest_status():
        for array in reversed(probe.received['/diagnostics']):
            for status in array.status:
                if NODE in status.name:
                    return status
        return None

    def latest_values():
        status = latest_status()
        values = {kv.key: kv.value for kv in status.values} if status else {}
        return values if int(values.get('frames processed', 0)) >= 1 else None
    values = wait_until(latest_values, 30)
    assert values, 'no diagnostics counting the processed frames'
    assert values['backend'] == 'opencv'
    assert values['device'].lower() == 'cpu'
    for key in ('input rate (Hz)', 'inference mean (ms)', 'latency p99 (ms)', 'frames dropped '
                '(replaced by newer)', 'frames rejected'):
        assert key in values
    # The per-stage profile: each stage's mean wall and worker-CPU milliseconds, numbers.
    stages = dict(part.split(' ') for part in
                  values['stage means, wall/worker CPU (ms)'].split(', '))
    assert list(stages) == ['receive', 'convert', 'segment', 'publish']
    for wall, cpu in (pair.split('/') for pair in stages.values()):
        assert float(wall) >= 0 and float(cpu) >= 0
    split = dict(part.split(' ') for part in values['segment split, wall (ms)'].split(', '))
    assert list(split) == ['prepare', 'network', 'decode', 'render']
    assert float(split['network']) > 0


def test_unsupported_encoding_is_rejected_and_counted(probe, node):
    from sensor_msgs.msg import Image
    msg = Image(height=4, width=4, encoding='32FC1', step=16, data=bytes(64))
    msg.header.stamp.sec = 4242
    for _ in range(5):
        probe.image_publisher.publish(msg)
    assert wait_until(lambda: "encoding '32FC1' is not supported" in node.output(), 10), \
        node.output()
    assert not outputs_for(probe, 4242)
    assert node.alive()
