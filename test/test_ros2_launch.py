"""
The real ``ros2 launch`` of seg_ros, as a user runs it on a robot.

seg_ros is built with colcon in a fresh workspace against ``../shared/ros2-extra`` (the real
Jazzy launch, launch_ros and ``ros2`` command line, vision_msgs), in that prefix's Python with
only seg_ros' own runtime dependencies added (as rosdep would). Then ``ros2 launch seg_ros
segment.launch.py`` and ``multi_camera.launch.py`` run beside real ``camera_source`` processes:
launch arguments reach the node (``ros2 param get``), outputs arrive, bad values are refused,
the LabelInfo, compressed and mask topics are there with their types, every socket of every
process is on 127.0.0.1 with ``use_loopback_dds:=true``, and SIGINT to ``ros2 launch`` stops
every process it started, cleanly. Skipped, with the reason, only where ``../shared/ros2-extra``
is absent.
"""

import os
import signal
import subprocess

import pytest

import ros2_extra
from ros_env import module_domain, rclpy_context
from ros_harness import descendants, non_loopback_sockets, Probe, wait_until
from ros_harness import LoggedProcess as Process

DOMAIN_ID = module_domain(22)
STOP_TIMEOUT_S = 15.0
NETWORK = ['input_width:=128', 'input_height:=64', 'backend:=opencv']

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def prefix():
    return ros2_extra.prefix()


