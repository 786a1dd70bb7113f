"""
Overload: a 60 Hz 1920x1080 camera into a segmentation node that manages a few frames a second.

The node must keep only the newest frame (the rest counted as dropped), so its memory must stay
flat after warm-up and the latency of its outputs must not grow: nothing may queue up.

* Camera: a separate process of this script (``camera`` command) that pre-renders a few
  synthetic street scenes and publishes them best effort, depth 1, on ``/camera/image_raw``
  at ``--rate`` Hz with a fresh ``header.stamp`` each (generating frames at 60 Hz is more
  than ``camera_source`` can do on a small machine).
* Node: ``segmentation_node`` with the embedded model ``models/enet-synth/enet-synth.onnx`` at
  1024x512 when it exists; otherwise a stack of stride-1 3x3 convolutions built here with
  ``onnx.helper`` (random weights), heavy enough for a few frames a second at 1024x512.
* This process: subscribes to the three outputs (serialized, reading only the header) and
  /diagnostics (:class:`node_probe.OutputRecorder`), samples the node's ``VmRSS`` every second.

Printed: RSS at start (before the camera), after the warm-up, at the end, its maximum, its
slope after the warm-up (least squares, MiB/min) and its peaks in the first and last 10 s
after the warm-up (RSS swings within each frame, so peaks show growth best); latency (output
arrival - stamp) p50/p99 of the frames stamped in the first and in the last 10 s; frames
published, received, processed, dropped (replaced by newer) and rejected.

Usage::

    .venv/bin/python bench/overload.py [--seconds 60] [--rate 60] [--width 1920]
        [--height 1080] [--warmup 10] [--domain 64] [--model PATH]

ROS_DOMAIN_ID: ``--domain`` (64); DDS stays on the loopback (:mod:`seg_ros.dds`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import node_probe
import numpy as np

from seg_ros.dds import loopback_environment, loopback_variables
from seg_ros.paths import embedded_model_path

EMBEDDED_SIZE = (1024, 512)
HEAVY_LAYERS = 3
HEAVY_CHANNELS = 16
HEAVY_CLASSES = 8
PRE_RENDERED = 4


# ---- camera ---------------------------------------------------------------------------------
def run_camera(rate: float, width: int, height: int, seconds: float, domain_id: int,
               topic: str = '/camera/image_raw') -> dict:
    """
    Publish pre-rendered frames at ``rate`` Hz with fresh stamps, best effort, for ``seconds``.

    Publishing runs on a fixed schedule; a publish that falls a whole period behind skips
    the missed ticks (a real camera does not send them late) and counts them.

    :return: frames published, ticks skipped, seconds, achieved rate.
    """
    os.environ.update(loopback_variables(domain_id))
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_ros.data.synthetic import SceneAnimation
    from seg_ros.ros.image_conversion import array_to_image

    animation = SceneAnimation(width, height, seed=3)
    messages = [array_to_image(animation.frame(index * 0.3)[0], 'bgr8')
                for index in range(PRE_RENDERED)]
    for msg in messages:
        msg.header.frame_id = 'camera'
    rclpy.init(domain_id=domain_id)
    node = rclpy.create_node('overload_camera')
    publisher = node.create_publisher(Image, topic, QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    deadline = time.monotonic() + 60.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    period = 1.0 / rate
    published = skipped = 0
    started = next_tick = time.monotonic()
    try:
        while next_tick - started < seconds:
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            msg = messages[published % len(messages)]
            now = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
            publisher.publish(msg)
            published += 1
            next_tick += period
            behind = int((time.monotonic() - next_tick) / period)
            if behind > 0:
                skipped += behind
                next_tick += behind * period
    except KeyboardInterrupt:
        pass
    elapsed = time.monotonic() - started
    node.destroy_node()
    rclpy.try_shutdown()
    return {'published': published, 'skipped_ticks': skipped, 'seconds': elapsed,
            'rate_hz': published / elapsed if elapsed > 0 else float('nan')}


def camera_command(rate: float, width: int, height: int, seconds: float,
                   domain_id: int, topic: str = '/camera/image_raw') -> list[str]:
    """Return the command line that runs :func:`run_camera` in its own process."""
    return [sys.executable, os.path.abspath(__file__), 'camera', '--rate', str(rate),
            '--width', str(width), '--height', str(height), '--seconds', str(seconds),
            '--domain', str(domain_id), '--topic', topic]


# ---- model ----------------------------------------------------------------------------------
def write_heavy_model(path: str, layers: int = HEAVY_LAYERS, channels: int = HEAVY_CHANNELS,
                      num_classes: int = HEAVY_CLASSES) -> str:
    """
    Write a "scores" ONNX model of stride-1 3x3 convolutions (float (1, 3, H, W) in).

    Every layer keeps the full resolution, so the cost grows with the input size: at
    1024x512 each 16-channel layer is about 2.4 GFLOP.

    :return: the path written.
    """
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    rng = np.random.default_rng(0)
    nodes, weights = [], []
    previous, width_in = 'input', 3
    for layer in range(layers):
        weight = rng.normal(0, (2.0 / (9 * width_in)) ** 0.5,
                            (channels, width_in, 3, 3)).astype(np.float32)
        weights += [numpy_helper.from_array(weight, f'w{layer}'),
                    numpy_helper.from_array(np.zeros(channels, np.float32), f'b{layer}')]
        nodes += [helper.make_node('Conv', [previous, f'w{layer}', f'b{layer}'], [f'c{layer}'],
                                   kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node('Relu', [f'c{layer}'], [f'r{layer}'])]
        previous, width_in = f'r{layer}', channels
    head = rng.normal(0, 1.0, (num_classes, width_in, 1, 1)).astype(np.float32)
    weights += [numpy_helper.from_array(head, 'head'),
                numpy_helper.from_array(np.zeros(num_classes, np.float32), 'head_bias')]
    nodes.append(helper.make_node('Conv', [previous, 'head', 'head_bias'], ['scores'],
                                  kernel_shape=[1, 1]))
    graph = helper.make_graph(
        nodes, 'seg_ros_overload_heavy',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 'height', 'width'])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT,
                                       [1, num_classes, 'height', 'width'])],
        weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)],
                              producer_name='seg_ros-bench')
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def choose_model(requested: str, folder: str) -> tuple[str, str]:
    """Return (model path, description): the requested one, the embedded ENet or a heavy stack."""
    if requested:
        return requested, f'{requested} (given)'
    embedded = embedded_model_path()
    if os.path.isfile(embedded):
        return embedded, f'embedded ENet {embedded}'
    path = write_heavy_model(os.path.join(folder, 'heavy.onnx'))
    return path, (f'embedded model absent ({embedded}); test model: {HEAVY_LAYERS} stride-1 '
                  f'3x3 convolutions of {HEAVY_CHANNELS} channels, {HEAVY_CLASSES} classes')


# ---- measurements ---------------------------------------------------------------------------
def rss_mib(pids: list[int]) -> float:
    """
    Return the summed ``VmRSS`` of the processes, in MiB (vanished ones count as zero).

    :param pids: process ids.
    :return: MiB.
    """
    return sum(node_probe.status_mib(pids, 'VmRSS'))


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of (seconds, value) samples, per minute."""
    if len(samples) < 2:
        return float('nan')
    times, values = np.array(samples, dtype=np.float64).T
    return float(np.polyfit(times, values, 1)[0] * 60.0)


