"""
Soak: the node beside a 30 Hz 720p camera with depth and the 3-D outputs, for many minutes.

``camera_source`` publishes 1280x720 synthetic street scenes at 30 Hz on ``/camera/image_raw``
(``camera_info`` beside it, frame ``camera_optical_frame``); this process answers each
camera_info with a registered 16UC1 depth image of the same header (flat ground 1 m below the
camera, a box 4 m ahead, 2 % of the pixels invalid) on ``/camera/depth/image_raw`` and
broadcasts the camera pose ``base_link -> camera_optical_frame`` at the same stamp (dynamic tf,
as a robot's state publisher does). ``segmentation_node`` runs the embedded ENet with
``depth_topic``, ``obstacle_classes`` and ``freespace_classes``; this process subscribes to all
six outputs (``class_map``, ``color_mask``, ``overlay``, ``points``, ``obstacle_points``,
``freespace``) and samples the node's resident memory (``VmRSS``) twice a second.

Time 0 is the first frame whose three image outputs arrived. It prints, a row a minute: frames
whose image outputs arrived, frames whose six outputs all arrived, their latency p50 / p99 (last
output's arrival minus the frame's stamp), the longest gap between two messages of one output
(an output that never comes has the whole minute), RSS median and peak; then the RSS slope from
minute 1 to the end (least squares, MiB/h), the RSS growth from minute 1 (median of the samples
50-70 s) to the end (median of the last 20 s), the longest output gap of the whole run, and the
goals:

* RSS growth <= 5 MiB from minute 1 to the end;
* no output gap over 1 s;
* latency p99 of the last minute <= 1.2x that of the second minute.

Exit status 0 when every goal is met, 1 when one is missed, 2 when the run could not be made.

Usage::

    .venv/bin/python bench/soak.py [--minutes 30] [--domain 78] [--json out.json]

Figures, before and after the node's split into modules: docs/reliability.md.
"""

import argparse
import json
import os
import sys
import threading
import time

from node_probe import cdr_header, Executable, percentile, process_tree, spin_in_background, \
    status_mib
import numpy as np

from seg_ros.dds import loopback_environment, loopback_variables

IMAGE_OUTPUTS = ('class_map', 'color_mask', 'overlay')
OUTPUTS = IMAGE_OUTPUTS + ('points', 'obstacle_points', 'freespace')
NODE = '/segmentation'
CAMERA = '/camera'
OPTICAL_FRAME = 'camera_optical_frame'
WIDTH, HEIGHT, RATE = 1280, 720, 30.0
# base_link -> optical frame: 1 m up, looking along base_link's x (x, y, z, w).
CAMERA_TRANSLATION = (0.2, 0.0, 1.0)
CAMERA_QUATERNION = (-0.5, 0.5, -0.5, 0.5)
# The network size is given (the embedded ENet's default, 512x256) so that a run of older code,
# whose default was 1024x512, does the same work.
NODE_PARAMETERS = {
    'input_width': 512, 'input_height': 256,
    'depth_topic': f'{CAMERA}/depth/image_raw', 'obstacle_classes': '[Car, Person]',
    'freespace_classes': '[Road, Sidewalk]', 'grid_frame': 'base_link', 'tf_timeout': 0.1}
RSS_GROWTH_GOAL_MIB, GAP_GOAL_S, P99_RATIO_GOAL = 5.0, 1.0, 1.2
SAMPLE_PERIOD_S = 0.5


def depth_image_16uc1(k: list[float], width: int, height: int) -> np.ndarray:
    """
    Return registered depth in millimetres (0 unseen) for a camera 1 m above flat ground.

    :param k: the colour camera's 3x3 intrinsics, row-major.
    """
    fy, cx, cy = k[4], k[2], k[5]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    ray_y = (v - cy) / fy
    with np.errstate(divide='ignore'):
        depth = np.where(ray_y > 0, 1.0 / ray_y, np.inf)
    box = (np.abs(u - cx) < width / 6) & (ray_y * 4.0 > 0.2) & (ray_y * 4.0 < 1.0)
    depth[box & (depth > 4.0)] = 4.0
    depth[np.random.default_rng(1).random(depth.shape) < 0.02] = np.inf
    return np.where(np.isfinite(depth), np.minimum(depth * 1000, 65535), 0).astype(np.uint16)


