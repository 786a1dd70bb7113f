"""
Helpers for tests that run real ROS 2 nodes over real topics.

A :class:`NodeProcess` starts one of the package's executables (``segmentation_node``...)
with ``--ros-args``; a :class:`Probe` is an in-process rclpy node that publishes frames and
records what comes back. Every test module passes its own ROS_DOMAIN_ID, and
:mod:`ros_env` keeps DDS on the loopback.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

import cv2
import numpy as np

from ros_env import ros_environment

BIN_DIR = os.path.dirname(sys.executable)


def executable_path(executable: str) -> str:
    """
    Return the path of one of the package's executables.

    From a venv (pip install -e .) it is beside the Python; from a colcon install (colcon
    test) it is in ``<prefix>/lib/seg_ros``, found through the ament index.
    """
    path = os.path.join(BIN_DIR, executable)
    if os.path.exists(path):
        return path
    from ament_index_python.packages import get_package_prefix
    return os.path.join(get_package_prefix('seg_ros'), 'lib', 'seg_ros', executable)


class LoggedProcess:
    """A command running in a session (process group) of its own, its output kept in a file."""

    def __init__(self, command: list[str], environment: dict[str, str],
                 log_prefix: str = 'process-') -> None:
        self._log = tempfile.NamedTemporaryFile('w+', prefix=log_prefix, suffix='.log')
        self.command = command
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environment, start_new_session=True)

    def output(self) -> str:
        """Return everything the process printed so far."""
        self._log.flush()
        with open(self._log.name) as log:
            return log.read()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its status."""
        return self.process.wait(timeout=timeout)

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> int:
        """Send ``sig`` and wait; kill it if it does not exit in time. Return the exit status."""
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self, grace_s: float = 5.0) -> None:
        """
        End what is left of the process group and delete the log.

        Ctrl-C first, to the whole group as a terminal sends it, then SIGKILL to what is still
        there after ``grace_s``: a participant killed outright leaves its 64 MiB Fast DDS
        shared-memory segment (``config/fastdds_loopback.xml``) in /dev/shm until reboot.
        """
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout=grace_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # The group outlives its leader while the processes it started shut down.
        wait_until(lambda: not _group_alive(self.process.pid), grace_s, period=0.05)
        if _group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self._log.close()


