"""
The managed (lifecycle) segmentation node, driven through its real lifecycle services.

The node runs as its own process (``managed_segmentation_node``) with a tiny ONNX model; an
in-process probe calls ``~/change_state``, ``~/get_state`` and ``~/get_available_transitions``
as a lifecycle manager (Nav2's, launch's) does, publishes real frames and records the outputs:
none while unconfigured or inactive, all of them while active; the latched labels sent again on
activate; a configure that fails (missing model) leaves the node unconfigured with the reason on
/diagnostics, and one after a parameter change succeeds; a transition the state lacks is refused
with ``success: false`` and the node lives on; shutdown ends the process with status 0. Then the
real ``ros2 launch ... managed:=true`` (with ``autostart:=true`` reaching active by itself) in a
colcon workspace, as in ``test_ros2_launch.py``.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from models import make_frame, make_scores_model
import ros2_extra
from ros_env import module_domain, rclpy_context, ros_environment
from ros_harness import Lifecycle, LoggedProcess, ParameterCaller, Probe, wait_until
from seg_ros.paths import executable_path

DOMAIN_ID = module_domain(16)
NAMESPACE = '/lc_ns'
NODE = f'{NAMESPACE}/segmentation'
IMAGE_TOPIC = f'{NAMESPACE}/camera/image_raw'
MODEL_WIDTH, MODEL_HEIGHT = 64, 48
OUTPUTS = ('class_map', 'color_mask', 'overlay')
# How long a test waits to see that nothing comes.
QUIET_S = 1.5

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('lifecycle_model')
    make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('road\ncar\nperson\nsky\n')
    return str(folder)


def managed_node(model_path: str, *params: str) -> LoggedProcess:
    """Start the managed node: its executable, or its module in a checkout not reinstalled."""
    command = [executable_path('managed_segmentation_node')]
    if not os.path.exists(command[0]):
        command = [sys.executable, '-m', 'seg_ros.ros.managed_node']
    arguments = ['-r', f'__ns:={NAMESPACE}', '-r', f'image:={IMAGE_TOPIC}',
                 '-p', f'model_path:={model_path}', '-p', f'input_width:={MODEL_WIDTH}',
                 '-p', f'input_height:={MODEL_HEIGHT}', '-p', 'backend:=opencv',
                 '-p', 'diagnostics_period:=0.5']
    for param in params:
        arguments += ['-p', param]
    return LoggedProcess([*command, '--ros-args', *arguments], ros_environment(DOMAIN_ID),
                         'managed_segmentation_node-')


@pytest.fixture
def probe(ros_context):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from seg_ros.ros.qos import image_qos, latched_qos

    probe = Probe(ros_context, 'lifecycle_probe')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for output in OUTPUTS:
        probe.record(Image, f'{NODE}/{output}', reliable)
    probe.labels = probe.record(String, f'{NODE}/labels', latched_qos())
    probe.diagnostics = probe.record(DiagnosticArray, '/diagnostics', QoSProfile(depth=50))
    probe.image_publisher = probe.node.create_publisher(Image, IMAGE_TOPIC,
                                                        image_qos('reliable', 5))
    probe.lifecycle = Lifecycle(probe, NODE)
    yield probe
    probe.close()


def frame_message(stamp_sec: int):
    from sensor_msgs.msg import Image
    frame = make_frame(80, 60)
    msg = Image(height=60, width=80, encoding='bgr8', step=80 * 3, data=frame.tobytes())
    msg.header.stamp.sec = stamp_sec
    msg.header.frame_id = 'lc_camera'
    return msg


def outputs_with(probe, stamp_sec: int) -> dict:
    """Return the outputs received so far for the frame stamped ``stamp_sec``."""
    return {output: msg for output in OUTPUTS for msg in probe.received[f'{NODE}/{output}']
            if msg.header.stamp.sec == stamp_sec}


def send_frames(probe, stamp_sec: int, seconds: float) -> dict:
    """Publish a frame every 0.25 s for ``seconds`` or until every output arrived; return them."""
    msg = frame_message(stamp_sec)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe.image_publisher.publish(msg)
        found = wait_until(lambda: len(outputs_with(probe, stamp_sec)) == len(OUTPUTS), 0.25)
        if found:
            break
    return outputs_with(probe, stamp_sec)


def input_subscribers(probe) -> int:
    return probe.image_publisher.get_subscription_count()


def overlay_publishers(probe) -> int:
    return probe.node.count_publishers(f'{NODE}/overlay')


def assert_alive(node: LoggedProcess) -> None:
    assert node.alive(), node.output()


def test_every_transition_gates_model_inputs_and_outputs(probe, model_dir):
    from lifecycle_msgs.msg import Transition

    node = managed_node(os.path.join(model_dir, 'tiny.onnx'))
    lifecycle = probe.lifecycle
    try:
        lifecycle.wait_ready()
        # Unconfigured: the lifecycle services only; no model, no subscription, no output.
        assert lifecycle.state() == 'unconfigured'
        assert set(lifecycle.available()) == {'configure', 'shutdown'}
        assert input_subscribers(probe) == 0 and overlay_publishers(probe) == 0
        assert 'Model ' not in node.output(), 'no model is loaded before configure'

        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.state() == 'inactive'
        assert 'Model ' in node.output() and 'tiny.onnx' in node.output()
        # Inactive: the outputs exist (off), nothing subscribes to the camera.
        assert wait_until(lambda: overlay_publishers(probe) == 1, 10), node.output()
        assert input_subscribers(probe) == 0
        assert not probe.labels, 'a lifecycle publisher sends nothing before activate'

        assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
        assert lifecycle.state() == 'active'
        assert wait_until(lambda: input_subscribers(probe) == 1, 10), node.output()
        outputs = send_frames(probe, 1, 30)
        assert set(outputs) == set(OUTPUTS), node.output()
        assert (outputs['overlay'].width, outputs['overlay'].height) == (80, 60)
        assert outputs['overlay'].header.frame_id == 'lc_camera'
        assert wait_until(lambda: probe.labels, 10), 'labels sent on activate'
        assert '"road"' in probe.labels[-1].data

        # Deactivate: no frame is taken in or published; the model stays loaded.
        assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.state() == 'inactive'
        assert wait_until(lambda: input_subscribers(probe) == 0, 10), node.output()
        assert send_frames(probe, 2, QUIET_S) == {}
        assert overlay_publishers(probe) == 1

        # Activate again: the latched labels are sent again, frames flow, no model reload.
        labels_before = len(probe.labels)
        loads = node.output().count('Model ')
        assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
        assert wait_until(lambda: len(probe.labels) > labels_before, 10), 'labels re-sent'
        assert set(send_frames(probe, 3, 30)) == set(OUTPUTS), node.output()
        assert node.output().count('Model ') == loads

        # Bad input: a transition the state lacks is refused; the node lives on, still active.
        assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert not lifecycle.change(Transition.TRANSITION_CLEANUP)
        assert not lifecycle.change(99)
        assert_alive(node)
        assert lifecycle.state() == 'active'
        assert 'refused: not available in state' in node.output()
        assert set(send_frames(probe, 4, 30)) == set(OUTPUTS), node.output()

        # Cleanup frees the model and the outputs; configure loads it again.
        assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.change(Transition.TRANSITION_CLEANUP)
        assert lifecycle.state() == 'unconfigured'
        assert wait_until(lambda: overlay_publishers(probe) == 0, 10), node.output()
        assert input_subscribers(probe) == 0
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert node.output().count('Model ') == loads + 1
        assert wait_until(lambda: overlay_publishers(probe) == 1, 10), node.output()

        # Shutdown (here from inactive) ends the process, cleanly.
        assert lifecycle.change(Transition.TRANSITION_INACTIVE_SHUTDOWN)
        assert node.wait(timeout=15) == 0, node.output()
        assert 'Traceback' not in node.output(), node.output()
    finally:
        node.close()


@pytest.mark.parametrize('transition', ['TRANSITION_UNCONFIGURED_SHUTDOWN',
                                        'TRANSITION_ACTIVE_SHUTDOWN'])
def test_shutdown_from_any_state_ends_cleanly(probe, model_dir, transition):
    from lifecycle_msgs.msg import Transition

    node = managed_node(os.path.join(model_dir, 'tiny.onnx'))
    lifecycle = probe.lifecycle
    try:
        lifecycle.wait_ready()
        if transition == 'TRANSITION_ACTIVE_SHUTDOWN':
            assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
            assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
            assert set(send_frames(probe, 5, 30)) == set(OUTPUTS), node.output()
        assert lifecycle.change(getattr(Transition, transition))
        assert node.wait(timeout=15) == 0, node.output()
        assert 'Traceback' not in node.output(), node.output()
    finally:
        node.close()


def latest_status(probe):
    for array in reversed(probe.diagnostics):
        for status in array.status:
            if status.name == f'{NODE}: segmentation':
                return status
    return None


def test_failed_configure_then_a_good_one_after_a_parameter_change(probe, model_dir, tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus
    from lifecycle_msgs.msg import Transition

    missing = str(tmp_path / 'missing.onnx')
    good = os.path.join(model_dir, 'tiny.onnx')
    node = managed_node(missing)
    lifecycle = probe.lifecycle
    parameters = ParameterCaller(probe, NODE)
    try:
        lifecycle.wait_ready()
        assert not lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert_alive(node)
        assert lifecycle.state() == 'unconfigured'
        assert 'configure failed' in node.output() and 'missing.onnx' in node.output()
        assert 'Traceback' not in node.output(), node.output()
        # The reason on /diagnostics, an error.
        status = wait_until(lambda: latest_status(probe), 10)
        assert status is not None and status.level == DiagnosticStatus.ERROR
        assert 'configure failed' in status.message and 'missing.onnx' in status.message
        assert input_subscribers(probe) == 0 and overlay_publishers(probe) == 0

        # A bad value is refused while unconfigured too; a good one is taken for configure.
        assert parameters.wait_ready()
        assert not parameters.set_values(alpha=1.5)[0].successful
        assert parameters.set_values(model_path=good)[0].successful
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.state() == 'inactive'
        assert wait_until(lambda: latest_status(probe).level == DiagnosticStatus.OK and
                          'inactive' in latest_status(probe).message, 10)
        assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
        assert set(send_frames(probe, 6, 30)) == set(OUTPUTS), node.output()

        # While active, a model change goes through today's checks: refused, old model kept.
        result = parameters.set_values(model_path=missing)[0]
        assert not result.successful and 'old one kept' in result.reason, result.reason
        assert parameters.get_values('model_path') == [good]
        assert lifecycle.state() == 'active'
        assert set(send_frames(probe, 7, 30)) == set(OUTPUTS), node.output()
        # SIGINT in any state: a clean exit.
        assert node.stop(signal.SIGINT, timeout=15) == 0, node.output()
    finally:
        node.close()


def test_tracking_set_while_unconfigured_and_confidence_while_active(probe, model_dir):
    """Values set before configure are the tracker's; ~/confidence follows the lifecycle."""
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    confidence = probe.record(Image, f'{NODE}/confidence', reliable)
    instance_map = probe.record(Image, f'{NODE}/instance_map', reliable)
    node = managed_node(os.path.join(model_dir, 'tiny.onnx'), 'instance_classes:=[car]',
                        'min_instance_area:=1')
    lifecycle = probe.lifecycle
    parameters = ParameterCaller(probe, NODE)

    def ids_of(stamp_sec: int) -> list[int] | None:
        msg = frame_message(stamp_sec)
        for _ in range(60):
            probe.image_publisher.publish(msg)
            found = wait_until(lambda: [m for m in list(instance_map)
                                        if m.header.stamp.sec == stamp_sec], 0.5)
            if found:
                values = set(memoryview(bytes(found[0].data)).cast('H').tolist())
                return sorted(values - {0})
        return None
    try:
        lifecycle.wait_ready()
        assert parameters.wait_ready()
        assert parameters.set_values(tracking=False)[0].successful   # no model yet
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.change(Transition.TRANSITION_ACTIVATE)
        first = ids_of(20)
        assert first and first == list(range(1, len(first) + 1)), node.output()
        assert ids_of(21) == first                  # 1..N again: no tracks
        assert wait_until(lambda: [m for m in list(confidence) if m.header.stamp.sec == 21], 5)
        assert confidence[-1].encoding == 'mono8' and confidence[-1].width == 80
        assert parameters.set_values(tracking=True)[0].successful
        tracked = ids_of(22)
        assert tracked and ids_of(23) == tracked, 'the same frame keeps its ids'
        assert lifecycle.change(Transition.TRANSITION_DEACTIVATE)
        count = len(confidence)
        probe.image_publisher.publish(frame_message(24))
        time.sleep(QUIET_S)
        assert len(confidence) == count, 'nothing while inactive'
        assert lifecycle.change(Transition.TRANSITION_INACTIVE_SHUTDOWN)
        assert node.wait(timeout=15) == 0, node.output()
    finally:
        node.close()