class SoakRecorder:
    """This process's node: depth and tf for each camera frame, the outputs' arrivals."""

    def __init__(self, domain_id: int) -> None:
        os.environ.update(loopback_variables(domain_id))
        import rclpy
        from rclpy.context import Context
        from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_ros import TransformBroadcaster

        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = rclpy.create_node('soak_bench', context=self._context)
        self._lock = threading.Lock()
        self.arrivals: dict[str, list[tuple[int, int]]] = {name: [] for name in OUTPUTS}
        self._depth_msg = None
        self._depth_publisher = self.node.create_publisher(
            Image, NODE_PARAMETERS['depth_topic'], qos_profile_sensor_data)
        self._broadcaster = TransformBroadcaster(self.node)
        self.node.create_subscription(CameraInfo, f'{CAMERA}/camera_info', self.info_callback,
                                      qos_profile_sensor_data)
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        from nav_msgs.msg import OccupancyGrid
        from sensor_msgs.msg import PointCloud2
        types = {'points': PointCloud2, 'obstacle_points': PointCloud2,
                 'freespace': OccupancyGrid}
        for name in OUTPUTS:
            self.node.create_subscription(types.get(name, Image), f'{NODE}/{name}',
                                          self._arrival_callback(name), reliable, raw=True)
        from diagnostic_msgs.msg import DiagnosticArray
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics_callback,
                                      10)
        self._executor, self._thread = spin_in_background(self.node, self._context)

    def diagnostics_callback(self, msg) -> None:
        """Keep the node's newest status values."""
        for status in msg.status:
            if status.name.endswith(f'{NODE}: segmentation'):
                with self._lock:
                    self.diagnostics = {pair.key: pair.value for pair in status.values}

    def info_callback(self, info) -> None:
        """Publish the depth image and the camera pose of the frame ``info`` describes."""
        from geometry_msgs.msg import TransformStamped
        from sensor_msgs.msg import Image

        if self._depth_msg is None:
            depth = depth_image_16uc1(list(info.k), info.width, info.height)
            self._depth_msg = Image(height=info.height, width=info.width, encoding='16UC1',
                                    is_bigendian=0, step=info.width * 2, data=depth.tobytes())
        transform = TransformStamped()
        transform.header.stamp = info.header.stamp
        transform.header.frame_id, transform.child_frame_id = 'base_link', OPTICAL_FRAME
        translation, rotation = transform.transform.translation, transform.transform.rotation
        translation.x, translation.y, translation.z = CAMERA_TRANSLATION
        rotation.x, rotation.y, rotation.z, rotation.w = CAMERA_QUATERNION
        self._broadcaster.sendTransform(transform)
        self._depth_msg.header = info.header
        self._depth_publisher.publish(self._depth_msg)

    def _arrival_callback(self, name: str):
        def record(data: bytes) -> None:
            now = time.time_ns()
            stamp = cdr_header(data)[0]  # every output starts with the frame's header
            with self._lock:
                self.arrivals[name].append((now, stamp))
        return record

    def publisher_count(self) -> int:
        """Return how many of the node's outputs have a publisher."""
        return sum(1 for name in OUTPUTS if self.node.count_publishers(f'{NODE}/{name}') > 0)

    def snapshot(self) -> dict[str, list[tuple[int, int]]]:
        """Return a copy of the arrivals."""
        with self._lock:
            return {name: list(values) for name, values in self.arrivals.items()}

    def close(self) -> None:
        """Shut the context down and stop spinning."""
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self._context.try_shutdown()
        self._thread.join(timeout=2.0)


def node_rss_mib(pids: list[int]) -> float:
    """Return the largest VmRSS of the node's processes (the Python one), NaN if gone."""
    values = status_mib(pids, 'VmRSS')
    return max(values) if values else float('nan')


