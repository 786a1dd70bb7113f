"""
The segmentation node through faults it must report and recover from, over real ROS 2.

* The camera goes silent, then comes back: /diagnostics turns WARN ("no image for ...") once
  ``stale_timeout`` has passed, and OK again with the outputs as soon as frames flow.
* The camera sends only frames the node rejects: WARN ("every image rejected ...", with the
  last reason) after ``stale_timeout``, OK again with the first usable frame.
* Model files that cannot be used at start-up (truncated ONNX, a directory, an unreadable
  file): the process exits non-zero with one message naming ``model_path``.
* A runtime change to a truncated model, or to one OpenCV DNN cannot read (external data), is
  refused and the old model keeps working; a change
  to another valid model (other class count, its own classes.txt and colors.txt) is applied:
  new latched labels, class maps from the new network, outputs continue.

Start-up errors already covered by ``test_segmentation_node_faults.py`` (missing file, a
text file, label count mismatches...) are not repeated here.
"""

import json
import os

import numpy as np
import pytest

from models import (ambiguous_pixels, make_frame, make_scores_model, reference_scores,
                    save_with_external_data)
from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

DOMAIN_ID = module_domain(63)
NAMESPACE = '/recovery'
NODE = f'{NAMESPACE}/segmentation'
OUTPUTS = ('class_map', 'color_mask', 'overlay')
WIDTH, HEIGHT = 64, 48
STALE_TIMEOUT_S = 1.0
FIRST_CLASSES = ['road', 'car', 'sky']
SECOND_CLASSES = ['road', 'car', 'sky', 'person', 'tree', 'sign']

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


def write_model(folder, names: list[str]) -> str:
    """Write a scores model for ``names`` with classes.txt and colors.txt beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = make_scores_model(str(folder / 'model.onnx'), num_classes=len(names), scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(names) + '\n')
    colors = [f'{10 * i},{255 - 10 * i},{20 * i}' for i in range(len(names))]
    (folder / 'colors.txt').write_text('\n'.join(colors) + '\n')
    return path


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('recovery_models')


@pytest.fixture(scope='module')
def first_model(models_dir) -> str:
    return write_model(models_dir / 'first', FIRST_CLASSES)


@pytest.fixture(scope='module')
def second_model(models_dir) -> str:
    return write_model(models_dir / 'second', SECOND_CLASSES)


@pytest.fixture(scope='module')
def truncated_model(models_dir, first_model) -> str:
    with open(first_model, 'rb') as model_file:
        data = model_file.read()
    path = models_dir / 'truncated.onnx'
    path.write_bytes(data[:len(data) // 2])
    return str(path)


def base_args(model_path: str) -> list[str]:
    return ['-r', f'__ns:={NAMESPACE}', '-p', f'model_path:={model_path}',
            '-p', f'input_width:={WIDTH}', '-p', f'input_height:={HEIGHT}',
            '-p', 'backend:=opencv', '-p', f'stale_timeout:={STALE_TIMEOUT_S}',
            '-p', 'diagnostics_period:=0.2']


def start_failure(model_path: str) -> tuple[int, str]:
    process = NodeProcess('segmentation_node', base_args(model_path), DOMAIN_ID)
    try:
        status = process.wait(timeout=60)
        return status, process.output()
    finally:
        process.close()


def assert_one_message_naming(output: str, model_path: str, words: str) -> None:
    lines = [line for line in output.splitlines() if 'cannot start' in line]
    assert len(lines) == 1, output
    assert 'model_path' in lines[0] and model_path in lines[0] and words in lines[0], output


def test_truncated_model_fails_start_up(truncated_model):
    status, output = start_failure(truncated_model)
    assert status != 0, output
    assert_one_message_naming(output, truncated_model, 'truncated')


def test_directory_as_model_fails_start_up(models_dir):
    folder = str(models_dir / 'second')
    os.makedirs(folder, exist_ok=True)
    status, output = start_failure(folder)
    assert status != 0, output
    assert_one_message_naming(output, folder, 'is a directory')


def test_unreadable_model_fails_start_up(models_dir, first_model):
    if os.geteuid() == 0:
        pytest.skip('running as root: chmod 000 does not make a file unreadable')
    path = models_dir / 'unreadable.onnx'
    with open(first_model, 'rb') as model_file:
        path.write_bytes(model_file.read())
    path.chmod(0)
    try:
        status, output = start_failure(str(path))
    finally:
        path.chmod(0o644)
    assert status != 0, output
    assert_one_message_naming(output, str(path), 'cannot be read')


@pytest.fixture(scope='module')
def node(first_model):
    process = NodeProcess('segmentation_node', base_args(first_model), DOMAIN_ID)
    yield process
    process.finish()


class Camera:
    """The test's camera: a probe that publishes frames with increasing stamps on demand."""

    def __init__(self, ros_context, node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from seg_ros.ros.qos import image_qos, latched_qos

        self.node_process = node
        self.probe = Probe(ros_context, 'recovery_probe')
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.outputs = {name: self.probe.record(Image, f'{NODE}/{name}', reliable)
                        for name in OUTPUTS}
        self.diagnostics = self.probe.record(DiagnosticArray, '/diagnostics',
                                             QoSProfile(depth=100))
        self.labels = self.probe.record(String, f'{NODE}/labels', latched_qos())
        self.publisher = self.probe.node.create_publisher(
            Image, f'{NAMESPACE}/image', image_qos('reliable', 5))
        self.parameters = ParameterCaller(self.probe, NODE)
        self.stamp_sec = 100
        assert self.probe.wait_for_subscribers(self.publisher, timeout=60), node.output()
        assert self.parameters.wait_ready(timeout=60), node.output()

    def frame(self, seed: int):
        from sensor_msgs.msg import Image
        pixels = make_frame(WIDTH, HEIGHT, seed=seed)
        self.stamp_sec += 1
        msg = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3,
                    data=pixels.tobytes())
        msg.header.stamp.sec = self.stamp_sec
        return msg, pixels

    def outputs_for(self, stamp_sec: int) -> dict | None:
        found = {}
        for name, messages in self.outputs.items():
            matches = [msg for msg in list(messages) if msg.header.stamp.sec == stamp_sec]
            if not matches:
                return None
            found[name] = matches[-1]
        return found

    def segment(self, seed: int = 0, timeout: float = 20.0):
        """Publish one frame (again every 0.3 s: best-effort input) until its outputs arrive."""
        msg, pixels = self.frame(seed)

        def answered():
            self.publisher.publish(msg)
            return self.outputs_for(msg.header.stamp.sec)
        outputs = wait_until(answered, timeout, period=0.3)
        assert outputs, f'no outputs for frame {msg.header.stamp.sec}:\n' + \
            self.node_process.output()
        return outputs, pixels

    def status_after(self, start: int, level, words: str, timeout: float = 20.0):
        """Return the first node status received after index ``start`` with level and words."""
        def found():
            for array in list(self.diagnostics)[start:]:
                for status in array.status:
                    if status.name.startswith(NODE + ':') and status.level == level \
                            and words in status.message:
                        return status
            return None
        return wait_until(found, timeout, period=0.05)

    def close(self) -> None:
        self.probe.close()