# ---- ros2 launch, as on a robot ------------------------------------------------------------
NETWORK = ['input_width:=128', 'input_height:=64', 'backend:=opencv']


@pytest.fixture(scope='module')
def launch_environment(tmp_path_factory):
    """Build this checkout's seg_ros with colcon (ros2-extra) and return its environment."""
    prefix = ros2_extra.prefix()
    ros2_extra.robot_python(prefix)
    root = tmp_path_factory.mktemp('lifecycle_ws')
    ros2_extra.copy_package(root / 'src' / 'seg_ros')
    environment = ros2_extra.robot_environment(prefix, DOMAIN_ID)
    result = subprocess.run(
        ['colcon', 'build', '--packages-select', 'seg_ros', '--event-handlers',
         'console_direct-'], cwd=root, env=environment, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return ros2_extra.robot_environment(prefix, DOMAIN_ID, workspace=root)


def camera(environment: dict[str, str], namespace: str) -> LoggedProcess:
    return LoggedProcess(['ros2', 'run', 'seg_ros', 'camera_source', '--ros-args', '-r',
                          f'__ns:={namespace}', '-p', 'width:=160', '-p', 'height:=120',
                          '-p', 'rate:=10.0'], environment)


def stop_launch(launch: LoggedProcess) -> None:
    launch.process.send_signal(signal.SIGINT)
    assert launch.wait(timeout=20) == 0, launch.output()
    assert 'process has died' not in launch.output(), launch.output()


def test_launch_managed_waits_for_a_manager(ros_context, launch_environment):
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    source = camera(launch_environment, '/lcm_camera')
    launch = LoggedProcess(['ros2', 'launch', 'seg_ros', 'segment.launch.py', 'managed:=true',
                            'namespace:=lcm', 'image_topic:=/lcm_camera/image_raw', *NETWORK],
                           launch_environment)
    probe = Probe(ros_context, 'lifecycle_launch_probe')
    try:
        overlays = probe.record(Image, '/lcm/segmentation/overlay',
                                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        lifecycle = Lifecycle(probe, '/lcm/segmentation')
        lifecycle.wait_ready()
        assert lifecycle.state() == 'unconfigured'
        time.sleep(QUIET_S)
        assert not overlays, 'nothing before configure and activate'
        assert lifecycle.change(Transition.TRANSITION_CONFIGURE), launch.output()
        assert lifecycle.change(Transition.TRANSITION_ACTIVATE), launch.output()
        assert wait_until(lambda: overlays, 60), launch.output() + source.output()
        stop_launch(launch)
    finally:
        probe.close()
        launch.close()
        source.close()


@pytest.mark.parametrize('launch_file, nodes', [
    ('segment.launch.py', ['/lca/segmentation']),
    ('multi_camera.launch.py', ['/lcf/segmentation', '/lcr/segmentation'])])
def test_launch_autostart_reaches_active(ros_context, launch_environment, launch_file, nodes):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    namespaces = [node.split('/')[1] for node in nodes]
    sources = [camera(launch_environment, f'/{namespace}') for namespace in namespaces]
    if launch_file == 'segment.launch.py':
        where = ['namespace:=lca', 'image_topic:=/lca/image_raw']
    else:
        where = ['cameras:=lcf,lcr']
    launch = LoggedProcess(['ros2', 'launch', 'seg_ros', launch_file, 'managed:=true',
                            'autostart:=true', *where, *NETWORK], launch_environment)
    probe = Probe(ros_context, 'lifecycle_autostart_probe')
    try:
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        overlays = [probe.record(Image, f'{node}/overlay', reliable) for node in nodes]
        assert wait_until(lambda: all(overlays), 90), launch.output()
        for node in nodes:
            lifecycle = Lifecycle(probe, node)
            lifecycle.wait_ready()
            assert lifecycle.state() == 'active'
        assert launch.output().count('segmentation node configured, activating') == len(nodes)
        stop_launch(launch)
    finally:
        probe.close()
        launch.close()
        for source in sources:
            source.close()