def frame_latencies(arrivals: dict) -> list[tuple[int, float]]:
    """
    Return (stamp ns, latency ms) of every frame whose three outputs arrived, by stamp.

    :param arrivals: :class:`node_probe.OutputRecorder` arrivals: output name to
        (arrival ns, stamp ns, height, width).
    """
    per_frame: dict[int, dict[str, int]] = {}
    for name, records in arrivals.items():
        for arrival, stamp, _, _ in records:
            per_frame.setdefault(stamp, {})[name] = arrival
    return sorted((stamp, (max(times.values()) - stamp) / 1e6)
                  for stamp, times in per_frame.items() if len(times) == len(arrivals))


def latency_window(latencies: list[tuple[int, float]], start_ns: int, end_ns: int) -> dict:
    """Return count, p50 and p99 (ms) of the frames stamped in [start_ns, end_ns)."""
    values = [latency for stamp, latency in latencies if start_ns <= stamp < end_ns]
    return {'frames': len(values), 'p50_ms': node_probe.percentile(values, 0.50),
            'p99_ms': node_probe.percentile(values, 0.99)}


# ---- the run --------------------------------------------------------------------------------
def run(options: argparse.Namespace, log=print) -> dict:
    """Run camera -> node -> recorder; sample RSS; return the figures."""
    folder = tempfile.mkdtemp(prefix='seg_ros_overload_')
    model_path, model_description = choose_model(options.model, folder)
    width, height = EMBEDDED_SIZE
    log(f'model: {model_description}, input {width}x{height}')
    environment = loopback_environment(options.domain)
    recorder = node_probe.OutputRecorder(options.domain)
    node = node_probe.Executable('segmentation_node', [
        '-r', f'__node:={node_probe.NODE_NAME}', '-r', 'image:=/camera/image_raw',
        '-r', 'camera_info:=/camera/camera_info', '-p', f'model_path:={model_path}',
        '-p', f'input_width:={width}', '-p', f'input_height:={height}'], environment)
    camera = None
    try:
        deadline = time.monotonic() + 120.0
        while recorder.publisher_count() < len(node_probe.OUTPUTS):
            if node.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('segmentation_node did not start:\n' + node.output()[-3000:])
            time.sleep(0.1)
        pids = node_probe.process_tree(node.process.pid)
        rss_start = rss_mib(pids)
        camera = subprocess.Popen(
            camera_command(options.rate, options.width, options.height, options.seconds,
                           options.domain), env=environment, stdout=subprocess.PIPE, text=True)
        # The run starts with the first frame the node receives.
        deadline = time.monotonic() + 60.0
        while not any(recorder.snapshot()[0].values()):
            if camera.poll() is not None or node.process.poll() is not None or \
                    time.monotonic() > deadline:
                raise RuntimeError('no output arrived:\n' + node.output()[-3000:])
            time.sleep(0.05)
        started = time.monotonic()
        started_ns = time.time_ns()
        samples = []
        while camera.poll() is None:
            samples.append((time.monotonic() - started, rss_mib(pids)))
            if node.process.poll() is not None:
                raise RuntimeError('segmentation_node died:\n' + node.output()[-3000:])
            time.sleep(1.0)
        ended_ns = time.time_ns()
        camera_figures = json.loads(camera.stdout.read().strip().splitlines()[-1])
        time.sleep(2.0)  # the last frames' outputs and a diagnostics message
        samples.append((time.monotonic() - started, rss_mib(pids)))
        arrivals, diagnostics = recorder.snapshot()
        alive = node.process.poll() is None
    finally:
        if camera is not None and camera.poll() is None:
            camera.kill()
            camera.wait()
        node.stop()
        recorder.close()
    after_warmup = [sample for sample in samples if sample[0] >= options.warmup]
    latencies = frame_latencies(arrivals)
    window_ns = int(10e9)
    values = diagnostics[-1][1] if diagnostics else {}
    return {
        'model': model_description,
        'node_input': f'{width}x{height}',
        'backend': values.get('inference', '?'),
        'camera': camera_figures,
        'seconds': (ended_ns - started_ns) / 1e9,
        'alive_at_end': alive,
        'rss_start_mib': rss_start,
        'rss_after_warmup_mib': after_warmup[0][1] if after_warmup else float('nan'),
        'rss_end_mib': samples[-1][1],
        'rss_max_mib': max(value for _, value in samples),
        'rss_slope_mib_per_min': slope_per_minute(after_warmup),
        # RSS swings within a frame (transient input and score buffers): compare peaks.
        'rss_peak_first_10s_after_warmup_mib': max(
            [value for seconds, value in after_warmup if seconds < options.warmup + 10.0],
            default=float('nan')),
        'rss_peak_last_10s_mib': max(
            [value for seconds, value in after_warmup if seconds >= samples[-1][0] - 10.0],
            default=float('nan')),
        'latency_first_10s': latency_window(latencies, started_ns, started_ns + window_ns),
        'latency_last_10s': latency_window(latencies, ended_ns - window_ns, ended_ns),
        'frames_with_outputs': len(latencies),
        'rss_samples': [(round(seconds, 1), round(value, 1)) for seconds, value in samples],
        'diagnostics': {key: values.get(key, '?') for key in (
            'frames received', 'frames processed', 'frames dropped (replaced by newer)',
            'frames rejected', 'processing failures', 'inference mean (ms)',
            'output rate (Hz)')},
    }