@pytest.fixture(scope='module')
def workspace(prefix, tmp_path_factory):
    """Build this checkout's seg_ros in a new colcon workspace and return the workspace."""
    ros2_extra.robot_python(prefix)
    root = tmp_path_factory.mktemp('launch_ws')
    ros2_extra.copy_package(root / 'src' / 'seg_ros')
    result = subprocess.run(
        ['colcon', 'build', '--packages-select', 'seg_ros', '--event-handlers',
         'console_direct-'], cwd=root, env=ros2_extra.robot_environment(prefix, DOMAIN_ID),
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    share = root / 'install' / 'seg_ros' / 'share' / 'seg_ros'
    for installed in ('rviz/segment.rviz', 'config/segment.yaml', 'config/fastdds_loopback.xml',
                      'launch/segment.launch.py', 'launch/multi_camera.launch.py'):
        assert (share / installed).is_file(), f'{installed} is not installed'
    return root


@pytest.fixture(scope='module')
def environment(prefix, workspace):
    return ros2_extra.robot_environment(prefix, DOMAIN_ID, workspace=workspace)


def ros2(environment: dict[str, str], *arguments: str, timeout: float = 60.0) -> str:
    """Run one ``ros2`` command (no daemon) and return its output; fail on an error status."""
    result = subprocess.run(['ros2', *arguments], env=environment, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f'ros2 {" ".join(arguments)}: {result.stdout}{result.stderr}'
    return result.stdout


def param_get(environment: dict[str, str], node: str, name: str) -> str:
    return ros2(environment, 'param', 'get', '--no-daemon', '--spin-time', '5', node,
                name).strip()


def param_dump(environment: dict[str, str], node: str) -> dict:
    """Return every parameter of ``node`` from one ``ros2 param dump``."""
    import yaml

    dump = yaml.safe_load(ros2(environment, 'param', 'dump', '--no-daemon', '--spin-time', '5',
                               node))
    return dump[node]['ros__parameters']


def camera(environment: dict[str, str], namespace: str) -> Process:
    return Process(['ros2', 'run', 'seg_ros', 'camera_source', '--ros-args', '-r',
                    f'__ns:={namespace}', '-p', 'width:=320', '-p', 'height:=240',
                    '-p', 'rate:=10.0'], environment)


def stop_with_sigint(launch: Process) -> None:
    """Ctrl-C: SIGINT to ros2 launch alone; it must stop everything it started, cleanly."""
    started = descendants(launch.process.pid)
    assert len(started) >= 2, f'ros2 launch started nothing: {launch.output()}'
    launch.process.send_signal(signal.SIGINT)
    status = launch.process.wait(timeout=STOP_TIMEOUT_S)
    assert status == 0, launch.output()
    left = wait_until(lambda: [pid for pid in started if os.path.exists(f'/proc/{pid}')] or
                      None, 5.0)
    assert left is None, f'still running after ros2 launch ended: {left}'
    output = launch.output()
    assert 'process has finished cleanly' in output, output
    assert 'process has died' not in output, output


def topic_types(environment: dict[str, str]) -> dict[str, str]:
    listing = ros2(environment, 'topic', 'list', '--no-daemon', '-t', '--spin-time', '5')
    types = {}
    for line in listing.splitlines():
        name, _, kind = line.partition(' ')
        types[name] = kind.strip('[]')
    return types


def test_segment_launch(ros_context, environment):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    source = camera(environment, '/lt_camera')
    launch = Process(['ros2', 'launch', 'seg_ros', 'segment.launch.py',
                      'image_topic:=/lt_camera/image_raw', 'namespace:=lt', 'alpha:=0.25',
                      'class_masks:=Road,Sidewalk', 'use_loopback_dds:=true', *NETWORK],
                     environment)
    probe = Probe(ros_context, 'launch_probe')
    node = '/lt/segmentation'
    try:
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        overlays = probe.record(Image, f'{node}/overlay', reliable)
        packed = probe.record(CompressedImage, f'{node}/overlay/compressed', reliable)
        roads = probe.record(Image, f'{node}/mask/road', reliable)
        assert wait_until(lambda: overlays and packed and roads, 120), (
            launch.output() + source.output())
        assert packed[-1].format == 'rgb8; jpeg compressed bgr8'
        assert roads[-1].encoding == 'mono8'

        assert param_get(environment, node, 'input_width') == 'Integer value is: 128'
        parameters = param_dump(environment, node)
        assert parameters.get('alpha') == 0.25 and parameters['input_height'] == 64, parameters
        assert parameters['backend'] == 'opencv'
        assert parameters['class_masks'] == ['Road', 'Sidewalk']

        types = topic_types(environment)
        expected = {
            f'{node}/label_info': 'vision_msgs/msg/LabelInfo',
            f'{node}/labels': 'std_msgs/msg/String',
            f'{node}/overlay/compressed': 'sensor_msgs/msg/CompressedImage',
            f'{node}/color_mask/compressed': 'sensor_msgs/msg/CompressedImage',
            f'{node}/class_map/compressed': 'sensor_msgs/msg/CompressedImage',
            f'{node}/mask/road': 'sensor_msgs/msg/Image',
            f'{node}/mask/sidewalk': 'sensor_msgs/msg/Image',
        }
        assert {name: types.get(name) for name in expected} == expected, types
        label_info = ros2(environment, 'topic', 'echo', '--once', '--no-daemon',
                          '--qos-durability', 'transient_local', '--qos-reliability',
                          'reliable', f'{node}/label_info', 'vision_msgs/msg/LabelInfo')
        assert 'class_name: Road' in label_info and 'class_name: Bicycle' in label_info

        refused = subprocess.run(['ros2', 'param', 'set', '--no-daemon', '--spin-time', '5', node,
                                  'alpha', '1.5'], env=environment, capture_output=True,
                                 text=True, timeout=60)
        assert 'Setting parameter failed' in refused.stderr, refused.stdout + refused.stderr
        assert param_get(environment, node, 'alpha') == 'Double value is: 0.25'

        pids = descendants(launch.process.pid) + descendants(source.process.pid)
        assert non_loopback_sockets(pids) == {}, 'use_loopback_dds:=true keeps DDS on 127.0.0.1'

        stop_with_sigint(launch)
    finally:
        probe.close()
        launch.close()
        source.close()


@pytest.mark.parametrize('argument, message', [
    ('input_width:=wide', "input_width:='wide' is not a int"),
    ('alpha:=1.5', 'alpha=1.5 is outside [0.0, 1.0]'),
    ('backend:=tpu', 'Argument "backend" provided value "tpu" is not valid'),
    ('class_masks:=Road,Tree', "class_masks: 'Tree' is not a class of the model"),
])
def test_bad_launch_argument_is_refused(environment, argument, message):
    # The argument comes last: of two values for one argument the last wins.
    launch = Process(['ros2', 'launch', 'seg_ros', 'segment.launch.py', 'namespace:=lt_bad',
                      *NETWORK, argument], environment)
    try:
        status = launch.process.wait(timeout=120)
        output = launch.output()
    finally:
        launch.close()  # after a failure: nothing it started is left running
    assert message in output, output
    if argument.startswith('class_masks'):
        # The launch itself is fine; the node refuses to start and says why.
        assert 'process has died' in output and 'exit code 1' in output, output
    else:
        assert status != 0, output


@pytest.mark.parametrize('one_process', [False, True])
def test_multi_camera_launch(ros_context, environment, one_process):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    cameras = [camera(environment, f'/{name}') for name in ('front', 'rear')]
    launch = Process(['ros2', 'launch', 'seg_ros', 'multi_camera.launch.py',
                      f'one_process:={str(one_process).lower()}',
                      'cameras:=front,rear', 'input_width:=96', 'input_height:=48',
                      'backend:=opencv', 'use_loopback_dds:=true'], environment)
    probe = Probe(ros_context, 'multi_launch_probe')
    try:
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        overlays = [probe.record(Image, f'/{name}/segmentation/overlay', reliable)
                    for name in ('front', 'rear')]
        assert wait_until(lambda: all(overlays), 120), launch.output()
        for name, received in zip(('front', 'rear'), overlays):
            node = f'/{name}/segmentation'
            assert param_get(environment, node, 'input_width') == 'Integer value is: 96'
            assert received[-1].header.frame_id == 'camera'
        pids = descendants(launch.process.pid)
        # One node process a camera, or one process for both with one network.
        assert len([pid for pid in pids if pid != launch.process.pid]) == \
            (1 if one_process else 2)
        if one_process:
            assert '2 cameras in one process, one network' in launch.output()
        assert non_loopback_sockets(pids) == {}
        stop_with_sigint(launch)
    finally:
        probe.close()
        launch.close()
        for source in cameras:
            source.close()


# Fast modules that need no optional tool: what colcon test really runs here (all of them are
# collected); the ROS graph tests need onnx for their models, and run in this suite.
COLCON_TEST_MODULES = ('test/test_lint.py', 'test/test_launch_files.py',
                       'test/test_core_labels.py', 'test/test_image_conversion.py',
                       'test/test_segmentation_node.py')


def test_colcon_test_works_as_on_a_robot(prefix, workspace):
    """Run colcon test in the workspace: every module collects (or skips, saying why); passes."""
    environment = ros2_extra.robot_environment(prefix, DOMAIN_ID, workspace=workspace)

    def colcon_test(*pytest_arguments: str) -> str:
        result = subprocess.run(
            ['colcon', 'test', '--packages-select', 'seg_ros', '--event-handlers',
             'console_direct+', '--pytest-args', *pytest_arguments],
            cwd=workspace, env=environment, capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        return output

    collected = colcon_test('--collect-only', '-q', '-rs')
    assert 'ERROR collecting' not in collected and 'Interrupted' not in collected, collected
    # Without onnx (no rosdep key) the modules with test models skip, saying why.
    assert 'the tests build their tiny models with onnx' in collected, collected[-6000:]
    ran = colcon_test(*COLCON_TEST_MODULES, '-rs')
    assert ' passed' in ran, ran[-6000:]
    results = subprocess.run(
        ['colcon', 'test-result', '--test-result-base', 'build/seg_ros', '--verbose'],
        cwd=workspace, env=environment, capture_output=True, text=True, timeout=60)
    assert results.returncode == 0, results.stdout + results.stderr
    assert ' 0 errors, 0 failures' in results.stdout, results.stdout
