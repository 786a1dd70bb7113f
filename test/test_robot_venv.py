"""
The faster runtimes on a robot under PEP 668: the venv of docs/robot.md, for real.

A robot's system Python refuses ``pip install`` (PEP 668), so ONNX Runtime and OpenVINO go into a
venv made with ``/usr/bin/python3 -m venv --system-site-packages`` (it still sees apt's OpenCV,
NumPy, Pillow and PyYAML), and ``python -m colcon build`` runs with that venv's Python so that the
scripts it installs, which ``ros2 run`` and ``ros2 launch`` start, run in it. Here the venv
gets the ROS 2 wheels too (a robot has them from apt under /opt/ros, visible through ``source
/opt/ros/jazzy/setup.bash``), ONNX Runtime, OpenVINO, onnx and colcon; the ``ros2`` command line
is ``../shared/ros2-extra``'s. Checked: the installed executables' interpreter is the venv's,
the venv's OpenCV and NumPy are apt's, and the node started by ``ros2 run`` and by ``ros2 launch``
says on /diagnostics that it runs OpenVINO. Skipped, with the reason, where the system Python has
no apt OpenCV (``make robot-test`` installs it) or ``../shared/ros2-extra`` is absent.
"""

import fcntl
import hashlib
import json
import os
from pathlib import Path
import signal
import subprocess

import pytest

import robot_stack
import ros2_extra
from ros_env import module_domain, rclpy_context
from ros_harness import descendants, LoggedProcess, Probe, wait_until

DOMAIN_ID = module_domain(47)
# What docs/robot.md installs in the venv: the faster runtimes and onnx (the .net conversion).
VENV_PACKAGES = ('onnxruntime', 'openvino', 'onnx')
# colcon comes from apt on a robot (python3-colcon-common-extensions); here from pip.
BUILD_TOOLS = ('colcon-common-extensions',)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
NETWORK = ('input_width:=128', 'input_height:=64')

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def apt_versions() -> dict[str, str]:
    try:
        return robot_stack.system_versions()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f'{robot_stack.SYSTEM_PYTHON} has no apt python3-opencv / python3-numpy '
                    '(make robot-test installs them)')


@pytest.fixture(scope='module')
def prefix():
    return ros2_extra.prefix()


