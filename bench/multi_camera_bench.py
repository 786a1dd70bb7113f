"""
Several cameras: one process with one network against one node process per camera.

Three ``camera_source`` processes (30 Hz or ``--rate``, 1280x720 synthetic street scenes, one
per namespace) publish ``/<camera>/image_raw``: each replays ``--camera-loop`` (30) frames it
rendered once, so it costs what a camera driver does (a copy and a publish); ``--camera-loop
0`` renders every frame (about 0.74 of a core a camera at 30 Hz). Side by side in one run, in
alternating order:

* ``three nodes``: one ``segmentation_node`` process per camera (what ``multi_camera.launch.py``
  starts by default);
* ``one process``: ``multi_camera_segmentation`` with ``cameras:=[...]`` (``one_process:=true``),
  with each ``--workers`` count asked for (default: the node's default, 2): ``--workers 1,2``
  measures both, side by side.

Measured over the same window after a warm-up: frames whose class map, colour mask and overlay
all arrived, per camera and in total per second; the peak resident memory (``VmHWM``) summed
over the segmentation processes; their CPU. The cameras run in both cases, so their load is the
same.

Usage::

    .venv/bin/python bench/multi_camera_bench.py [--cameras 3] [--seconds 20] [--rounds 2]
        [--model M --width W --height H] [--backend B] [--rate HZ] [--workers 1,2]
        [--camera-loop 30]

Prints a Markdown table; ROS_DOMAIN_ID ``--domain`` (71).
"""

import argparse
import os
import statistics
import sys
import threading
import time

import node_probe

from seg_ros.dds import loopback_environment, loopback_variables

OUTPUTS = node_probe.OUTPUTS
FRAME_SIZE = (1280, 720)
CAMERA_RATE = 30.0
# Case name -> the one process's workers parameter (filled from --workers).
WORKERS: dict[str, int] = {}


class Recorder:
    """Raw subscriptions to every camera's outputs: (camera, stamp) -> outputs arrived."""

    def __init__(self, domain_id: int, cameras: list[str]) -> None:
        os.environ.update(loopback_variables(domain_id))
        import rclpy
        from rclpy.context import Context
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = rclpy.create_node('multi_camera_bench', context=self._context)
        self._lock = threading.Lock()
        self.cameras = cameras
        self.arrivals: dict[tuple[str, int], dict[str, int]] = {}
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE)
        for camera in cameras:
            for name in OUTPUTS:
                self.node.create_subscription(Image, f'/{camera}/segmentation/{name}',
                                              self._callback(camera, name), qos, raw=True)
        self._executor, self._thread = node_probe.spin_in_background(self.node, self._context)

    def _callback(self, camera: str, name: str):
        def record(data: bytes) -> None:
            now = time.time_ns()
            stamp = node_probe.cdr_header(data)[0]
            with self._lock:
                self.arrivals.setdefault((camera, stamp), {})[name] = now
        return record

    def publishers_ready(self) -> bool:
        """Return whether every camera's outputs have a publisher."""
        return all(self.node.count_publishers(f'/{camera}/segmentation/{name}') > 0
                   for camera in self.cameras for name in OUTPUTS)

    def complete(self, start: int, end: int) -> dict[str, int]:
        """Return, per camera, the frames whose every output arrived inside [start, end)."""
        with self._lock:
            items = list(self.arrivals.items())
        counts = dict.fromkeys(self.cameras, 0)
        for (camera, _), times in items:
            if len(times) == len(OUTPUTS) and start <= max(times.values()) < end:
                counts[camera] += 1
        return counts

    def reset(self) -> None:
        """Forget what arrived."""
        with self._lock:
            self.arrivals.clear()

    def close(self) -> None:
        """Shut the context down."""
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self._context.try_shutdown()
        self._thread.join(timeout=2.0)


def node_parameters(arguments: argparse.Namespace) -> list[str]:
    values = {'backend': arguments.backend}
    if arguments.model:
        values.update(model_path=arguments.model, input_width=arguments.width,
                      input_height=arguments.height)
    return [item for name, value in values.items() for item in ('-p', f'{name}:={value}')]


def start_segmentation(kind: str, cameras: list[str], arguments, environment) -> list:
    parameters = node_parameters(arguments)
    if kind.startswith('one process'):
        listed = '[' + ', '.join(cameras) + ']'
        workers = WORKERS.get(kind)
        if workers:
            parameters += ['-p', f'workers:={workers}']
        return [node_probe.Executable('multi_camera_segmentation',
                                      ['-p', f'cameras:={listed}', *parameters], environment)]
    return [node_probe.Executable(
        'segmentation_node', ['-r', f'__ns:=/{camera}', '-r', f'image:=/{camera}/image_raw',
                              '-r', f'camera_info:=/{camera}/camera_info', *parameters],
        environment) for camera in cameras]


