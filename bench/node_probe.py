"""
End-to-end run of the segmentation node over real topics, measured from outside.

``camera_source`` (30 Hz, 1280x720 by default) publishes ``/camera/image_raw``; the
``segmentation_node`` process subscribes to it and publishes ``~/class_map``, ``~/color_mask``
and ``~/overlay``; this process subscribes to the three outputs and ``/diagnostics``.

Measured over a window that starts after a warm-up:

* output rate: frames whose three outputs all arrived, per second;
* latency: for each such frame, the arrival time of its last output minus its ``header.stamp``
  (the camera's capture time; both clocks are this machine's system clock);
* CPU: the node's (and camera's) user + system time over the window, from ``/proc/<pid>/stat``,
  in percent of one core, plus the whole machine's busy share from ``/proc/stat`` (other users
  of this machine show up there);
* peak RSS: ``VmHWM`` of ``/proc/<pid>/status`` just before the node is stopped;
* the node's own ``/diagnostics`` values at the end of the window.

The image subscriptions take the serialized message (``raw=True``) and read only the header
and size from the CDR bytes, so this process spends next to no CPU on the 2.7 MB images that
the node must still serialize and send.
"""

import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

from seg_ros.dds import loopback_environment, loopback_variables

BIN_DIR = os.path.dirname(sys.executable)
OUTPUTS = ('class_map', 'color_mask', 'overlay')
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
NODE_NAME = 'segmentation'
CAMERA_NAMESPACE = '/camera'


def cdr_header(data: bytes) -> tuple[int, int, int]:
    """
    Read ``header.stamp`` and the image size from a serialized ``sensor_msgs/Image``.

    :param data: the CDR bytes (4-byte encapsulation header, then the message).
    :return: (stamp in ns, height, width).
    """
    little = data[1] in (0x01, 0x03)
    order = '<' if little else '>'
    sec, nanosec, id_length = struct.unpack_from(order + 'iII', data, 4)
    # frame_id chars (with their NUL) follow, then height and width aligned to 4 in the body.
    offset = 16 + id_length
    offset += (-(offset - 4)) % 4
    height, width = struct.unpack_from(order + 'II', data, offset)
    return sec * 1_000_000_000 + nanosec, height, width