def _group_alive(group: int) -> bool:
    """Return True while a process of process group ``group`` runs (zombies excluded)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if fields[0] != 'Z' and int(fields[2]) == group:
            return True
    return False


class NodeProcess(LoggedProcess):
    """One executable of the package running in its own process, its output kept in a file."""

    def __init__(self, executable: str, ros_args: list[str], domain_id: int,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        command = [executable_path(executable), *(extra_args or [])]
        if ros_args:
            command += ['--ros-args', *ros_args]
        environment = ros_environment(domain_id)
        environment.update(env or {})
        super().__init__(command, environment, f'{executable}-')

    def finish(self) -> None:
        """End a node a test kept running: SIGINT, close, and assert a clean exit (status 0)."""
        status = self.stop(signal.SIGINT)
        output = self.output()
        self.close()
        assert status == 0, output


_SOCKET_TABLES = ('udp', 'udp6', 'tcp', 'tcp6')


def _address(hex_address: str) -> str:
    """Return the text form of a /proc/net address (little-endian 32-bit words)."""
    raw = bytes.fromhex(hex_address)
    words = b''.join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))
    if len(words) == 4:
        return '.'.join(str(octet) for octet in words)
    import ipaddress
    return str(ipaddress.IPv6Address(words))


def inet_sockets(pid: int) -> list[tuple[str, str, int]]:
    """
    Return every IPv4/IPv6 UDP and TCP socket a process holds, whatever its port.

    :param pid: the process.
    :return: (table, local address, local port), e.g. ``('udp', '127.0.0.1', 7412)``.
    """
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    sockets = []
    for table in _SOCKET_TABLES:
        # The process's own network namespace view.
        with open(f'/proc/{pid}/net/{table}') as entries:
            next(entries)
            for line in entries:
                fields = line.split()
                if fields[9] in inodes:
                    address, port = fields[1].split(':')
                    sockets.append((table, _address(address), int(port, 16)))
    return sockets


def descendants(pid: int) -> list[int]:
    """Return ``pid`` and every process below it (children, grandchildren ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as stat:
                    parent = int(stat.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def rss_mib(pid: int) -> float:
    """Return a process's resident memory (``VmRSS``) in MiB."""
    with open(f'/proc/{pid}/status') as status_file:
        for line in status_file:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    raise AssertionError(f'no VmRSS for process {pid}')


def non_loopback_sockets(pids: list[int]) -> dict[int, list[tuple[str, str, int]]]:
    """Return, for each process that has any, its sockets not on 127.0.0.1 / ::1."""
    found = {}
    for pid in pids:
        try:
            outside = [entry for entry in inet_sockets(pid)
                       if entry[1] not in ('127.0.0.1', '::1')]
        except FileNotFoundError:  # ended meanwhile
            continue
        if outside:
            found[pid] = outside
    return found


class Lifecycle:
    """A lifecycle manager's view of one node: its change_state, get_state and transitions."""

    def __init__(self, probe: 'Probe', node: str) -> None:
        from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
        self._probe = probe
        self._change = probe.node.create_client(ChangeState, f'{node}/change_state')
        self._get = probe.node.create_client(GetState, f'{node}/get_state')
        self._transitions = probe.node.create_client(GetAvailableTransitions,
                                                     f'{node}/get_available_transitions')

    def _call(self, client, request, timeout: float, retry_after: float | None = None):
        futures, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            futures.append(client.call_async(request))
            wait = deadline - time.monotonic()
            done = wait_until(lambda: [f for f in futures if f.done()],
                              min(retry_after or wait, wait))
            if done:
                return done[0].result()
        raise AssertionError(f'no answer from {client.srv_name} within {timeout:.0f} s')

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the services, and one answer (the reply path is up)."""
        for client in (self._change, self._get, self._transitions):
            assert client.wait_for_service(timeout_sec=timeout), client.srv_name
        self.state(timeout)

    def state(self, timeout: float = 30.0) -> str:
        """Return the current state's label (idempotent: asked again until answered)."""
        from lifecycle_msgs.srv import GetState
        return self._call(self._get, GetState.Request(), timeout, 5.0).current_state.label

    def available(self) -> dict[str, int]:
        """Return the transitions the current state has, label to id."""
        from lifecycle_msgs.srv import GetAvailableTransitions
        response = self._call(self._transitions, GetAvailableTransitions.Request(), 30.0, 5.0)
        return {item.transition.label: item.transition.id
                for item in response.available_transitions}

    def change(self, transition_id: int, timeout: float = 120.0) -> bool:
        """Request one transition by id (sent once: it is not idempotent); return success."""
        from lifecycle_msgs.srv import ChangeState
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self._call(self._change, request, timeout).success


def image_message(frame_bgr: np.ndarray, encoding: str, padding: int = 0,
                  big_endian: bool = False):
    """Build a sensor_msgs/Image by hand (independently of the node's conversion code)."""
    from sensor_msgs.msg import Image
    if encoding == 'bgr8':
        pixels = frame_bgr
    elif encoding == 'rgb8':
        pixels = frame_bgr[:, :, ::-1]
    elif encoding == 'bgra8':
        pixels = np.dstack([frame_bgr, np.full(frame_bgr.shape[:2], 255, np.uint8)])
    elif encoding == 'rgba8':
        pixels = np.dstack([frame_bgr[:, :, ::-1], np.full(frame_bgr.shape[:2], 7, np.uint8)])
    elif encoding == 'mono8':
        pixels = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    elif encoding == 'mono16':
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16)
        pixels = (gray << 8) | gray
        pixels = pixels.astype('>u2' if big_endian else '<u2')
    else:
        raise AssertionError(encoding)
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(height, -1)
    padded = np.zeros((height, rows.shape[1] + padding), np.uint8)
    padded[:, :rows.shape[1]] = rows
    padded[:, rows.shape[1]:] = 0xAB  # garbage in the padding must be ignored
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1],
                is_bigendian=int(big_endian))
    msg.data = padded.tobytes()
    return msg


def tiny_model_params(model_dir: str, width: int, height: int, *params: str) -> list[str]:
    """
    Return the ``-p`` arguments of a node on ``model_dir``'s tiny.onnx: OpenCV, 0.5 s diagnostics.

    :param params: more ``name:=value`` parameters, each after its own ``-p``.
    """
    values = [f'model_path:={os.path.join(model_dir, "tiny.onnx")}', f'input_width:={width}',
              f'input_height:={height}', 'backend:=opencv', 'diagnostics_period:=0.5', *params]
    return [item for value in values for item in ('-p', value)]