@pytest.fixture(scope='module')
def venv(apt_versions) -> Path:
    """Return the robot venv with the faster runtimes, built once a machine (locked)."""
    requirements = [*robot_stack.makefile_list('ROS_PACKAGES'), *VENV_PACKAGES, *BUILD_TOOLS]
    key = hashlib.sha256(json.dumps([requirements, apt_versions]).encode()).hexdigest()[:12]
    path = Path.home() / '.cache' / 'seg_ros' / f'robot-venv-{key}'
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f'robot-venv-{key}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = path / '.seg_ros-ready'
        if not stamp.is_file():
            python = robot_stack.make_venv(path)
            (path / 'COLCON_IGNORE').touch()
            blocked = tuple(name for name in robot_stack.BLOCKED if name not in VENV_PACKAGES)
            done = robot_stack.pip_install(python, requirements, apt_versions['numpy'], blocked,
                                           capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            stamp.touch()
    return path


def venv_environment(prefix: Path, venv: Path, workspace: Path | None = None) -> dict[str, str]:
    """Return ``source /opt/ros/jazzy/setup.bash`` (ros2-extra here), then the venv activated."""
    environment = ros2_extra.robot_environment(prefix, DOMAIN_ID, workspace=workspace)
    environment['PATH'] = f'{venv / "bin"}{os.pathsep}{environment["PATH"]}'
    environment['VIRTUAL_ENV'] = str(venv)
    return environment


@pytest.fixture(scope='module')
def workspace(prefix, venv, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('venv_ws')
    ros2_extra.copy_package(root / 'src' / 'seg_ros')
    result = subprocess.run(
        ['python', '-m', 'colcon', 'build', '--packages-select', 'seg_ros', '--event-handlers',
         'console_direct-'], cwd=root, env=venv_environment(prefix, venv),
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


def test_installed_executables_run_in_the_venv_on_apt_opencv(workspace, venv, apt_versions):
    scripts = workspace / 'install' / 'seg_ros' / 'lib' / 'seg_ros'
    for name in ('segmentation_node', 'managed_segmentation_node', 'seg-ros'):
        shebang = (scripts / name).read_text().splitlines()[0]
        assert shebang == f'#!{venv / "bin" / "python"}', name
    found = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c',
         'import cv2, numpy, onnxruntime, openvino; print(cv2.__version__, numpy.__version__, '
         'cv2.__file__)'], capture_output=True, text=True, check=True).stdout.split()
    assert found[:2] == [apt_versions['cv2'], apt_versions['numpy']]
    assert found[2].startswith('/usr/lib/python3/dist-packages/')


def diagnostics_of(probe: Probe, messages: list, node_name: str) -> dict[str, str]:
    """Wait for the node's /diagnostics status; return its values."""
    def found():
        for array in list(messages):
            for status in array.status:
                if status.name.startswith(f'{node_name}:'):
                    values = {item.key: item.value for item in status.values}
                    if 'backend' in values:
                        return values
        return None
    values = wait_until(found, START_TIMEOUT_S, 0.2)
    assert values, 'no /diagnostics from the node'
    return values


def venv_nodes(pid: int, venv: Path) -> list[int]:
    """Return the processes below ``pid`` that run segmentation_node in the venv's Python."""
    python = str(venv / 'bin' / 'python')
    return [child for child in descendants(pid)
            if command_line(child)[:1] == [python]
            and any('segmentation_node' in part for part in command_line(child)[1:2])]


def command_line(pid: int) -> list[str]:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
            return [part.decode() for part in cmdline.read().split(b'\0') if part]
    except OSError:
        return []


def interrupt(process: LoggedProcess, watched: list[int]) -> list[int]:
    """
    Ctrl-C as a terminal sends it, to the whole process group; then kill what is left.

    :return: the ``watched`` processes still running when Ctrl-C had had its time.
    """
    try:
        os.killpg(process.process.pid, signal.SIGINT)
        process.wait(timeout=STOP_TIMEOUT_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    left = wait_until(lambda: [pid for pid in watched if os.path.exists(f'/proc/{pid}')] or None,
                      STOP_TIMEOUT_S) or []
    try:
        os.killpg(process.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.close()
    return left


@pytest.mark.parametrize('how', ['ros2 run', 'ros2 launch'])
def test_the_node_runs_openvino_from_the_venv(how, ros_context, prefix, venv, workspace):
    environment = venv_environment(prefix, venv, workspace)
    namespace = 'venv_run' if how == 'ros2 run' else 'venv_launch'
    if how == 'ros2 run':
        command = ['ros2', 'run', 'seg_ros', 'segmentation_node', '--ros-args', '-r',
                   f'__ns:=/{namespace}', *(part for setting in NETWORK
                                            for part in ('-p', setting))]
    else:
        command = ['ros2', 'launch', 'seg_ros', 'segment.launch.py', f'namespace:={namespace}',
                   'use_loopback_dds:=true', *NETWORK]
    probe = Probe(ros_context, f'probe_{namespace}')
    messages = probe.record_diagnostics()
    process = LoggedProcess(command, environment)
    nodes: list[int] = []
    try:
        # The node's process runs the venv's interpreter, as the installed script's first line
        # says; its diagnostics, not those of any other node, are read below.
        nodes = wait_until(lambda: venv_nodes(process.process.pid, venv), START_TIMEOUT_S,
                           0.2) or []
        assert nodes, process.output()[-3000:]
        values = diagnostics_of(probe, messages, f'/{namespace}/segmentation')
    finally:
        left = interrupt(process, nodes)
        probe.close()
    assert values['backend'] == 'openvino', values
    assert values['inference'].startswith('openvino '), values
    assert not left, f'{how}: the node was still running after Ctrl-C'