@pytest.fixture(scope='module')
def camera(ros_context, node):
    camera = Camera(ros_context, node)
    yield camera
    camera.close()


def test_silent_camera_turns_diagnostics_warn_then_ok_when_frames_return(camera, node):
    from diagnostic_msgs.msg import DiagnosticStatus
    for seed in range(3):
        camera.segment(seed)
    # OK while frames flow (at least one status after the last frame's outputs).
    ok = camera.status_after(len(camera.diagnostics) - 1, DiagnosticStatus.OK, 'segmenting')
    assert ok, [array.status for array in camera.diagnostics[-3:]]

    silent_from = len(camera.diagnostics)
    warn = camera.status_after(silent_from, DiagnosticStatus.WARN, 'no image for')
    assert warn, f'no WARN after {STALE_TIMEOUT_S} s without frames'
    assert f'{NAMESPACE}/image' in warn.message
    values = {pair.key: pair.value for pair in warn.values}
    # The value is printed to 0.1 s: just over the timeout reads as the timeout itself.
    assert float(values['seconds since last frame']) >= STALE_TIMEOUT_S
    # Nothing reported WARN before the timeout had passed.
    for array in list(camera.diagnostics)[silent_from:]:
        for status in array.status:
            if status.name.startswith(NODE + ':') and status.level == DiagnosticStatus.WARN:
                since = {pair.key: pair.value for pair in status.values}
                assert float(since['seconds since last frame']) >= STALE_TIMEOUT_S
    assert node.alive()

    resumed_from = len(camera.diagnostics)
    outputs, _ = camera.segment(seed=7)
    assert set(outputs) == set(OUTPUTS)
    ok = camera.status_after(resumed_from, DiagnosticStatus.OK, 'segmenting')
    assert ok, 'diagnostics did not return to OK once frames flowed again'
    values = {pair.key: pair.value for pair in ok.values}
    assert float(values['seconds since last frame']) <= STALE_TIMEOUT_S
    assert int(values['processing failures']) == 0