def measure(kind: str, cameras: list[str], arguments, recorder: Recorder,
            environment) -> dict:
    processes = start_segmentation(kind, cameras, arguments, environment)
    try:
        deadline = time.monotonic() + 180.0
        while not recorder.publishers_ready():
            if any(process.process.poll() is not None for process in processes) or \
                    time.monotonic() > deadline:
                return {'error': ''.join(process.output()[-1500:] for process in processes)}
            time.sleep(0.2)
        recorder.reset()
        time.sleep(arguments.warmup)
        pids = [pid for process in processes
                for pid in node_probe.process_tree(process.process.pid)]
        cpu_start, start_ns, wall_start = node_probe.cpu_seconds(pids), time.time_ns(), \
            time.monotonic()
        time.sleep(arguments.seconds)
        end_ns, wall = time.time_ns(), time.monotonic() - wall_start
        cpu = node_probe.cpu_seconds(pids) - cpu_start
        counts = recorder.complete(start_ns, end_ns)
        memory = sum(node_probe.status_mib(pids, 'VmHWM'))
        return {'fps': {camera: count / wall for camera, count in counts.items()},
                'total_fps': sum(counts.values()) / wall, 'peak_rss_mib': memory,
                'cpu_percent': 100.0 * cpu / wall}
    finally:
        for process in processes:
            process.stop()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', type=int, default=3)
    parser.add_argument('--rate', type=float, default=CAMERA_RATE, help='camera frames/s')
    parser.add_argument('--seconds', type=float, default=20.0, help='measured window a case')
    parser.add_argument('--warmup', type=float, default=8.0, help='seconds before the window')
    parser.add_argument('--rounds', type=int, default=2, help='each case this many times')
    parser.add_argument('--model', default='', help='model file (default: the embedded ENet)')
    parser.add_argument('--width', type=int, default=0)
    parser.add_argument('--height', type=int, default=0)
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--workers', default='',
                        help='comma-separated worker counts of the one process (default: its own)')
    parser.add_argument('--camera-loop', type=int, default=30,
                        help='frames each camera renders once and replays (0: renders every '
                             'frame, most of a core a camera at 30 Hz 720p)')
    parser.add_argument('--domain', type=int, default=71)
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    cameras = [f'camera{index}' for index in range(arguments.cameras)]
    environment = loopback_environment(arguments.domain)
    recorder = Recorder(arguments.domain, cameras)
    sources = [node_probe.Executable('camera_source', [
        '-r', f'__ns:=/{camera}', '-p', f'width:={FRAME_SIZE[0]}',
        '-p', f'height:={FRAME_SIZE[1]}', '-p', f'rate:={arguments.rate}', '-p', f'seed:={index}',
        '-p', f'synthetic_loop:={arguments.camera_loop}'],
        environment) for index, camera in enumerate(cameras)]
    one_process = ['one process']
    if arguments.workers:
        one_process = []
        for count in (int(value) for value in arguments.workers.split(',')):
            kind = f'one process, {count} worker' + ('s' if count > 1 else '')
            WORKERS[kind] = count
            one_process.append(kind)
    results: dict[str, list[dict]] = {'three nodes': [], **{kind: [] for kind in one_process}}
    try:
        for round_index in range(arguments.rounds):
            order = list(results) if round_index % 2 == 0 else list(results)[::-1]
            for kind in order:
                print(f'round {round_index + 1}: {kind}', file=sys.stderr, flush=True)
                result = measure(kind, cameras, arguments, recorder, environment)
                if 'error' in result:
                    print(f'{kind} failed:\n{result["error"]}', file=sys.stderr)
                    return 1
                print(f'  {result["total_fps"]:.2f} fps in total '
                      f'({", ".join(f"{fps:.2f}" for fps in result["fps"].values())}), '
                      f'{result["peak_rss_mib"]:.0f} MiB, CPU {result["cpu_percent"]:.0f} %',
                      file=sys.stderr, flush=True)
                results[kind].append(result)
    finally:
        for source in sources:
            source.stop()
        recorder.close()
    label = f'{len(cameras)} node processes'
    rows = ['| case | total output fps | slowest camera fps | peak memory MiB | CPU % |',
            '|---|---:|---:|---:|---:|']
    for kind, runs in results.items():
        rows.append(f'| {label if kind == "three nodes" else kind} '
                    f'| {statistics.median(run["total_fps"] for run in runs):.2f} '
                    f'| {statistics.median(min(run["fps"].values()) for run in runs):.2f} '
                    f'| {statistics.median(run["peak_rss_mib"] for run in runs):.0f} '
                    f'| {statistics.median(run["cpu_percent"] for run in runs):.0f} |')
    print(f'{len(cameras)} cameras at {FRAME_SIZE[0]}x{FRAME_SIZE[1]} {arguments.rate:.0f} Hz, '
          f'{arguments.seconds:.0f} s windows, median of {arguments.rounds} rounds; '
          f'{os.cpu_count()} cores\n')
    print('\n'.join(rows))
    many = results['three nodes']
    for kind in one_process:
        one = results[kind]
        fps_ratio = statistics.median(a['total_fps'] / b['total_fps'] for a, b in zip(one, many))
        memory_ratio = statistics.median(a['peak_rss_mib'] / b['peak_rss_mib']
                                         for a, b in zip(one, many))
        print(f'\n{kind} / {label}: total fps x{fps_ratio:.2f} (goal >= 1.2), peak memory '
              f'x{memory_ratio:.2f} (goal <= 0.5), ratios of the rounds measured side by side')
    return 0


if __name__ == '__main__':
    sys.exit(main())
