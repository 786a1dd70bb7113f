"""
``make demo``: segmentation over real ROS 2 topics on this machine, with no download.

Starts ``camera_source`` (animated synthetic street scenes) and ``segmentation_node`` (the embedded
ENet) as separate processes, records the node's outputs for a few seconds, writes an overlay video
and a few overlay PNGs with a legend under ``demo_output/``, prints what happened, and exits.
All DDS traffic stays on 127.0.0.1 (``config/fastdds_loopback.xml``) in a domain of its own.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np

from seg_ros.core.model.labels import Labels
from seg_ros.core.render.legend import with_legend
from seg_ros.core.stats import percentile
from seg_ros.dds import loopback_environment, loopback_variables
from seg_ros.paths import executable_path, share_directory

NODE = '/segmentation'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='seg_ros.demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=8.0, help='how long to record')
    parser.add_argument('--output-dir', default='demo_output')
    parser.add_argument('--width', type=int, default=960, help='camera frame width')
    parser.add_argument('--height', type=int, default=540, help='camera frame height')
    parser.add_argument('--rate', type=float, default=15.0, help='camera frames per second')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('SEG_ROS_DEMO_DOMAIN_ID', '77')))
    return parser.parse_args(argv)


class Recorder:
    """Subscribe to the node's outputs and keep them, keyed by the camera stamp."""

    def __init__(self, node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from seg_ros.ros.qos import latched_qos
        self._lock = threading.Lock()
        self.overlays: dict[int, np.ndarray] = {}
        self.class_maps: dict[int, np.ndarray] = {}
        self.latencies_ms: list[float] = []
        self.labels: Labels | None = None
        self.diagnostics: dict[str, str] = {}
        self._clock = node.get_clock()
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, f'{NODE}/overlay', self.overlay_callback, reliable)
        node.create_subscription(Image, f'{NODE}/class_map', self.class_map_callback, reliable)
        node.create_subscription(String, f'{NODE}/labels', self.labels_callback, latched_qos())
        node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics_callback, 10)

    @staticmethod
    def _key(msg) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def overlay_callback(self, msg) -> None:
        from seg_ros.ros.image_conversion import image_to_array, to_bgr8
        now = self._clock.now().nanoseconds
        frame = to_bgr8(image_to_array(msg), msg.encoding).copy()
        with self._lock:
            self.latencies_ms.append((now - self._key(msg)) / 1e6)
            self.overlays[self._key(msg)] = frame

    def class_map_callback(self, msg) -> None:
        from seg_ros.ros.image_conversion import image_to_array
        with self._lock:
            self.class_maps[self._key(msg)] = image_to_array(msg).copy()

    def labels_callback(self, msg) -> None:
        entries = json.loads(msg.data)
        self.labels = Labels(names=tuple(entry['name'] for entry in entries),
                             colors_rgb=np.array([entry['color'] for entry in entries], np.uint8))

    def diagnostics_callback(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(NODE):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def frames(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return (overlay, class map) pairs that share a stamp, in stamp order."""
        with self._lock:
            stamps = sorted(set(self.overlays) & set(self.class_maps))
            return [(self.overlays[s], self.class_maps[s]) for s in stamps]


def start(executable: str, ros_args: list[str], environment: dict[str, str], log_path: str):
    command = [executable_path(executable), '--ros-args', *ros_args]
    log = open(log_path, 'w')
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def write_outputs(frames, labels: Labels, out_dir: str, fps: float) -> list[str]:
    written = []
    video_path = os.path.join(out_dir, 'overlay.mp4')
    writer = None
    for overlay, class_map in frames:
        framed = with_legend(overlay, labels, class_map)
        if writer is None:
            height, width = framed.shape[:2]
            writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                     (width, height))
        writer.write(framed)
    if writer is not None:
        writer.release()
        written.append(video_path)
    picks = np.linspace(0, len(frames) - 1, num=min(3, len(frames))).astype(int)
    for number, index in enumerate(picks):
        overlay, class_map = frames[index]
        path = os.path.join(out_dir, f'overlay_{number}.png')
        cv2.imwrite(path, with_legend(overlay, labels, class_map))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return 0 when frames went through the whole pipeline."""
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    environment = loopback_environment(args.domain_id)
    os.environ.update(loopback_variables(args.domain_id))
    share = share_directory()
    print(f'seg_ros demo: DDS on 127.0.0.1 only, domain {args.domain_id}, '
          f'profile {os.path.relpath(environment["FASTRTPS_DEFAULT_PROFILES_FILE"])}')
    camera = start('camera_source', [
        '-r', '__ns:=/camera', '-p', 'source:=synthetic', '-p', f'width:={args.width}',
        '-p', f'height:={args.height}', '-p', f'rate:={args.rate}', '-p', 'frame_id:=camera'],
        environment, os.path.join(args.output_dir, 'camera_source.log'))
    segmentation = start('segmentation_node', [
        '--params-file', os.path.join(share, 'config', 'segment.yaml'),
        # The embedded ENet's recommended input size (models/enet-synth/MODEL_CARD.md).
        '-p', 'input_width:=512', '-p', 'input_height:=256',
        '-r', 'image:=/camera/image_raw', '-r', 'camera_info:=/camera/camera_info'],
        environment, os.path.join(args.output_dir, 'segmentation_node.log'))

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    rclpy.init()
    node = rclpy.create_node('seg_ros_demo_recorder')
    recorder = Recorder(node)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    status = 1
    try:
        deadline = time.monotonic() + 90.0
        while not recorder.overlays and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if segmentation.poll() is not None or camera.poll() is not None:
                break
        if not recorder.overlays:
            print('no output from segmentation_node; see the logs in '
                  f'{args.output_dir}/', file=sys.stderr)
            return 1
        print(f'first overlay received; recording {args.seconds:g} s ...')
        started = time.monotonic()
        first_count = len(recorder.overlays)
        while time.monotonic() - started < args.seconds:
            executor.spin_once(timeout_sec=0.1)
        elapsed = time.monotonic() - started
        frames = recorder.frames()
        if recorder.labels is None or not frames:
            print('outputs were incomplete (labels or class maps missing)', file=sys.stderr)
            return 1
        output_fps = (len(recorder.overlays) - first_count) / elapsed
        # The node reports about once a second: stop the camera and wait for a report that
        # counts every overlay received here, so the figures printed below agree.
        stop(camera)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and \
                int(recorder.diagnostics.get('frames processed', 0)) < len(recorder.overlays):
            executor.spin_once(timeout_sec=0.1)
        written = write_outputs(frames, recorder.labels, args.output_dir, max(output_fps, 1.0))
        diagnostics = recorder.diagnostics
        latencies = sorted(recorder.latencies_ms)
        print(f'camera: {args.width}x{args.height} synthetic scenes at {args.rate:g} Hz')
        print(f'frames into segmentation_node: {diagnostics.get("frames received", "?")}, '
              f'processed: {diagnostics.get("frames processed", "?")}, dropped while busy: '
              f'{diagnostics.get("frames dropped (replaced by newer)", "?")}')
        print(f'overlays received here: {len(recorder.overlays)} ({output_fps:.1f} per second)')
        print(f'inference: {diagnostics.get("inference mean (ms)", "?")} ms mean '
              f'({diagnostics.get("input size", "?")} network input)')
        print(f'latency camera stamp -> overlay received: p50 {percentile(latencies, 50):.0f} ms, '
              f'p99 {percentile(latencies, 99):.0f} ms')
        print(f'backend: {diagnostics.get("inference", "?")}')
        print('files:')
        for path in written:
            print(f'  {path}')
        status = 0
    finally:
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
        codes = {'camera_source': stop(camera), 'segmentation_node': stop(segmentation)}
        for name, code in codes.items():
            if code != 0:
                print(f'{name} exited with status {code}; see {args.output_dir}/{name}.log',
                      file=sys.stderr)
                status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