def test_only_unusable_frames_turn_diagnostics_warn_naming_the_fault(camera, node):
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import Image
    camera.segment(seed=9)
    start = len(camera.diagnostics)
    # A camera that sends only frames the node cannot use is not 'segmenting'.
    unusable = Image(height=HEIGHT, width=WIDTH, encoding='yuv422', step=WIDTH * 2,
                     data=bytes(WIDTH * HEIGHT * 2))

    def warned():
        camera.publisher.publish(unusable)
        return camera.status_after(start, DiagnosticStatus.WARN, 'every image rejected',
                                   timeout=0)
    warn = wait_until(warned, 20, period=0.1)
    assert warn, 'no WARN while every frame is rejected'
    assert "encoding 'yuv422' is not supported" in warn.message
    values = {pair.key: pair.value for pair in warn.values}
    assert float(values['seconds since last frame']) <= STALE_TIMEOUT_S
    assert int(values['frames rejected']) > 0
    resumed_from = len(camera.diagnostics)
    camera.segment(seed=10)
    assert camera.status_after(resumed_from, DiagnosticStatus.OK, 'segmenting'), \
        'diagnostics did not return to OK once a usable frame came'
    assert node.alive()


def test_runtime_change_to_truncated_model_is_refused_and_old_one_kept(
        camera, node, truncated_model):
    result, = camera.parameters.set_values(model_path=truncated_model)
    assert not result.successful
    assert 'model_path' in result.reason and truncated_model in result.reason, result.reason
    outputs, _ = camera.segment(seed=8)
    class_map = np.frombuffer(bytes(outputs['class_map'].data), np.uint8)
    assert class_map.max() < len(FIRST_CLASSES)
    assert node.alive()


def test_runtime_change_to_external_data_on_opencv_is_refused_and_old_one_kept(
        camera, node, models_dir, first_model):
    external = save_with_external_data(first_model, models_dir / 'external.onnx')
    result, = camera.parameters.set_values(model_path=external)
    assert not result.successful
    assert 'old one kept' in result.reason and 'external data' in result.reason, result.reason
    outputs, _ = camera.segment(seed=9)
    class_map = np.frombuffer(bytes(outputs['class_map'].data), np.uint8)
    assert class_map.max() < len(FIRST_CLASSES)
    assert node.alive()


def test_runtime_change_to_another_valid_model_is_applied(camera, node, ros_context,
                                                          second_model):
    from std_msgs.msg import String

    from seg_ros.ros.qos import latched_qos

    assert wait_until(lambda: camera.labels, 20), 'no labels before the change'
    first = json.loads(camera.labels[-1].data)
    assert [entry['name'] for entry in first] == FIRST_CLASSES

    result, = camera.parameters.set_values(model_path=second_model)
    assert result.successful, result.reason

    def second_labels(messages):
        return [json.loads(msg.data) for msg in list(messages)
                if len(json.loads(msg.data)) == len(SECOND_CLASSES)]
    assert wait_until(lambda: second_labels(camera.labels), 20), 'no new labels published'
    # A subscriber that comes later gets only the new labels: they are latched.
    late = Probe(ros_context, 'recovery_late_probe')
    try:
        late_labels = late.record(String, f'{NODE}/labels', latched_qos())
        assert wait_until(lambda: late_labels, 20), 'labels are not latched'
        labels = json.loads(late_labels[0].data)
    finally:
        late.close()
    assert [entry['id'] for entry in labels] == list(range(len(SECOND_CLASSES)))
    assert [entry['name'] for entry in labels] == SECOND_CLASSES
    assert labels[3]['color'] == [30, 225, 60]

    # The class maps now come from the new network: its argmax, up to float near-ties.
    for seed in range(3):
        outputs, pixels = camera.segment(seed=20 + seed)
        class_map = np.frombuffer(bytes(outputs['class_map'].data), np.uint8).reshape(
            HEIGHT, WIDTH)
        assert class_map.max() < len(SECOND_CLASSES)
        scores = reference_scores(pixels, len(SECOND_CLASSES), width=WIDTH, height=HEIGHT,
                                  scale=1 / 255)
        differs = class_map != np.argmax(scores, axis=0)
        assert not (differs & ~ambiguous_pixels(scores, 1e-3)).any()
        assert class_map.max() >= len(FIRST_CLASSES), 'no class the old model lacks'
    assert f'{len(SECOND_CLASSES)} classes' in node.output()
    assert node.alive()