def report(figures: dict, options: argparse.Namespace) -> str:
    """Return the figures as a short Markdown table."""
    camera = figures['camera']
    diagnostics = figures['diagnostics']
    first, last = figures['latency_first_10s'], figures['latency_last_10s']
    rows = [
        ('model', figures['model']),
        ('inference', figures['backend']),
        ('camera', f'{options.width}x{options.height} asked {options.rate:g} Hz, published '
                   f'{camera["published"]} frames at {camera["rate_hz"]:.1f} Hz '
                   f'({camera["skipped_ticks"]} ticks skipped: publisher behind)'),
        ('run', f'{figures["seconds"]:.1f} s, node alive at the end: '
                f'{figures["alive_at_end"]}'),
        ('RSS start / after warm-up / end / max (MiB)',
         f'{figures["rss_start_mib"]:.1f} / {figures["rss_after_warmup_mib"]:.1f} / '
         f'{figures["rss_end_mib"]:.1f} / {figures["rss_max_mib"]:.1f}'),
        (f'RSS slope after {options.warmup:g} s warm-up (MiB/min, least squares)',
         f'{figures["rss_slope_mib_per_min"]:+.2f}'),
        ('RSS peak, first 10 s after warm-up / last 10 s (MiB)',
         f'{figures["rss_peak_first_10s_after_warmup_mib"]:.1f} / '
         f'{figures["rss_peak_last_10s_mib"]:.1f}'),
        ('latency first 10 s: frames, p50 / p99 (ms)',
         f'{first["frames"]}, {first["p50_ms"]:.0f} / {first["p99_ms"]:.0f}'),
        ('latency last 10 s: frames, p50 / p99 (ms)',
         f'{last["frames"]}, {last["p50_ms"]:.0f} / {last["p99_ms"]:.0f}'),
        ('frames published (camera)', str(camera['published'])),
        ('frames lost before the node (best effort: published - received)',
         str(camera['published'] - int(diagnostics['frames received']))
         if diagnostics['frames received'].isdigit() else '?'),
        ('frames received / processed (node)',
         f'{diagnostics["frames received"]} / {diagnostics["frames processed"]}'),
        ('frames dropped (replaced by newer) / rejected',
         f'{diagnostics["frames dropped (replaced by newer)"]} / '
         f'{diagnostics["frames rejected"]}'),
        ('processing failures', diagnostics['processing failures']),
        ('inference mean (ms), output rate (Hz)',
         f'{diagnostics["inference mean (ms)"]}, {diagnostics["output rate (Hz)"]}'),
    ]
    lines = ['| measure | value |', '|---|---|']
    lines += [f'| {name} | {value} |' for name, value in rows]
    return '\n'.join(lines)


def main() -> int:
    """Run the overload benchmark, or (``camera``) only the camera publisher."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('command', nargs='?', choices=('run', 'camera'), default='run')
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--rate', type=float, default=60.0)
    parser.add_argument('--width', type=int, default=1920)
    parser.add_argument('--height', type=int, default=1080)
    parser.add_argument('--warmup', type=float, default=10.0,
                        help='seconds after the first output before the RSS slope is fitted')
    parser.add_argument('--domain', type=int, default=64)
    parser.add_argument('--topic', default='/camera/image_raw', help=argparse.SUPPRESS)
    parser.add_argument('--model', default='', help='model instead of the embedded ENet')
    parser.add_argument('--json', help='also write the figures to this file')
    options = parser.parse_args()
    if options.command == 'camera':
        figures = run_camera(options.rate, options.width, options.height, options.seconds,
                             options.domain, options.topic)
        print(json.dumps(figures), flush=True)
        return 0
    figures = run(options)
    print(report(figures, options))
    if options.json:
        with open(options.json, 'w') as json_file:
            json.dump(figures, json_file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