def wait_until(predicate: Callable[[], Any], timeout: float, period: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(period)


class Probe:
    """An in-process rclpy node spun in a background thread, for publishing and recording."""

    def __init__(self, context, name: str = 'probe') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self._context = context
        self.node = rclpy.create_node(name, context=context)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._lock = threading.Lock()
        self.received: dict[str, list] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            while self._running and self._context.ok():
                self._executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass

    def record(self, msg_type: type, topic: str, qos) -> list:
        """Subscribe to ``topic`` and return the list its messages are appended to."""
        messages: list = []
        self.received[topic] = messages

        def callback(msg) -> None:
            with self._lock:
                messages.append(msg)
        self.node.create_subscription(msg_type, topic, callback, qos)
        return messages

    def record_outputs(self, prefix: str, names, msg_type: type | None = None) -> None:
        """Record ``<prefix>/<name>`` for each name, as the node publishes them (reliable)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        if msg_type is None:
            from sensor_msgs.msg import Image as msg_type
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for name in names:
            self.record(msg_type, f'{prefix}/{name}', reliable)

    def record_diagnostics(self) -> list:
        """Record ``/diagnostics`` (depth 50) and return its list."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile
        return self.record(DiagnosticArray, '/diagnostics', QoSProfile(depth=50))

    def camera_publisher(self, topic: str, msg_type: type | None = None, depth: int = 5):
        """Return a reliable publisher of camera frames (``sensor_msgs/Image`` by default)."""
        from seg_ros.ros.qos import image_qos
        if msg_type is None:
            from sensor_msgs.msg import Image as msg_type
        return self.node.create_publisher(msg_type, topic, image_qos('reliable', depth))

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``publisher`` is matched with ``count`` subscriptions."""
        return bool(wait_until(lambda: publisher.get_subscription_count() >= count, timeout))

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``topic`` has ``count`` publishers."""
        return bool(wait_until(lambda: self.node.count_publishers(topic) >= count, timeout))

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._running = False
        self._thread.join(timeout=2.0)
        self._executor.remove_node(self.node)
        self.node.destroy_node()


class ParameterCaller:
    """Get and set a running node's parameters through its parameter services.

    A request is sent again when no answer has come within ``retry_after`` seconds: over DDS a
    service's reply can be lost while discovery of the caller's reply reader is still under way
    on a loaded machine, even after ``wait_for_services`` has seen the services. Getting and
    setting parameters to given values are idempotent, so sending a request twice is harmless;
    the first answer to arrive is the one returned.
    """

    def __init__(self, probe: Probe, node_name: str, retry_after: float = 10.0) -> None:
        from rclpy.parameter_client import AsyncParameterClient
        self._client = AsyncParameterClient(probe.node, node_name)
        self._retry_after = retry_after

    def _call(self, send: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        futures = []
        while time.monotonic() < deadline:
            futures.append(send())
            answered = wait_until(lambda: [f for f in futures if f.done()],
                                  min(self._retry_after, deadline - time.monotonic()))
            if answered:
                return answered[0].result()
        raise AssertionError(f'no answer from the parameter services within {timeout:.0f} s '
                             f'({len(futures)} requests sent)')

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the node's parameter services are seen and have answered one request."""
        started = time.monotonic()
        if not self._client.wait_for_services(timeout_sec=timeout):
            return False
        remaining = max(timeout - (time.monotonic() - started), self._retry_after)
        self._call(lambda: self._client.list_parameters([], 1), remaining)
        return True

    def set_values(self, timeout: float = 60.0, **values) -> list:
        """Set ``values`` (name=value) and return the node's SetParametersResult list."""
        from rclpy.parameter import Parameter
        request = [Parameter(name, value=value) for name, value in values.items()]
        return self._call(lambda: self._client.set_parameters(request), timeout).results

    def get_values(self, *names: str, timeout: float = 30.0) -> list:
        """Return the values of the parameters ``names`` as Python values."""
        from rclpy.parameter import parameter_value_to_python
        response = self._call(lambda: self._client.get_parameters(list(names)), timeout)
        return [parameter_value_to_python(value) for value in response.values]