def process_tree(pid: int) -> list[int]:
    """
    Return ``pid`` and its descendants (a venv launcher may leave a child doing the work).

    :param pid: the root process.
    :return: the process ids.
    """
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as stat_file:
                    fields = stat_file.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(parents.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """
    Return the user + system CPU seconds used so far by the processes.

    :param pids: process ids; vanished ones count as zero.
    :return: seconds.
    """
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as stat_file:
                fields = stat_file.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> tuple[float, float]:
    """
    Return (busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``.

    :return: busy and total seconds summed over cores.
    """
    with open('/proc/stat') as stat_file:
        values = [int(value) for value in stat_file.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS, sum(values[:8]) / CLOCK_TICKS


def status_mib(pids: list[int], field: str) -> list[float]:
    """
    Return a memory field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``...) for each process.

    :param pids: process ids; vanished ones are left out.
    :param field: the field name, without the colon.
    :return: MiB, one value per process that could be read.
    """
    values = []
    for pid in pids:
        try:
            with open(f'/proc/{pid}/status') as status_file:
                for line in status_file:
                    if line.startswith(field + ':'):
                        values.append(int(line.split()[1]) / 1024.0)
        except OSError:
            continue
    return values


def peak_rss_mib(pids: list[int]) -> float:
    """
    Return the largest ``VmHWM`` (peak resident set) of the processes, in MiB.

    :param pids: process ids.
    :return: MiB, NaN when none could be read.
    """
    peaks = status_mib(pids, 'VmHWM')
    return max(peaks) if peaks else float('nan')


def percentile(values: list[float], fraction: float) -> float:
    """
    Return the nearest-rank percentile of ``values``.

    :param values: samples.
    :param fraction: 0-1.
    :return: the percentile, NaN without samples.
    """
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def spin_in_background(node, context):
    """
    Spin ``node`` in a daemon thread until ``context`` is shut down.

    :return: (the SingleThreadedExecutor, the thread).
    """
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin() -> None:
        while context.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception:  # the context was shut down under us
                return

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return executor, thread


class Executable:
    """One of the package's executables in its own process group, its output in a temp file."""

    def __init__(self, name: str, ros_args: list[str], environment: dict[str, str]) -> None:
        self.name = name
        self._log = tempfile.NamedTemporaryFile('w+', prefix=f'bench-{name}-', suffix='.log')
        self.process = subprocess.Popen(
            [os.path.join(BIN_DIR, name), '--ros-args', *ros_args], env=environment,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        """Return what the process printed so far."""
        self._log.flush()
        with open(self._log.name, errors='replace') as log:
            return log.read()

    def stop(self) -> None:
        """Interrupt the process (SIGINT, as Ctrl-C), then kill it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5.0)
        self._log.close()


class OutputRecorder:
    """In-process subscriber of the node's outputs and /diagnostics."""

    def __init__(self, domain_id: int) -> None:
        os.environ.update(loopback_variables(domain_id))
        import rclpy
        from rclpy.context import Context
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = rclpy.create_node('segmentation_bench', context=self._context)
        self._lock = threading.Lock()
        self.arrivals: dict[str, list[tuple[int, int, int, int]]] = {name: [] for name in OUTPUTS}
        self.diagnostics: list[tuple[int, dict[str, str]]] = []
        self.camera_frames = 0  # counted once subscribe_camera() is called
        # The outputs are reliable keep-last-1; a reliable subscriber is what a viewer uses.
        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                reliability=ReliabilityPolicy.RELIABLE)
        for name in OUTPUTS:
            self.node.create_subscription(
                Image, f'/{NODE_NAME}/{name}', self._image_callback(name), output_qos, raw=True)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics_callback, 10)
        self._executor, self._thread = spin_in_background(self.node, self._context)

    def _image_callback(self, name: str):
        def record(data: bytes) -> None:
            now = time.time_ns()
            stamp, height, width = cdr_header(data)
            with self._lock:
                self.arrivals[name].append((now, stamp, height, width))
        return record

    def diagnostics_callback(self, msg) -> None:
        """Keep the node's status values with their arrival time."""
        for status in msg.status:
            if status.name.endswith(f'{NODE_NAME}: segmentation'):
                values = {pair.key: pair.value for pair in status.values}
                with self._lock:
                    self.diagnostics.append((time.time_ns(), values))

    def subscribe_camera(self) -> None:
        """Take the camera's images as the node did (best effort, depth 1), counting them only."""
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        def count(_: bytes) -> None:
            with self._lock:
                self.camera_frames += 1
        self.node.create_subscription(Image, f'{CAMERA_NAMESPACE}/image_raw', count,
                                      qos_profile_sensor_data, raw=True)

    def publisher_count(self) -> int:
        """Return how many of the node's image outputs have a publisher."""
        return sum(1 for name in OUTPUTS
                   if self.node.count_publishers(f'/{NODE_NAME}/{name}') > 0)

    def snapshot(self) -> tuple[dict, list]:
        """Return copies of the arrivals and diagnostics."""
        with self._lock:
            return ({name: list(values) for name, values in self.arrivals.items()},
                    list(self.diagnostics))

    def close(self) -> None:
        """Shut the context down and stop spinning."""
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self._context.try_shutdown()
        self._thread.join(timeout=2.0)


def summarize(arrivals: dict, window: tuple[int, int]) -> dict:
    """
    Turn raw arrivals into rate and latency figures for the frames completed inside the window.

    A frame counts when the last of its outputs arrived inside the window (arrival time, not
    stamp time: under load a frame can take longer than any fixed grace period).

    :param arrivals: output name to (arrival ns, stamp ns, height, width) tuples.
    :param window: (start ns, end ns) of the measured window.
    :return: the figures.
    """
    start, end = window
    seconds = (end - start) / 1e9
    per_frame: dict[int, dict[str, int]] = {}
    sizes = set()
    for name, records in arrivals.items():
        for arrival, stamp, height, width in records:
            per_frame.setdefault(stamp, {})[name] = arrival
            sizes.add((name, width, height))
    complete = {stamp: times for stamp, times in per_frame.items()
                if len(times) == len(OUTPUTS) and start <= max(times.values()) < end}
    latencies = [(max(times.values()) - stamp) / 1e6 for stamp, times in complete.items()]
    first_output = [(min(times.values()) - stamp) / 1e6 for stamp, times in complete.items()]
    return {
        'window_s': seconds,
        'frames_complete': len(complete),
        'output_fps': len(complete) / seconds if seconds > 0 else float('nan'),
        'latency_p50_ms': percentile(latencies, 0.50),
        'latency_p99_ms': percentile(latencies, 0.99),
        'latency_max_ms': max(latencies) if latencies else float('nan'),
        'first_output_latency_p50_ms': percentile(first_output, 0.50),
        'messages': {name: sum(1 for arrival, _, _, _ in records if start <= arrival < end)
                     for name, records in arrivals.items()},
        'output_sizes': sorted(f'{name} {width}x{height}' for name, width, height in sizes),
    }


def run_node(config: dict, camera: dict, domain_id: int, warmup_s: float,
             measure_s: float, log=print, beside_camera=None) -> dict:
    """
    Run camera_source -> segmentation_node -> this process for one configuration.

    :param config: segmentation_node parameters (model_path, backend, input_width, ...).
    :param camera: camera_source parameters (source, width, height, rate, loop).
    :param domain_id: ROS_DOMAIN_ID of this run.
    :param warmup_s: seconds of output discarded after the first output arrives.
    :param measure_s: seconds measured.
    :param log: progress printer.
    :param beside_camera: called with the result once the node is stopped, while the camera
        still publishes to a subscriber here (the same load on the machine, without the node);
        its return value is kept as ``beside_camera``, with the camera's CPU meanwhile.
    :return: figures of :func:`summarize` plus CPU, RSS and diagnostics; 'error' on failure.
    """
    environment = loopback_environment(domain_id)
    recorder = OutputRecorder(domain_id)
    node_args = ['-r', f'__node:={NODE_NAME}', '-r', f'image:={CAMERA_NAMESPACE}/image_raw',
                 '-r', f'camera_info:={CAMERA_NAMESPACE}/camera_info']
    node_args += [argument for name, value in config.items()
                  for argument in ('-p', f'{name}:={value}')]
    camera_args = ['-r', f'__ns:={CAMERA_NAMESPACE}']
    camera_args += [argument for name, value in camera.items()
                    for argument in ('-p', f'{name}:={value}')]
    node = Executable('segmentation_node', node_args, environment)
    source = None
    try:
        deadline = time.monotonic() + 90.0
        while recorder.publisher_count() < len(OUTPUTS):
            if node.process.poll() is not None or time.monotonic() > deadline:
                return {'error': 'segmentation_node did not start:\n' + node.output()[-2000:]}
            time.sleep(0.1)
        source = Executable('camera_source', camera_args, environment)
        deadline = time.monotonic() + 60.0
        while not any(recorder.snapshot()[0].values()):
            if source.process.poll() is not None or node.process.poll() is not None \
                    or time.monotonic() > deadline:
                return {'error': 'no output arrived:\n' + source.output()[-1000:] +
                        node.output()[-2000:]}
            time.sleep(0.1)
        time.sleep(warmup_s)
        node_pids = process_tree(node.process.pid)
        camera_pids = process_tree(source.process.pid)
        start_ns = time.time_ns()
        cpu_start = (cpu_seconds(node_pids), cpu_seconds(camera_pids),
                     cpu_seconds([os.getpid()]), machine_busy_seconds(), time.monotonic())
        time.sleep(measure_s)
        cpu_end = (cpu_seconds(node_pids), cpu_seconds(camera_pids),
                   cpu_seconds([os.getpid()]), machine_busy_seconds(), time.monotonic())
        end_ns = time.time_ns()
        rss = peak_rss_mib(node_pids)
        arrivals, diagnostics = recorder.snapshot()
        wall = cpu_end[4] - cpu_start[4]
        busy = cpu_end[3][0] - cpu_start[3][0]
        total = cpu_end[3][1] - cpu_start[3][1]
        result = summarize(arrivals, (start_ns, end_ns))
        in_window = [values for arrival, values in diagnostics if start_ns <= arrival <= end_ns]
        result.update({
            'node_cpu_percent': 100.0 * (cpu_end[0] - cpu_start[0]) / wall,
            'camera_cpu_percent': 100.0 * (cpu_end[1] - cpu_start[1]) / wall,
            'bench_cpu_percent': 100.0 * (cpu_end[2] - cpu_start[2]) / wall,
            'machine_busy_percent': 100.0 * busy / total if total else float('nan'),
            'cores': os.cpu_count(),
            'node_peak_rss_mib': rss,
            'diagnostics': in_window[-1] if in_window else {},
        })
        log(f'    {result["output_fps"]:.2f} fps, latency p50 {result["latency_p50_ms"]:.0f} ms '
            f'p99 {result["latency_p99_ms"]:.0f} ms, node CPU {result["node_cpu_percent"]:.0f}%')
        if beside_camera is not None:
            node.stop()
            recorder.subscribe_camera()
            time.sleep(1.0)
            start = (cpu_seconds(camera_pids), recorder.camera_frames, time.monotonic())
            value = beside_camera(result)
            end = (cpu_seconds(camera_pids), recorder.camera_frames, time.monotonic())
            wall = end[2] - start[2]
            result['beside_camera'] = {
                'value': value, 'camera_cpu_percent': 100.0 * (end[0] - start[0]) / wall,
                'camera_fps_received': (end[1] - start[1]) / wall}
        return result
    finally:
        for process in (source, node):
            if process is not None:
                process.stop()
        recorder.close()