def slope_mib_per_hour(samples: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of (seconds, MiB) samples in MiB/h."""
    if len(samples) < 2:
        return float('nan')
    seconds, mib = np.array(samples, np.float64).T
    return float(np.polyfit(seconds, mib, 1)[0] * 3600.0)


def median_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Return the median MiB of the samples taken in [start, end) seconds."""
    values = [mib for seconds, mib in samples if start <= seconds < end]
    return float(np.median(values)) if values else float('nan')


def frames_of(arrivals: dict[str, list[tuple[int, int]]],
              names: tuple[str, ...] = OUTPUTS) -> dict[int, int]:
    """Return, for each frame stamp whose outputs ``names`` all arrived, the last arrival."""
    per_frame: dict[int, dict[str, int]] = {}
    for name in names:
        for arrival, stamp in arrivals[name]:
            per_frame.setdefault(stamp, {}).setdefault(name, arrival)
    return {stamp: max(times.values()) for stamp, times in per_frame.items()
            if len(times) == len(names)}


def longest_gap(arrivals: dict[str, list[tuple[int, int]]], start_ns: int,
                end_ns: int) -> tuple[float, str]:
    """Return the longest time (s) between two arrivals of one output within the window."""
    gap, topic = 0.0, ''
    for name, records in arrivals.items():
        times = [start_ns] + sorted(arrival for arrival, _ in records
                                    if start_ns <= arrival < end_ns) + [end_ns]
        longest = max(np.diff(times)) / 1e9
        if longest > gap:
            gap, topic = longest, name
    return gap, topic


def minute_rows(arrivals: dict, rss: list[tuple[float, float]], start_ns: int,
                minutes: int) -> list[dict]:
    """Return the figures of each minute since ``start_ns``."""
    frames = frames_of(arrivals)
    image_frames = frames_of(arrivals, IMAGE_OUTPUTS)
    rows = []
    for minute in range(minutes):
        low, high = start_ns + minute * 60_000_000_000, start_ns + (minute + 1) * 60_000_000_000
        latencies = [(arrival - stamp) / 1e6 for stamp, arrival in frames.items()
                     if low <= arrival < high]
        gap, topic = longest_gap(arrivals, low, high)
        in_minute = [mib for seconds, mib in rss if minute * 60 <= seconds < (minute + 1) * 60]
        rows.append({
            'minute': minute + 1, 'frames': len(latencies),
            'image_frames': sum(1 for arrival in image_frames.values() if low <= arrival < high),
            'latency_p50_ms': percentile(latencies, 0.50),
            'latency_p99_ms': percentile(latencies, 0.99),
            'longest_gap_s': gap, 'gap_output': topic,
            'rss_median_mib': float(np.median(in_minute)) if in_minute else float('nan'),
            'rss_peak_mib': max(in_minute) if in_minute else float('nan')})
    return rows


def run(minutes: int, domain_id: int, log) -> dict:
    """Run camera, node and recorder for ``minutes`` after the first output; return figures."""
    environment = loopback_environment(domain_id)
    recorder = SoakRecorder(domain_id)
    node_args = ['-r', f'__node:={NODE[1:]}', '-r', f'image:={CAMERA}/image_raw',
                 '-r', f'camera_info:={CAMERA}/camera_info']
    node_args += [argument for name, value in NODE_PARAMETERS.items()
                  for argument in ('-p', f'{name}:={value}')]
    camera_args = ['-r', f'__ns:={CAMERA}', '-p', f'width:={WIDTH}', '-p', f'height:={HEIGHT}',
                   '-p', f'rate:={RATE}', '-p', 'synthetic_loop:=30',
                   '-p', f'frame_id:={OPTICAL_FRAME}']
    node = Executable('segmentation_node', node_args, environment)
    camera = None
    try:
        deadline = time.monotonic() + 120.0
        while recorder.publisher_count() < len(OUTPUTS):
            if node.process.poll() is not None or time.monotonic() > deadline:
                return {'error': 'segmentation_node did not start:\n' + node.output()[-2000:]}
            time.sleep(0.2)
        camera = Executable('camera_source', camera_args, environment)
        deadline = time.monotonic() + 120.0
        # Time 0: the first frame with its image outputs (the 3-D ones may never come: a node
        # that loses the depth pairing is soaked too, and its gaps say so).
        while not frames_of(recorder.snapshot(), IMAGE_OUTPUTS):
            if camera.process.poll() is not None or node.process.poll() is not None \
                    or time.monotonic() > deadline:
                return {'error': 'no frame got its image outputs; the node says ' +
                        json.dumps(recorder.diagnostics, indent=1) + '\n' +
                        camera.output()[-1000:] + node.output()[-3000:]}
            time.sleep(0.1)
        start_ns, started = time.time_ns(), time.monotonic()
        log(f'first frame out; soaking for {minutes} min')
        pids = process_tree(node.process.pid)
        rss: list[tuple[float, float]] = []
        end = started + minutes * 60.0
        next_report = started + 60.0
        while time.monotonic() < end:
            if node.process.poll() is not None:
                return {'error': 'segmentation_node died:\n' + node.output()[-3000:]}
            rss.append((time.monotonic() - started, node_rss_mib(pids)))
            if time.monotonic() >= next_report:
                log(f'  {(next_report - started) / 60:.0f} min, RSS {rss[-1][1]:.1f} MiB')
                next_report += 60.0
            time.sleep(SAMPLE_PERIOD_S)
        end_ns = start_ns + minutes * 60_000_000_000
        arrivals = recorder.snapshot()
        rows = minute_rows(arrivals, rss, start_ns, minutes)
        gap, topic = longest_gap(arrivals, start_ns, end_ns)
        total = minutes * 60.0
        return {
            'minutes': rows, 'longest_gap_s': gap, 'gap_output': topic,
            'rss_slope_mib_per_h': slope_mib_per_hour([s for s in rss if s[0] >= 60.0]),
            'rss_minute_1_mib': median_between(rss, 50.0, 70.0),
            'rss_end_mib': median_between(rss, total - 20.0, total + 1.0),
            'messages': {name: len(records) for name, records in arrivals.items()},
            'diagnostics': dict(recorder.diagnostics),
            'node_alive': node.process.poll() is None}
    finally:
        for process in (camera, node):
            if process is not None:
                process.stop()
        recorder.close()


def goals(result: dict) -> list[tuple[str, bool]]:
    """Return each goal's line and whether it is met."""
    rows = result['minutes']
    growth = result['rss_end_mib'] - result['rss_minute_1_mib']
    checks = [(f'RSS growth from minute 1 to the end {growth:+.1f} MiB <= '
               f'{RSS_GROWTH_GOAL_MIB:g} MiB', growth <= RSS_GROWTH_GOAL_MIB),
              (f'longest output gap {result["longest_gap_s"]:.2f} s ({result["gap_output"]}) '
               f'<= {GAP_GOAL_S:g} s', result['longest_gap_s'] <= GAP_GOAL_S)]
    if len(rows) >= 3:
        second, last = rows[1]['latency_p99_ms'], rows[-1]['latency_p99_ms']
        checks.append((f'latency p99 last minute {last:.0f} ms <= {P99_RATIO_GOAL:g} x second '
                       f'minute {second:.0f} ms ({last / second:.2f}x)',
                       last <= P99_RATIO_GOAL * second))
    else:
        checks.append(('latency p99 last minute against the second: needs --minutes 3 or more',
                       False))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=int, default=30, help='soak length after the first '
                        'output (default %(default)s; at least 3 for every goal)')
    parser.add_argument('--domain', type=int, default=78, help='ROS_DOMAIN_ID (default '
                        '%(default)s)')
    parser.add_argument('--json', default='', help='also write the figures to this file')
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error('--minutes must be at least 1')

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)
    result = run(args.minutes, args.domain, log)
    if 'error' in result:
        print(f'soak: {result["error"]}', file=sys.stderr)
        return 2
    print('| minute | frames with the image outputs | with all 6 outputs | latency p50 ms | '
          'latency p99 ms | longest gap s (output) | RSS median MiB | RSS peak MiB |\n'
          '|---:|---:|---:|---:|---:|---|---:|---:|')
    for row in result['minutes']:
        print(f'| {row["minute"]} | {row["image_frames"]} | {row["frames"]} | '
              f'{row["latency_p50_ms"]:.0f} | '
              f'{row["latency_p99_ms"]:.0f} | {row["longest_gap_s"]:.2f} ({row["gap_output"]}) '
              f'| {row["rss_median_mib"]:.1f} | {row["rss_peak_mib"]:.1f} |')
    print(f'\nRSS slope from minute 1 to the end: {result["rss_slope_mib_per_h"]:+.1f} MiB/h; '
          f'RSS {result["rss_minute_1_mib"]:.1f} MiB at minute 1, {result["rss_end_mib"]:.1f} '
          f'MiB at the end; messages {result["messages"]}')
    met = True
    for line, ok in goals(result):
        print(f'goal {"met" if ok else "MISSED"}: {line}')
        met = met and ok
    if args.json:
        with open(args.json, 'w') as output:
            json.dump(result, output, indent=1)
    return 0 if met else 1


if __name__ == '__main__':
    sys.exit(main())
