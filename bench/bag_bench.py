"""
Frames/s of ``seg-ros bag`` on a 720p bag against ``seg-ros segment`` on the frames as a video.

Builds ``--frames`` 1280x720 frames (the street photos of ``--images``, default
``../shared/images``, shifted a little each frame; synthetic street scenes where there are
none), writes them as a raw ``sensor_msgs/Image`` MCAP bag, a JPEG ``CompressedImage`` bag and
an MJPG video, and times each command end to end (a child process, model loading included),
then once more on the first frame only: ``steady frames/s`` is ``(N - 1) / (t_N - t_1)``, the
rate once the model is loaded. The bag writes the node's class map, colour mask and overlay (raw,
or compressed in the last row), the video only the overlay.

Usage: ``.venv/bin/python bench/bag_bench.py [--frames 60] [--model M] [--width W --height H]
[--backend B]`` (default: the embedded model at 512x256).
"""

import argparse
import glob
import os
from pathlib import Path
import subprocess
import tempfile
import time

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from seg_ros.bag import messages
from seg_ros.data.synthetic import render_scene
from seg_ros.paths import executable_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
WIDTH, HEIGHT = 1280, 720
STEP_NS = 33_333_333  # 30 frames a second
SEG_ROS = executable_path('seg-ros')
CASES = ('video', 'raw bag', 'compressed bag', 'compressed bag, compressed outputs')


def make_frames(count: int, images: str) -> list[np.ndarray]:
    """Return ``count`` 720p frames: the photos shifted, else synthetic scenes."""
    photos = [cv2.resize(cv2.imread(path), (WIDTH, HEIGHT))
              for path in sorted(glob.glob(os.path.join(images, '*.jpg')))]
    if photos:
        return [np.roll(photos[index % len(photos)], 8 * index, axis=1) for index in range(count)]
    rng = np.random.default_rng(0)
    return [render_scene(rng, WIDTH, HEIGHT)[0] for _ in range(count)]


def write_inputs(folder: Path, frames: list[np.ndarray], name: str) -> dict[str, Path]:
    """Write the frames as a raw bag, a compressed bag and a video; return their paths."""
    store = messages.typestore()
    types = store.types
    paths = {'raw bag': folder / f'{name}_raw', 'compressed bag': folder / f'{name}_jpeg',
             'video': folder / f'{name}.avi'}
    mcap = StoragePlugin.MCAP
    with Writer(paths['raw bag'], version=9, storage_plugin=mcap) as raw, \
            Writer(paths['compressed bag'], version=9, storage_plugin=mcap) as packed:
        raw_topic = raw.add_connection('/camera/image_raw', messages.IMAGE, typestore=store)
        packed_topic = packed.add_connection('/camera/image_raw/compressed',
                                             messages.COMPRESSED_IMAGE, typestore=store)
        for index, frame in enumerate(frames):
            stamp = types['builtin_interfaces/msg/Time'](sec=index // 30,
                                                         nanosec=(index % 30) * STEP_NS)
            header = types['std_msgs/msg/Header'](stamp=stamp, frame_id='camera')
            raw.write(raw_topic, index * STEP_NS, messages.serialize(
                messages.image(frame, 'bgr8', header), messages.IMAGE))
            ok, data = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            packed.write(packed_topic, index * STEP_NS, messages.serialize(
                messages.compressed_image('bgr8; jpeg compressed bgr8', data, header),
                messages.COMPRESSED_IMAGE))
    video = cv2.VideoWriter(str(paths['video']), cv2.VideoWriter_fourcc(*'MJPG'), 30.0,
                            (WIDTH, HEIGHT))
    for frame in frames:
        video.write(frame)
    video.release()
    return paths


def timed(command: list[str]) -> float:
    """Run a command; return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed:\n{result.stderr}')
    return elapsed


def command(case: str, path: Path, output: Path, model_options: list[str]) -> list[str]:
    """Return the seg-ros command of one case."""
    if case == 'video':
        return [SEG_ROS, 'segment', str(path), '-o', str(output), '--no-legend', '--quiet',
                *model_options]
    topic = '/camera/image_raw' + ('' if case == 'raw bag' else '/compressed')
    transport = ['--transport', 'compressed'] if case == CASES[3] else []
    return [SEG_ROS, 'bag', str(path), str(output), '--image-topic', topic, '--quiet',
            '--overwrite', *transport, *model_options]


def size_mb(path: Path) -> float:
    """Return the size of a file or folder in MB."""
    files = [path] if path.is_file() else [item for item in path.rglob('*') if item.is_file()]
    return sum(item.stat().st_size for item in files) / 1e6


def main() -> None:
    """Write the inputs, time each case on N frames and on one, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--images', default=os.path.join(SHARED, 'images'))
    parser.add_argument('--model', default='')
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--backend', default='auto')
    arguments = parser.parse_args()
    model_options = ['--width', str(arguments.width), '--height', str(arguments.height),
                     '--backend', arguments.backend]
    if arguments.model:
        model_options += ['--model', arguments.model]
    frames = make_frames(arguments.frames, arguments.images)
    with tempfile.TemporaryDirectory(prefix='seg_ros_bag_bench_') as temporary:
        folder = Path(temporary)
        inputs = write_inputs(folder, frames, 'all')
        first = write_inputs(folder, frames[:1], 'one')
        print(f'{arguments.frames} frames of {WIDTH}x{HEIGHT}, model '
              f'{arguments.model or "embedded"} at {arguments.width}x{arguments.height}, '
              f'backend {arguments.backend}, {os.cpu_count()} CPUs\n')
        print('| input | input MB | wall s | frames/s | steady frames/s | output MB |')
        print('|---|---|---|---|---|---|')
        for index, case in enumerate(CASES):
            source = 'compressed bag' if case == CASES[3] else case
            output = folder / f'out{index}'
            one = timed(command(case, first[source], output, model_options))
            wall = timed(command(case, inputs[source], output, model_options))
            steady = (arguments.frames - 1) / (wall - one) if wall > one else float('nan')
            print(f'| {case} | {size_mb(inputs[source]):.0f} | {wall:.1f} | '
                  f'{arguments.frames / wall:.1f} | {steady:.1f} | {size_mb(output):.0f} |',
                  flush=True)


if __name__ == '__main__':
    main()
